// The call ledger: which calls are open and whether the server is draining.
// The service and stream reactors write it; draining and metrics read it.
#pragma once

#include <atomic>
#include <chrono>

namespace convserve::server {

// Thread-safe (atomics); owned by the running server, which outlives every call.
class CallLedger {
 public:
  explicit CallLedger(int max_streams) : max_streams_(max_streams) {}

  // From now on new calls, and new requests on open streams, get UNAVAILABLE.
  void StartDraining() { draining_ = true; }
  bool draining() const { return draining_; }

  // A Conv or ConvStream call reached its handler; it ends once its replies
  // are all sent (counted as ended just before the last one goes out, since
  // Shutdown may return as soon as it is sent).
  void CallStarted() {
    ++active_calls_;
    last_call_started_ = std::chrono::steady_clock::now().time_since_epoch().count();
  }
  void CallEnded() { --active_calls_; }
  // Calls whose replies are not all sent yet (unary calls and open streams).
  int active_calls() const { return active_calls_; }
  // When the latest call reached a handler (the epoch if none has).
  std::chrono::steady_clock::time_point last_call_started() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(last_call_started_.load()));
  }

  // Counts an open stream unless max_streams are open already.
  bool TryOpenStream() {
    if (++open_streams_ > max_streams_) {
      --open_streams_;
      return false;
    }
    return true;
  }
  void StreamClosed() { --open_streams_; }
  int open_streams() const { return open_streams_; }
  int max_streams() const { return max_streams_; }

 private:
  const int max_streams_;
  std::atomic<bool> draining_{false};
  std::atomic<int> active_calls_{0};
  std::atomic<std::chrono::steady_clock::rep> last_call_started_{0};
  std::atomic<int> open_streams_{0};
};

}  // namespace convserve::server
