// The backend registry: the one place that maps backend names to the code
// that builds them. The server, its flags and GetServerInfo learn backend
// names only from here. Adding a backend is a folder under core/ with its
// CMake target, plus one entry in backend_registry.cc.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/backend.h"
#include "core/weight_cache.h"

namespace convserve {

// Everything a factory may use; each backend takes what applies to it.
struct BackendOptions {
  // OpenMP threads one Run may use (backends that compute on one thread ignore it).
  int threads = 1;
  // Reordered weights shared by every worker of a pool; null: no caching.
  std::shared_ptr<WeightCache> weight_cache;
  // Per-device backends (BackendEntry::per_device): the device's ordinal, the
  // bytes of weights each keeps in device memory (LRU), and whether it may
  // time algorithms and take the fastest, which may change a result's bytes
  // from run to run (off: each spec always runs the same algorithm).
  int device = 0;
  int64_t device_weight_cache_bytes = int64_t{256} << 20;
  bool benchmark_algorithms = false;
};

// One accelerator a per-device backend can use, as GetServerInfo and the
// start-up log report it.
struct DeviceInfo {
  std::string id;   // as BackendInfo::device_id, e.g. "cuda:0"
  int ordinal = 0;  // what BackendOptions::device and the server's device flag take
  std::string name;
  int64_t memory_bytes = 0;
  std::string compute_capability;  // e.g. "9.0"
  std::string driver_version;      // e.g. "13.0": the newest CUDA the driver runs
  std::string runtime_version;     // e.g. "13.0": the CUDA runtime linked in
  std::string cudnn_version;       // e.g. "9.19.0": cuDNN as loaded

  bool operator==(const DeviceInfo&) const = default;
};

struct BackendEntry {
  absl::string_view name;
  // Whether Run uses BackendOptions::threads, so that workers x threads count
  // against the cores; otherwise one Run uses one thread.
  bool multithreaded = false;
  // Whether it computes every spec MakeSpec accepts (Computes is always true),
  // so that a pool of it needs no fallback pool beside it.
  bool computes_everything = false;
  // Whether it computes on an accelerator: the server runs one pool of one
  // worker per device it is given (BackendOptions::device), ahead of the CPU pools.
  bool per_device = false;
  // per_device only: the devices of this machine it can use, or
  // FAILED_PRECONDITION with the one-line reason there are none.
  absl::StatusOr<std::vector<DeviceInfo>> (*list_devices)() = nullptr;
  std::unique_ptr<Backend> (*make)(const BackendOptions& options) = nullptr;
};

// Every backend of this build, the default first. Immutable; thread-safe.
absl::Span<const BackendEntry> RegisteredBackends();

// The entry named `name`, or null.
const BackendEntry* FindBackend(absl::string_view name);

// The names of RegisteredBackends(), in order.
std::vector<std::string> BackendNames();

// The backend that computes everything, for what a pool's backend cannot.
inline constexpr absl::string_view kFallbackBackend = "reference";

}  // namespace convserve
