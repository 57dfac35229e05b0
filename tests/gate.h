// Gate: holds the threads that Wait() on it until Open() is called, then lets
// every later Wait() through at once. For tests whose fake backends must stay
// busy while the test looks at queues. Thread-safe.
#pragma once

#include <condition_variable>
#include <mutex>

namespace convserve::test {

class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    opened_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    opened_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
};

}  // namespace convserve::test
