// convserve-perf's output: the step table on stdout, and the optional CSV,
// JSON and per-request latency log files.
//
// Contract: PrintHeader/PrintRow write one fixed-width line each and flush, so
// a row appears as soon as its step ends. The writers create or truncate
// `path` and return false if it cannot be written. Column names and formats
// are stable (scripts read them): see the CSV header and the JSON keys.
//
// Thread safety: call from one thread (main's), after the steps have run.
#pragma once

#include <string>
#include <vector>

#include "client/perf/loops.h"
#include "client/perf/options.h"
#include "client/perf/workload.h"

namespace convserve::perf {

void PrintHeader();
void PrintRow(const StepResult& r);

// One row per step.
bool WriteCsv(const std::string& path, const std::vector<StepResult>& rows);
// The run (op, dtype, mode, FLOPs and bytes per request) and its steps.
bool WriteJson(const std::string& path, const Options& o, const Workload& w,
               const std::vector<StepResult>& rows);
// One line per request: the step, when it ended (Unix ms), its latency and
// status code (0 = OK).
bool WriteLatencyLog(const std::string& path, const std::vector<StepResult>& rows);

}  // namespace convserve::perf
