// The process settings for large tensors: freed buffers are reused.
#include "core/process_settings.h"

#include <sys/resource.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "gtest/gtest.h"

// Whether a sanitizer's allocator replaces glibc's in this build.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CONVSERVE_SANITIZER_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CONVSERVE_SANITIZER_ALLOCATOR 1
#endif
#endif
#ifndef CONVSERVE_SANITIZER_ALLOCATOR
#define CONVSERVE_SANITIZER_ALLOCATOR 0
#endif

namespace convserve {
namespace {

// Page faults this thread has taken so far.
long ThreadPageFaults() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_minflt;
}

// A call's worth of large buffers: allocated, written through, freed.
void AllocateTouchAndFree() {
  constexpr size_t kBuffers = 4;
  constexpr size_t kBytes = size_t{4} << 20;
  char* volatile buffers[kBuffers];
  for (char* volatile& buffer : buffers) {
    buffer = static_cast<char*>(std::malloc(kBytes));
    std::memset(buffer, 1, kBytes);
  }
  for (char* buffer : buffers) std::free(buffer);
}

TEST(RpcProcessSettings, LargeBuffersAreReusedWithoutPageFaults) {
  if (CONVSERVE_SANITIZER_ALLOCATOR) GTEST_SKIP() << "a sanitizer's allocator replaces glibc's";
  ApplyRpcProcessSettings();
  long faults = 0;
  std::thread call([&] {
    AllocateTouchAndFree();  // the first call grows the heap
    const long before = ThreadPageFaults();
    for (int i = 0; i < 20; ++i) AllocateTouchAndFree();
    faults = ThreadPageFaults() - before;
  });
  call.join();
  // Faulting the buffers in anew would take 20 x 16 MiB / 4 KiB = 81,920.
  EXPECT_LT(faults, 1000);
}

}  // namespace
}  // namespace convserve
