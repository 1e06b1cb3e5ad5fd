#include "scheduler/access/api_token.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/sha256.h"

namespace dx::scheduler {
namespace {

bool RandomHex(size_t bytes, std::string* out) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    return false;
  }
  *out = Sha256::HexEncode(raw);
  return true;
}

bool IsLowerHex(const std::string& s, size_t size) {
  if (s.size() != size) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

Result<NewToken> GenerateApiToken() {
  NewToken t;
  // No randomness is a broken machine: refuse rather than make a guessable token.
  if (!RandomHex(8, &t.id) || !RandomHex(32, &t.secret)) {
    return Internal("no randomness for an API token (RAND_bytes failed)");
  }
  t.text = "dxt_" + t.id + "_" + t.secret;
  return t;
}

bool ParseApiToken(const std::string& text, std::string* id, std::string* secret) {
  if (text.size() != 4 + 16 + 1 + 64 || text.compare(0, 4, "dxt_") != 0 || text[20] != '_') {
    return false;
  }
  *id = text.substr(4, 16);
  *secret = text.substr(21);
  return IsLowerHex(*id, 16) && IsLowerHex(*secret, 64);
}

std::string HashTokenSecret(const std::string& secret) { return Sha256::Hex(secret); }

bool TokenSecretMatches(const std::string& secret, const std::string& stored_hash) {
  const std::string got = HashTokenSecret(secret);
  return got.size() == stored_hash.size() &&
         CRYPTO_memcmp(got.data(), stored_hash.data(), got.size()) == 0;
}

}  // namespace dx::scheduler
