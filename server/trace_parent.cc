#include "server/trace_parent.h"

#include "absl/strings/str_cat.h"

namespace convserve::server {
namespace {

constexpr size_t kVersion00Length = 55;  // 2 + 1 + 32 + 1 + 16 + 1 + 2

bool LowerHex(std::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return !text.empty();
}

bool AllZeros(std::string_view text) { return text.find_first_not_of('0') == std::string::npos; }

std::string_view TrimOptionalWhitespace(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

}  // namespace

std::optional<TraceParent> ParseTraceParent(std::string_view value) {
  value = TrimOptionalWhitespace(value);
  if (value.size() < kVersion00Length) return std::nullopt;
  const std::string_view version = value.substr(0, 2);
  if (!LowerHex(version) || version == "ff") return std::nullopt;
  if (version == "00" && value.size() != kVersion00Length) return std::nullopt;
  // A later version may append fields, each after a '-'.
  if (value.size() > kVersion00Length && value[kVersion00Length] != '-') return std::nullopt;
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return std::nullopt;
  const std::string_view trace_id = value.substr(3, 32);
  const std::string_view parent_id = value.substr(36, 16);
  const std::string_view flags = value.substr(53, 2);
  if (!LowerHex(trace_id) || !LowerHex(parent_id) || !LowerHex(flags)) return std::nullopt;
  if (AllZeros(trace_id) || AllZeros(parent_id)) return std::nullopt;
  return TraceParent{std::string(trace_id), std::string(parent_id), std::string(flags)};
}

std::string TraceLogFields(const std::optional<TraceParent>& trace) {
  if (!trace) return "";
  return absl::StrCat(" trace_id=", trace->trace_id, " parent_id=", trace->parent_id,
                      " trace_flags=", trace->flags);
}

}  // namespace convserve::server
