// The JSON document the status page (status_page.h) polls at /status.json.
#pragma once

#include <string>

#include "server/metrics.h"

namespace convserve::server {

// One JSON object (compact, printable ASCII) of `status`:
//   {"uptime_s": 12.5,               seconds since start (steady; rates divide by it)
//    "time": 1700000000.25,          Unix seconds when read
//    "requests": 100, "failed": 3,   finished Conv requests, and those not OK
//    "latency": {"bounds": [1e-05, ...], "counts": [...], "sum": 0.5},
//                                    convserve_request_seconds over every op:
//                                    per-bucket counts, one more (+Inf) last
//    "gauges": {"convserve_queue_depth": 0, ...},
//    "errors_recorded": 3,           failures ever recorded
//    "recent_errors": [{"time": ..., "op": "conv2d", "dtype": "float",
//                       "code": "INVALID_ARGUMENT", "message": "..."}, ...]}
//                                    oldest first
// Non-finite numbers are written as null.
std::string RenderStatusJson(const Metrics::StatusSnapshot& status);

}  // namespace convserve::server
