#include "client/status_code_name.h"

#include <iterator>

#include "grpcpp/support/status_code_enum.h"

namespace convserve::client {

absl::string_view StatusCodeName(int code) {
  // Indexed by code; gRPC's codes are 0..16, in this order.
  static constexpr absl::string_view kNames[] = {
      "OK",
      "CANCELLED",
      "UNKNOWN",
      "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED",
      "NOT_FOUND",
      "ALREADY_EXISTS",
      "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION",
      "ABORTED",
      "OUT_OF_RANGE",
      "UNIMPLEMENTED",
      "INTERNAL",
      "UNAVAILABLE",
      "DATA_LOSS",
      "UNAUTHENTICATED",
  };
  static_assert(std::size(kNames) == grpc::StatusCode::UNAUTHENTICATED + 1);
  static_assert(grpc::StatusCode::UNAVAILABLE == 14 && grpc::StatusCode::DATA_LOSS == 15);
  return code >= 0 && code < static_cast<int>(std::size(kNames)) ? kNames[code] : "UNKNOWN_CODE";
}

}  // namespace convserve::client
