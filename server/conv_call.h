// The request pipeline shared by Conv and ConvStream: reads a ConvRequest
// once into everything later stages need (spec, operand views, labels, bytes),
// builds the Job that computes it, and records every outcome in the metrics
// and the access log. Authentication, quotas or a batching policy plug in here
// or in the scheduler, not in the RPC handlers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convserve/v1/convserve.pb.h"
#include "server/filter_store.h"
#include "server/job.h"
#include "server/metrics.h"
#include "server/quotas.h"
#include "server/server_config.h"
#include "server/trace_parent.h"

namespace convserve::server {

// What metrics and logs say of a request, read from it once.
struct RequestLabels {
  absl::string_view op;     // the op field's name ("conv2d", ...), or "unknown"
  absl::string_view dtype;  // the input's TF type name ("float", ...), or "unknown"
  int64_t bytes_in = 0;     // tensor bytes the request carries

  bool operator==(const RequestLabels&) const = default;
};
RequestLabels ReadLabels(const convserve::v1::ConvRequest& request);

// Stateless apart from the pointers it holds: thread-safe.
class ConvPipeline {
 public:
  // Called once per request with its outcome.
  using Finish = std::function<void(const absl::Status&)>;
  // Who made the call and how it stops wanting its result before it runs.
  struct Controls {
    // The authenticated principal's name, or empty: its quota is charged and
    // its calls counted.
    std::string principal;
    std::chrono::system_clock::time_point deadline = std::chrono::system_clock::time_point::max();
    std::function<absl::Status()> cancelled;  // see Job::cancelled; may be empty
    // The call's valid `traceparent` metadata, written on its access-log line.
    std::optional<TraceParent> trace;
  };

  // The pointers must outlive the pipeline; `quotas` may be null (no quotas).
  ConvPipeline(const ServerConfig& config, const FilterStore* filters, Metrics* metrics,
               PrincipalQuotas* quotas = nullptr);

  // Reads and validates `request` and returns the Job that computes it into
  // `response`, records the outcome and then calls `finish`: from its `done`
  // when it ran or was dropped, and equally when the caller hands it a
  // refusal (job.done(status, {}) when Submit refuses it). On a validation
  // error, records it and returns it; `finish` is not called. `request` and
  // `response` must outlive the job.
  absl::StatusOr<Job> Prepare(const convserve::v1::ConvRequest& request,
                              convserve::v1::ConvResponse* response, Controls controls,
                              Finish finish) const;

  // Records a request refused before it was read (e.g. while draining, or
  // for its credentials), then calls `finish` with `status`. `trace` as in
  // Controls.
  void Refuse(const convserve::v1::ConvRequest& request, const absl::Status& status,
              const std::string& principal, const std::optional<TraceParent>& trace,
              const Finish& finish) const;

 private:
  struct Call;
  void Record(const Call& call, const absl::Status& status, const JobReport& report,
              int64_t bytes_out) const;

  const ServerConfig config_;
  const FilterStore* const filters_;
  Metrics* const metrics_;
  PrincipalQuotas* const quotas_;
};

}  // namespace convserve::server
