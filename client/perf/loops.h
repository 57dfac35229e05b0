// convserve-perf's load loops: one step of a closed-loop concurrency sweep or
// of an open-loop rate sweep, measured into a StepResult.
//
// Contract: a step first runs --warmup-requests spread over its callers (not
// measured), then issues at most --requests requests for at most --duration
// seconds. Closed loop: `concurrency` callers, each starting its next request
// when its previous one ends; latency is the call's. Open loop: arrivals at
// `rate` per second (--arrivals constant or poisson, fixed seed), each taken
// by an idle one of --max-in-flight callers, or dropped when none is idle;
// latency counts from the scheduled arrival. OK calls give the percentiles
// and throughput; others are counted by status code name. With
// --latency-log, every request is kept as a Sample.
//
// Thread safety: RunClosed and RunOpen start and join their own threads (one
// per caller) and return once all have ended; call them from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "client/perf/callers.h"
#include "client/perf/options.h"

namespace convserve::perf {

// One finished request, for --latency-log.
struct Sample {
  std::chrono::system_clock::time_point end;
  double latency_us;
  int code;
};

struct StepResult {
  std::string mode;
  std::string load;  // "c=4" or "rate=1000"
  double level = 0;  // concurrency or rate
  int64_t ok = 0, dropped = 0;
  std::map<std::string, int64_t> errors;  // by status code name
  double seconds = 0, rps = 0, gflops = 0;
  double p50 = 0, p90 = 0, p95 = 0, p99 = 0;  // microseconds, OK calls only
  std::vector<Sample> samples;
  // Filled by the comparisons (negative when not run). The limit is the
  // throughput if each request cost only its in-process compute plus an echo
  // of its bytes: 1 / (1 / in-process req/s + 1 / echo req/s).
  double echo_rps = -1, ratio_echo = -1, in_process_gflops = -1, ratio_in_process = -1;
  double limit_rps = -1, ratio_limit = -1;
  // From the server's metrics (--metrics-url): requests per kernel call
  // during the step, and the server's CPU microseconds per request sent.
  double mean_batch = -1, server_cpu_us = -1;
};

// `flops` is the work of one request (0 for echo), for the step's GFLOP/s.
StepResult RunClosed(const Options& o, const std::string& mode, int concurrency,
                     const CallerFactory& make, double flops);
StepResult RunOpen(const Options& o, const std::string& mode, double rate,
                   const CallerFactory& make, double flops);

}  // namespace convserve::perf
