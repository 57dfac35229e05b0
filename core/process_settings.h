// Process-wide settings for the programs that move tensors through gRPC (the
// server and the load generator), each found in their profiles.
//
// Allocator: glibc's malloc returns the free top of a heap to the operating
// system once more than M_TRIM_THRESHOLD bytes are free there, and serves
// blocks over M_MMAP_THRESHOLD from fresh mappings; by default both settle
// near the size of the largest block freed so far. A call that carries a
// large tensor allocates several buffers of its size (gRPC's slices, the
// parsed message, the reply), so freeing them left more than the threshold
// free and each such call faulted its buffers in again, page by page: about
// 1,100 page faults (20 ms on this project's virtual machine) for an echo of
// 1.6 MB each way.
//
// Locks: Debian builds Abseil without NDEBUG, so every absl::Mutex (gRPC's
// locks) kept a lock-order graph for deadlock detection, a few per cent of
// each call's CPU.
#pragma once

namespace convserve {

// Blocks up to 32 MiB come from the heaps, and each heap keeps up to 32 MiB
// of freed memory at its top for the next call instead of returning it; so
// the process may hold that much free memory per malloc arena after a burst
// (glibc makes an arena per thread that finds the others busy, at most 8 per
// core). Blocks over 32 MiB still get their own mappings. Abseil's deadlock
// detection is turned off. Call it first thing in main, before other threads
// run. Under a sanitizer, whose allocator replaces glibc's, the allocator
// part has no effect.
void ApplyRpcProcessSettings();

}  // namespace convserve
