#include "core/cuda/cuda_devices.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "absl/strings/str_cat.h"

namespace convserve::cuda {

CudaVersions GetCudaVersions() {
  CudaVersions versions;
  if (cudaDriverGetVersion(&versions.driver) != cudaSuccess) versions.driver = 0;
  if (cudaRuntimeGetVersion(&versions.runtime) != cudaSuccess) versions.runtime = 0;
  versions.cudnn = static_cast<int64_t>(cudnnGetVersion());
  return versions;
}

std::string CudnnVersionString(int64_t version) {
  return absl::StrCat(version / 10000, ".", version / 100 % 100, ".", version % 100);
}

absl::StatusOr<std::vector<CudaDevice>> ListCudaDevices() {
  int driver = 0;
  if (cudaDriverGetVersion(&driver) != cudaSuccess || driver == 0) {
    return absl::FailedPreconditionError("no CUDA device to use: no NVIDIA driver is installed");
  }
  int count = 0;
  if (const cudaError_t error = cudaGetDeviceCount(&count); error != cudaSuccess) {
    cudaGetLastError();  // clear it, so later calls do not see it
    return absl::FailedPreconditionError(absl::StrCat(
        "no CUDA device to use: ", cudaGetErrorName(error), ": ", cudaGetErrorString(error)));
  }
  std::vector<CudaDevice> devices;
  for (int ordinal = 0; ordinal < count; ++ordinal) {
    cudaDeviceProp properties{};
    if (const cudaError_t error = cudaGetDeviceProperties(&properties, ordinal);
        error != cudaSuccess) {
      return absl::FailedPreconditionError(absl::StrCat(
          "CUDA device ", ordinal, ": ", cudaGetErrorName(error), ": ", cudaGetErrorString(error)));
    }
    devices.push_back({.ordinal = ordinal,
                       .name = properties.name,
                       .memory_bytes = static_cast<int64_t>(properties.totalGlobalMem),
                       .compute_major = properties.major,
                       .compute_minor = properties.minor});
  }
  if (devices.empty()) return absl::FailedPreconditionError("no CUDA device to use: none found");
  return devices;
}

}  // namespace convserve::cuda
