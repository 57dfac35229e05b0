#include "server/status_json.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace convserve::server {
namespace {

// Integral values as integers, others in the shortest text that reads back
// as `v` (JSON accepts to_chars' form).
void AppendNumber(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    absl::StrAppend(&out, static_cast<int64_t>(v));
    return;
  }
  char buffer[64];
  char* end = std::to_chars(buffer, buffer + sizeof(buffer), v).ptr;
  out.append(buffer, end);
}

void AppendString(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", static_cast<unsigned char>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  out += '"';
}

// To the millisecond, which a double holds exactly enough to print as such.
double UnixSeconds(std::chrono::system_clock::time_point time) {
  return static_cast<double>(
             std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch())
                 .count()) /
         1000;
}

// "[a,b,...]" of `values`.
template <class Values>
void AppendArray(std::string& out, const Values& values) {
  out += '[';
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    AppendNumber(out, static_cast<double>(values[i]));
  }
  out += ']';
}

}  // namespace

std::string RenderStatusJson(const Metrics::StatusSnapshot& status) {
  std::string out = "{\"uptime_s\":";
  AppendNumber(out, status.uptime_seconds);
  out += ",\"time\":";
  AppendNumber(out, UnixSeconds(status.time));
  absl::StrAppend(&out, ",\"requests\":", status.requests, ",\"failed\":", status.failed);
  out += ",\"latency\":{\"bounds\":";
  AppendArray(out, status.latency_bounds);
  out += ",\"counts\":";
  AppendArray(out, status.latency_counts);
  out += ",\"sum\":";
  AppendNumber(out, status.latency_seconds_sum);
  out += "},\"gauges\":{";
  for (size_t i = 0; i < status.gauges.size(); ++i) {
    if (i > 0) out += ',';
    AppendString(out, status.gauges[i].first);
    out += ':';
    AppendNumber(out, status.gauges[i].second);
  }
  absl::StrAppend(&out, "},\"errors_recorded\":", status.errors_recorded, ",\"recent_errors\":[");
  for (size_t i = 0; i < status.recent_errors.size(); ++i) {
    const RecentErrors::Entry& entry = status.recent_errors[i];
    if (i > 0) out += ',';
    out += "{\"time\":";
    AppendNumber(out, UnixSeconds(entry.time));
    out += ",\"op\":";
    AppendString(out, entry.op);
    out += ",\"dtype\":";
    AppendString(out, entry.dtype);
    out += ",\"code\":";
    AppendString(out, entry.code);
    out += ",\"message\":";
    AppendString(out, entry.message);
    out += '}';
  }
  out += "]}";
  return out;
}

}  // namespace convserve::server
