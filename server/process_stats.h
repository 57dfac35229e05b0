// The server process's own resource use, read for Prometheus's standard
// process metrics (process_cpu_seconds_total, process_resident_memory_bytes,
// process_open_fds), so that a load test can divide the server's CPU time by
// the requests it served.
//
// Linux: reads getrusage and /proc/self. Thread-safe: it only reads.
#pragma once

#include <cstdint>

namespace convserve::server {

struct ProcessStats {
  double cpu_seconds = 0;      // user + system time of every thread since start
  int64_t resident_bytes = 0;  // resident set size; 0 if unreadable
  int64_t open_fds = 0;        // file descriptors open; 0 if unreadable
};

ProcessStats ReadProcessStats();

}  // namespace convserve::server
