// StatusCodeName: the canonical name of a gRPC status code ("OK",
// "INVALID_ARGUMENT", ...), as convserve-cli and convserve-perf print them.
//
// Thread safety: a pure function over static strings; call it from any thread.
#pragma once

#include "absl/strings/string_view.h"

namespace convserve::client {

// The name of `code`: a grpc::StatusCode (which converts to int) or the code
// of a streamed reply's error. A value outside 0..16 is "UNKNOWN_CODE".
absl::string_view StatusCodeName(int code);

}  // namespace convserve::client
