// Grow-only device and pinned host buffers for one worker, counted in a
// shared byte counter (the backend's DeviceBytes). Not thread-safe: each
// buffer belongs to one worker thread, which has made its device current.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"

namespace convserve::cuda {

class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::atomic<int64_t>* counter) : counter_(counter) {}
  ~DeviceBuffer() { Release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // At least `bytes` of device memory, keeping the buffer when it is large
  // enough (its contents are not kept when it grows). RESOURCE_EXHAUSTED
  // when the device has no room.
  absl::Status Reserve(int64_t bytes);
  void Release();
  std::byte* data() const { return data_; }

 private:
  std::atomic<int64_t>* counter_;
  std::byte* data_ = nullptr;
  int64_t bytes_ = 0;
};

// Page-locked host memory, so that copies to and from the device run at the
// bus's speed and asynchronously on the worker's stream.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { Release(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  absl::Status Reserve(int64_t bytes);
  void Release();
  std::byte* data() const { return data_; }

 private:
  std::byte* data_ = nullptr;
  int64_t bytes_ = 0;
};

}  // namespace convserve::cuda
