#include "core/backend_registry.h"

#include "core/onednn/onednn_backend.h"
#include "core/reference/reference_backend.h"

namespace convserve {
namespace {

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
