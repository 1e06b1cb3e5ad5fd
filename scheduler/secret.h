// Agent secrets are stored only as salted PBKDF2-SHA256 hashes; digests for the audit chain.
#pragma once

#include <string>

namespace dx::scheduler {

// "pbkdf2-sha256$iterations$salt_hex$hash_hex"
std::string HashSecret(const std::string& secret);
// Constant-time comparison against a HashSecret() result.
bool VerifySecret(const std::string& secret, const std::string& stored_hash);
std::string Sha256Hex(const std::string& data);
// HMAC-SHA256 of `data` under `key`, as hex (the keyed audit chain).
std::string HmacSha256Hex(const std::string& key, const std::string& data);

}  // namespace dx::scheduler
