// convserve-server's command line: every ServerConfig field as a flag with an
// environment-variable fallback (--max-queue / CONVSERVE_MAX_QUEUE; a flag
// beats its variable), validated before the server starts.
#pragma once

#include <optional>
#include <ostream>
#include <string>

#include "server/server_config.h"

namespace convserve::server {

// Parses argv (and CONVSERVE_* variables) into `config`, starting from
// ServerConfig's defaults; --threads-per-worker defaults to CoresAvailable()
// (server/cpu_quota.h) / --workers. Returns nullopt to go on, or the exit code
// to return: 0 after --help or --version was printed on `out`, non-zero after
// an error was printed on `err`.
std::optional<int> ParseServerFlags(int argc, const char* const* argv, ServerConfig* config,
                                    std::ostream& out, std::ostream& err);

// Every setting of `config` on one line, as flag-name=value pairs.
std::string DescribeConfig(const ServerConfig& config);

}  // namespace convserve::server
