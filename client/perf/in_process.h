// convserve-perf's in-process baseline: the workload's op computed in this
// process on the oneDNN backend (all cores, warm weight cache), with no gRPC,
// for the served / in-process GFLOP/s ratio of --compare-in-process.
//
// Contract: runs the op three times to warm up, then repeatedly for at least
// `seconds` (and three runs), and returns the GFLOP/s; 0 (with a message on
// stderr) if the backend refuses it. A spec oneDNN does not compute (float64,
// int32) runs on the reference backend instead, as the server would.
//
// Thread safety: blocks the calling thread, using every core meanwhile; run
// it when no load is running.
#pragma once

#include "client/perf/workload.h"

namespace convserve::perf {

double InProcessGflops(const Workload& w, double seconds);

}  // namespace convserve::perf
