// Prometheus metrics of the service (metrics_http.h serves them).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

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
  //   and every gauge added with AddGauge or AddGaugeFamily.
  std::string Render() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace convserve::server
