// Sha256: incremental SHA-256 (OpenSSL EVP, SHA-NI where the CPU has it), hex output.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace dx {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  // The digest as 64 hex characters; the object is reset for reuse.
  std::string FinishHex();

  static std::string Hex(std::string_view data);
  // Lower-case hex of raw bytes.
  static std::string HexEncode(std::string_view bytes);

 private:
  void* ctx_;  // EVP_MD_CTX
};

}  // namespace dx
