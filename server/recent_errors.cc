#include "server/recent_errors.h"

#include <algorithm>
#include <utility>

namespace convserve::server {
namespace {

// `text`'s printable ASCII, at most `limit` characters; "..." ends a cut one.
std::string Printable(absl::string_view text, size_t limit) {
  const bool cut = text.size() > limit;
  if (cut) text = text.substr(0, limit - 3);
  std::string out(text);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  if (cut) out += "...";
  return out;
}

}  // namespace

RecentErrors::RecentErrors(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}

void RecentErrors::Add(std::chrono::system_clock::time_point time, absl::string_view op,
                       absl::string_view dtype, absl::string_view code, absl::string_view message) {
  Entry entry{time, Printable(op, kLabelChars), Printable(dtype, kLabelChars),
              Printable(code, kLabelChars), Printable(message, kMessageChars)};
  std::lock_guard<std::mutex> lock(mutex_);
  if (entries_.size() == capacity_) entries_.pop_front();
  entries_.push_back(std::move(entry));
  ++total_;
}

std::vector<RecentErrors::Entry> RecentErrors::Snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {entries_.begin(), entries_.end()};
}

uint64_t RecentErrors::total() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return total_;
}

}  // namespace convserve::server
