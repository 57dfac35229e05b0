// Prometheus metrics of the service (metrics_http.h serves them).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/recent_errors.h"

namespace convserve::server {

// Thread-safe: Record* may be called from any thread while Render runs.
class Metrics {
 public:
  Metrics();
  ~Metrics();

  // One finished Conv request (unary or streamed). `op` is the request's op
  // field ("conv2d", ...; "unknown" when it named none), `dtype` the input's
  // TF type name ("float", ...; "unknown" when unset), `code` the gRPC status
  // code name ("OK", "INVALID_ARGUMENT", ...). Seconds spent queued, computing
  // and in total (from receipt to reply); bytes of tensor data received and sent.
  void RecordConv(absl::string_view op, absl::string_view dtype, absl::string_view code,
                  double queue_seconds, double compute_seconds, double total_seconds,
                  int64_t bytes_in, int64_t bytes_out);

  // One finished Conv request whose code was not OK (RecordConv counts it
  // too), kept for the status page among the last 20 (RecentErrors): its op,
  // dtype and code as in RecordConv, and the status message the caller got.
  void RecordFailure(absl::string_view op, absl::string_view dtype, absl::string_view code,
                     absl::string_view message);

  // One request computed (Backend::Run returned OK) on `device` ("cpu",
  // "cuda:0"), which spent `compute_seconds` inside Run.
  void RecordDeviceCompute(absl::string_view device, double compute_seconds);

  // One kernel call while dynamic batching is on: the requests it computed
  // together and the seconds its worker waited for them to arrive.
  void RecordBatch(int requests, double wait_seconds);

  // One call of an authenticated principal (a name from the tokens file,
  // never a token) that ended with `code`.
  void RecordPrincipal(absl::string_view principal, absl::string_view code);

  // A value read at each scrape, e.g. the queue depth: exported as a gauge
  // `name` with `help`. Register all gauges before serving.
  void AddGauge(const std::string& name, const std::string& help, std::function<double()> value);

  // One series of a labelled gauge: (label name, value) pairs and its value.
  struct GaugeSample {
    std::vector<std::pair<std::string, std::string>> labels = {};
    double value = 0;
  };
  // A gauge family `name` whose series are read at each scrape, e.g. per
  // device: `samples` returns one sample per distinct label set, with valid
  // Prometheus label names (the caller's to ensure); none renders only the
  // header. Shares AddGauge's names: the same name again replaces.
  void AddGaugeFamily(const std::string& name, const std::string& help,
                      std::function<std::vector<GaugeSample>()> samples);

  // The Prometheus text exposition format (version 0.0.4) of every metric:
  //   convserve_requests_total{op,dtype,code}          counter
  //   convserve_queue_seconds, convserve_compute_seconds,
  //   convserve_request_seconds                        histograms (by op)
  //   convserve_bytes_received_total, convserve_bytes_sent_total   counters
  //   convserve_principal_requests_total{principal,code}   counter, once any
  //   convserve_device_requests_total{device},
  //   convserve_device_compute_seconds_total{device}       counters
  //   convserve_batch_size, convserve_batch_wait_seconds   histograms, once
  //                                                    batching is on
  //   process_cpu_seconds_total                        counter, and
  //   process_resident_memory_bytes, process_open_fds  gauges (ProcessStats)
  //   and every gauge added with AddGauge or AddGaugeFamily.
  std::string Render() const;

  // What the status page shows (status_json.h), read at one time (the
  // gauges just after).
  struct StatusSnapshot {
    double uptime_seconds = 0;  // since these Metrics were made (a steady clock)
    std::chrono::system_clock::time_point time;
    uint64_t requests = 0;  // finished Conv requests, every code
    uint64_t failed = 0;    // of those, the ones whose code was not OK
    // convserve_request_seconds over every op: the buckets' inclusive upper
    // bounds, and per-bucket (not cumulative) counts with one more, +Inf, last.
    std::vector<double> latency_bounds = {};
    std::vector<uint64_t> latency_counts = {};
    double latency_seconds_sum = 0;
    std::vector<std::pair<std::string, double>> gauges = {};  // the unlabelled ones, by name
    uint64_t errors_recorded = 0;                             // RecordFailure calls ever
    std::vector<RecentErrors::Entry> recent_errors = {};      // the last ones, oldest first
  };
  StatusSnapshot ReadStatus() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace convserve::server
