// "host:port" addresses, as configuration files spell the scheduler's listeners and the
// agent's scheduler.
#pragma once

#include <string>

#include "common/status.h"

namespace dx {

// Splits "host:port"; InvalidArgument names the text when it is malformed.
Status ParseHostPort(const std::string& text, std::string* host, int* port);

}  // namespace dx
