// Authentication and scopes: who may call which RPC.
//
// The tokens file (--auth-tokens-file) has one principal a line:
//   <sha256 hex of a bearer token> <name> <scopes>
//   cn=<client certificate common name> <name> <scopes>
// with scopes comma-separated from `conv` (Conv, ConvStream), `register`
// (RegisterFilter) and `info` (GetServerInfo); `#` starts a comment. A bearer
// token arrives as `authorization: Bearer <token>` metadata; a `cn=` line
// names the client certificate of a mutual-TLS connection. Health and
// reflection are never checked.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/server_context.h"

namespace convserve::server {

enum class Scope : uint32_t { kConv = 1, kRegister = 2, kInfo = 4 };

// Who made a call.
struct Principal {
  std::string name;  // from the tokens file; never a token
  uint32_t scopes = 0;
};

// The parsed tokens file.
struct PrincipalTable {
  struct Entry {
    std::string token_sha256;  // 32 raw bytes; empty for a certificate entry
    std::string common_name;   // for a certificate entry
    Principal principal;
  };
  std::vector<Entry> entries;
};

// Parses a tokens file's contents; INVALID_ARGUMENT naming the line on any
// error (a bad hash, an unknown scope, a missing field).
absl::StatusOr<PrincipalTable> ParsePrincipalTable(absl::string_view contents);

// The principal a call's credentials name, if it has `scope`:
// UNAUTHENTICATED for missing or unknown credentials, PERMISSION_DENIED for
// a principal without the scope. Tokens are hashed and compared in constant
// time against every entry. Pure: thread-safe.
absl::StatusOr<Principal> Authorize(const PrincipalTable& table,
                                    absl::string_view authorization_header,
                                    const std::vector<std::string>& certificate_common_names,
                                    Scope scope);

// The tokens file, re-read every `reload_interval` on a thread of its own
// (a file that fails to parse is logged and the previous table kept).
// Thread-safe.
class Authenticator {
 public:
  // INVALID_ARGUMENT when the file cannot be read or parsed.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Start(
      const std::string& path, std::chrono::milliseconds reload_interval);
  ~Authenticator();  // stops the reload thread

  // Authorize against the current table with the call's metadata and peer.
  absl::StatusOr<Principal> Check(const grpc::ServerContextBase& context, Scope scope) const;

  // The principals' names, for metrics labels.
  std::vector<std::string> names() const;

 private:
  Authenticator(std::string path, std::chrono::milliseconds reload_interval, std::string contents,
                PrincipalTable table);
  void ReloadLoop();
  std::shared_ptr<const PrincipalTable> table() const;

  const std::string path_;
  const std::chrono::milliseconds reload_interval_;
  mutable std::mutex mutex_;
  std::condition_variable stop_requested_;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::string contents_ ABSL_GUARDED_BY(mutex_);
  std::shared_ptr<const PrincipalTable> table_ ABSL_GUARDED_BY(mutex_);
  std::thread reloader_;
};

}  // namespace convserve::server
