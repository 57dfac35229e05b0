#include "core/process_settings.h"

#include <malloc.h>

#include "absl/synchronization/mutex.h"

namespace convserve {
namespace {

// The most glibc accepts for M_MMAP_THRESHOLD on 64-bit machines (half its
// largest heap); the trim threshold matches it.
constexpr int kReusedUpTo = 32 << 20;

}  // namespace

void ApplyRpcProcessSettings() {
  mallopt(M_MMAP_THRESHOLD, kReusedUpTo);
  mallopt(M_TRIM_THRESHOLD, kReusedUpTo);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace convserve
