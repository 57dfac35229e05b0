// The backend registry: the one place that maps backend names to the code
// that builds them. The server, its flags and GetServerInfo learn backend
// names only from here. Adding a backend is a folder under core/ with its
// CMake target, plus one entry in backend_registry.cc.
#pragma once

#include <memory>
#include <string>
#include <vector>

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
};

struct BackendEntry {
  absl::string_view name;
  // Whether Run uses BackendOptions::threads, so that workers x threads count
  // against the cores; otherwise one Run uses one thread.
  bool multithreaded = false;
  // Whether it computes every spec MakeSpec accepts (Computes is always true),
  // so that a pool of it needs no fallback pool beside it.
  bool computes_everything = false;
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
