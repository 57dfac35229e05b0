// W3C Trace Context's `traceparent` header (https://www.w3.org/TR/trace-context/),
// which a client sends as gRPC metadata so that the server's access-log line
// for its call can be joined to the client's trace.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace convserve::server {

// A valid traceparent's fields, each lowercase hex and never all zeros
// (flags excepted): safe to write into a log line as they are.
struct TraceParent {
  std::string trace_id;   // 32 hex digits
  std::string parent_id;  // 16 hex digits: the caller's span
  std::string flags;      // 2 hex digits; bit 0 is "sampled"

  bool operator==(const TraceParent&) const = default;
};

// Parses `value` as the W3C spec says a receiver must, or returns nullopt:
// optional spaces or tabs around it; version 00 exactly
// "00-<trace-id>-<parent-id>-<flags>"; a later version (never ff) at least
// that long, the flags followed by the end or '-' (its further fields are
// ignored); lowercase hex only; a trace-id or parent-id of all zeros is
// invalid. Pure and thread-safe.
std::optional<TraceParent> ParseTraceParent(std::string_view value);

// " trace_id=<id> parent_id=<id> trace_flags=<flags>" for the access log, or
// "" without one.
std::string TraceLogFields(const std::optional<TraceParent>& trace);

}  // namespace convserve::server
