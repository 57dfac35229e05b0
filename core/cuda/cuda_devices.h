// The NVIDIA GPUs this process can use, with what GetServerInfo and the
// start-up log report of each. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace convserve::cuda {

struct CudaDevice {
  int ordinal = 0;  // the CUDA device number (--cuda-devices names these)
  std::string name;
  int64_t memory_bytes = 0;
  int compute_major = 0;  // compute capability, e.g. 9.0
  int compute_minor = 0;
};

// The toolkit and libraries the process runs with.
struct CudaVersions {
  int driver = 0;     // CUDA version the driver supports, e.g. 13000; 0 without a driver
  int runtime = 0;    // CUDA runtime linked in, e.g. 13000
  int64_t cudnn = 0;  // cuDNN loaded, e.g. 91900
};
CudaVersions GetCudaVersions();
// "9.19.0" from cuDNN's 91900.
std::string CudnnVersionString(int64_t version);

// Every device the CUDA runtime sees. FAILED_PRECONDITION naming the CUDA
// error when there is none to use (no driver, no device, or a driver too old
// for the runtime): the one-line reason GPU tests skip with and the server
// logs before running CPU-only.
absl::StatusOr<std::vector<CudaDevice>> ListCudaDevices();

}  // namespace convserve::cuda
