#include "scheduler/secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <vector>

#include "common/sha256.h"

namespace dx::scheduler {
namespace {

constexpr int kIterations = 20000;

std::string Derive(const std::string& secret, const std::string& salt, int iterations) {
  unsigned char out[32];
  PKCS5_PBKDF2_HMAC(secret.data(), static_cast<int>(secret.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(), sizeof(out), out);
  return Sha256::HexEncode(std::string_view(reinterpret_cast<char*>(out), sizeof(out)));
}

}  // namespace

std::string HashSecret(const std::string& secret) {
  unsigned char salt_bytes[16];
  RAND_bytes(salt_bytes, sizeof(salt_bytes));
  std::string salt =
      Sha256::HexEncode(std::string_view(reinterpret_cast<char*>(salt_bytes), sizeof(salt_bytes)));
  return "pbkdf2-sha256$" + std::to_string(kIterations) + "$" + salt + "$" +
         Derive(secret, salt, kIterations);
}

bool VerifySecret(const std::string& secret, const std::string& stored) {
  size_t a = stored.find('$');
  size_t b = stored.find('$', a + 1);
  size_t c = stored.find('$', b + 1);
  if (a == std::string::npos || b == std::string::npos || c == std::string::npos) return false;
  int iterations = std::atoi(stored.substr(a + 1, b - a - 1).c_str());
  if (iterations <= 0) return false;
  std::string salt = stored.substr(b + 1, c - b - 1);
  std::string want = stored.substr(c + 1);
  std::string got = Derive(secret, salt, iterations);
  return got.size() == want.size() && CRYPTO_memcmp(got.data(), want.data(), got.size()) == 0;
}

std::string Sha256Hex(const std::string& data) { return Sha256::Hex(data); }

std::string HmacSha256Hex(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &n);
  return Sha256::HexEncode(std::string_view(reinterpret_cast<char*>(out), n));
}

}  // namespace dx::scheduler
