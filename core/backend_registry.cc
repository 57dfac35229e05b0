#include "core/backend_registry.h"

#include "core/onednn/onednn_backend.h"
#include "core/reference/reference_backend.h"

#ifdef CONVSERVE_HAS_CUDA_BACKEND
#include "absl/strings/str_cat.h"
#include "core/cuda/cuda_backend.h"
#include "core/cuda/cuda_devices.h"
#endif

namespace convserve {
namespace {

#ifdef CONVSERVE_HAS_CUDA_BACKEND
// "13.0" from CUDA's 13000.
std::string CudaVersionString(int version) {
  return absl::StrCat(version / 1000, ".", version % 1000 / 10);
}

absl::StatusOr<std::vector<DeviceInfo>> ListCudaDeviceInfos() {
  absl::StatusOr<std::vector<cuda::CudaDevice>> devices = cuda::ListCudaDevices();
  if (!devices.ok()) return devices.status();
  const cuda::CudaVersions versions = cuda::GetCudaVersions();
  std::vector<DeviceInfo> infos;
  for (const cuda::CudaDevice& device : *devices) {
    infos.push_back(
        {.id = absl::StrCat("cuda:", device.ordinal),
         .ordinal = device.ordinal,
         .name = device.name,
         .memory_bytes = device.memory_bytes,
         .compute_capability = absl::StrCat(device.compute_major, ".", device.compute_minor),
         .driver_version = CudaVersionString(versions.driver),
         .runtime_version = CudaVersionString(versions.runtime),
         .cudnn_version = cuda::CudnnVersionString(versions.cudnn)});
  }
  return infos;
}
#endif

constexpr BackendEntry kBackends[] = {
    {.name = "onednn",
     .multithreaded = true,
     .computes_everything = false,
     .make = [](const BackendOptions& options) -> std::unique_ptr<Backend> {
       return std::make_unique<OneDnnBackend>(
           OneDnnOptions{.threads = options.threads, .weight_cache = options.weight_cache});
     }},
    {.name = "reference",
     .multithreaded = false,
     .computes_everything = true,
     .make = [](const BackendOptions&) -> std::unique_ptr<Backend> {
       return std::make_unique<ReferenceBackend>();
     }},
#ifdef CONVSERVE_HAS_CUDA_BACKEND
    {.name = "cuda",
     .multithreaded = false,
     .computes_everything = false,
     .per_device = true,
     .list_devices = ListCudaDeviceInfos,
     .make = [](const BackendOptions& options) -> std::unique_ptr<Backend> {
       return std::make_unique<cuda::CudaBackend>(
           cuda::CudaOptions{.device = options.device,
                             .weight_cache_bytes = options.device_weight_cache_bytes,
                             .benchmark_algorithms = options.benchmark_algorithms});
     }},
#endif
};

}  // namespace

absl::Span<const BackendEntry> RegisteredBackends() { return kBackends; }

const BackendEntry* FindBackend(absl::string_view name) {
  for (const BackendEntry& entry : kBackends) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

std::vector<std::string> BackendNames() {
  std::vector<std::string> names;
  for (const BackendEntry& entry : kBackends) names.emplace_back(entry.name);
  return names;
}

}  // namespace convserve
