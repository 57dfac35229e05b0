// The last failed Conv calls, for the status page (status_page.h): a ring
// buffer of bounded size, each entry's strings bounded too.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"

namespace convserve::server {

// Thread-safe: Add and Snapshot may be called from any thread.
class RecentErrors {
 public:
  // Characters kept of a message, and of an op, dtype or code.
  static constexpr size_t kMessageChars = 200;
  static constexpr size_t kLabelChars = 40;

  struct Entry {
    std::chrono::system_clock::time_point time;
    std::string op;       // the request's op ("conv2d", ...) or "unknown"
    std::string dtype;    // its input's TF type name, or "unknown"
    std::string code;     // the gRPC status code name ("INVALID_ARGUMENT", ...)
    std::string message;  // the status message the caller got
  };

  // Keeps the last `capacity` entries (at least one).
  explicit RecentErrors(size_t capacity = 20);

  // Records a failed call at `time`. Each string keeps its printable ASCII
  // (anything else becomes '?') up to its limit, ending in "..." when cut:
  // the messages are the server's own, but may quote what a caller sent.
  void Add(std::chrono::system_clock::time_point time, absl::string_view op,
           absl::string_view dtype, absl::string_view code, absl::string_view message);

  // The entries kept, oldest first.
  std::vector<Entry> Snapshot() const;
  // How many were ever added (kept or since dropped).
  uint64_t total() const;

 private:
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<Entry> entries_ ABSL_GUARDED_BY(mutex_);
  uint64_t total_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace convserve::server
