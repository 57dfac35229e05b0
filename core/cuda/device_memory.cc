#include "core/cuda/device_memory.h"

#include <cuda_runtime_api.h>

#include "core/cuda/cuda_status.h"

namespace convserve::cuda {

absl::Status DeviceBuffer::Reserve(int64_t bytes) {
  if (bytes <= bytes_) return absl::OkStatus();
  Release();
  void* data = nullptr;
  if (const cudaError_t error = cudaMalloc(&data, static_cast<size_t>(bytes));
      error != cudaSuccess) {
    return FromCuda(error, "cudaMalloc");
  }
  data_ = static_cast<std::byte*>(data);
  bytes_ = bytes;
  counter_->fetch_add(bytes, std::memory_order_relaxed);
  return absl::OkStatus();
}

void DeviceBuffer::Release() {
  if (data_ == nullptr) return;
  cudaFree(data_);  // fails only on a lost device, whose memory is gone anyway
  counter_->fetch_sub(bytes_, std::memory_order_relaxed);
  data_ = nullptr;
  bytes_ = 0;
}

absl::Status PinnedBuffer::Reserve(int64_t bytes) {
  if (bytes <= bytes_) return absl::OkStatus();
  Release();
  void* data = nullptr;
  if (const cudaError_t error = cudaMallocHost(&data, static_cast<size_t>(bytes));
      error != cudaSuccess) {
    return FromCuda(error, "cudaMallocHost");
  }
  data_ = static_cast<std::byte*>(data);
  bytes_ = bytes;
  return absl::OkStatus();
}

void PinnedBuffer::Release() {
  if (data_ == nullptr) return;
  cudaFreeHost(data_);
  data_ = nullptr;
  bytes_ = 0;
}

}  // namespace convserve::cuda
