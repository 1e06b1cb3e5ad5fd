// API tokens of users: "dxt_" + a public id (16 hex digits, shown in listings and the audit
// log) + "_" + a secret (64 hex digits, 256 random bits). Only SHA-256 of the secret is
// stored: with 256 random bits a fast hash is as good as a slow one, and it keeps every call's
// authentication cheap. The whole token is shown once, when it is issued.
#pragma once

#include <string>

#include "common/status.h"

namespace dx::scheduler {

struct NewToken {
  std::string id;      // public part
  std::string secret;  // never stored
  std::string text;    // what the user keeps: dxt_<id>_<secret>
};

// kInternal only when the system has no randomness to give.
Result<NewToken> GenerateApiToken();
// Splits a token's text; false when it is not of the form above.
bool ParseApiToken(const std::string& text, std::string* id, std::string* secret);
// What the store keeps of a secret (hex SHA-256).
std::string HashTokenSecret(const std::string& secret);
// Constant-time comparison of `secret` with a stored HashTokenSecret().
bool TokenSecretMatches(const std::string& secret, const std::string& stored_hash);

}  // namespace dx::scheduler
