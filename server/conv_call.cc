#include "server/conv_call.h"

#include <algorithm>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/wire.h"
#include "spdlog/spdlog.h"

namespace convserve::server {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double>(duration).count();
}

int64_t Micros(std::chrono::nanoseconds duration) {
  return std::chrono::duration_cast<std::chrono::microseconds>(duration).count();
}

int64_t RefBytes(const v1::TensorRef& ref) {
  return ref.has_tensor() ? static_cast<int64_t>(ref.tensor().data().size()) : 0;
}

// Tensor bytes the request holds while admitted: what it carries, its result
// and, for separable_conv2d, the depthwise intermediate.
int64_t AdmittedBytes(int64_t bytes_in, const ConvSpec& spec) {
  int64_t elements = spec.ResultElements();  // MakeSpec bounded it
  if (spec.pointwise_out_channels > 0) elements += spec.OutputElements();
  return bytes_in + elements * ItemSize(spec.dtype);
}

}  // namespace

RequestLabels ReadLabels(const v1::ConvRequest& request) {
  RequestLabels labels;
  const google::protobuf::FieldDescriptor* op =
      v1::ConvRequest::descriptor()->FindFieldByNumber(request.op_case());
  labels.op = op ? absl::string_view(op->name()) : "unknown";
  absl::StatusOr<DataType> dtype = FromProto(request.input().dtype());
  labels.dtype = dtype.ok() ? TfTypeName(*dtype) : "unknown";
  labels.bytes_in = static_cast<int64_t>(request.input().data().size()) +
                    RefBytes(request.filter()) + RefBytes(request.pointwise_filter()) +
                    RefBytes(request.bias());
  return labels;
}

// One request on its way through the server. Shared by its job's callbacks.
struct ConvPipeline::Call {
  const v1::ConvRequest& request;
  v1::ConvResponse* const response;
  const RequestLabels labels;
  const Clock::time_point received;
  const std::string principal;
  const std::optional<TraceParent> trace;
  // The principal's quota claim, given back when the call is done.
  std::unique_ptr<PrincipalQuotas::Hold> hold;
  // Registered filters the job's operands point into, kept alive with it.
  std::vector<std::shared_ptr<const v1::Tensor>> registered;
};

ConvPipeline::ConvPipeline(const ServerConfig& config, const FilterStore* filters, Metrics* metrics,
                           PrincipalQuotas* quotas)
    : config_(config), filters_(filters), metrics_(metrics), quotas_(quotas) {}

void ConvPipeline::Record(const Call& call, const absl::Status& status, const JobReport& report,
                          int64_t bytes_out) const {
  const std::chrono::nanoseconds total = Clock::now() - call.received;
  const std::string code = absl::StatusCodeToString(status.code());
  metrics_->RecordConv(call.labels.op, call.labels.dtype, code, Seconds(report.queued),
                       Seconds(report.compute), Seconds(total), call.labels.bytes_in, bytes_out);
  if (!call.principal.empty()) metrics_->RecordPrincipal(call.principal, code);
  if (!status.ok()) {
    metrics_->RecordFailure(call.labels.op, call.labels.dtype, code, status.message());
  }
  if (status.ok() && !report.device.empty()) {
    metrics_->RecordDeviceCompute(report.device, Seconds(report.compute));
  }
  spdlog::debug(
      "conv id={} op={} code={} queue_us={} compute_us={} total_us={}{}{}{}{}{}", call.request.id(),
      std::string(call.labels.op), code, Micros(report.queued), Micros(report.compute),
      Micros(total), report.device.empty() ? "" : " device=", std::string(report.device),
      TraceLogFields(call.trace), status.ok() ? "" : " error=", std::string(status.message()));
}

void ConvPipeline::Refuse(const v1::ConvRequest& request, const absl::Status& status,
                          const std::string& principal, const std::optional<TraceParent>& trace,
                          const Finish& finish) const {
  const Call call{request, nullptr, ReadLabels(request), Clock::now(), principal, trace,
                  nullptr, {}};
  Record(call, status, {}, 0);
  finish(status);
}

absl::StatusOr<Job> ConvPipeline::Prepare(const v1::ConvRequest& request,
                                          v1::ConvResponse* response, Controls controls,
                                          Finish finish) const {
  auto call = std::make_shared<Call>(Call{request,
                                          response,
                                          ReadLabels(request),
                                          Clock::now(),
                                          std::move(controls.principal),
                                          std::move(controls.trace),
                                          nullptr,
                                          {}});
  response->set_id(request.id());
  absl::StatusOr<ParsedRequest> parsed = ParseConvRequest(request, config_.limits, *filters_);
  if (parsed.ok() && !config_.allow_reduced_precision) {
    parsed->spec.allow_reduced_precision = false;  // the server forbids the opt-in
  }
  absl::Status status = parsed.status();
  const int64_t budget = std::min(config_.max_request_bytes, config_.memory_budget_bytes);
  const int64_t bytes = parsed.ok() ? AdmittedBytes(call->labels.bytes_in, parsed->spec) : 0;
  if (status.ok() && bytes > budget) {
    status = absl::ResourceExhaustedError(
        absl::StrCat("the request needs ", bytes, " bytes of tensors, more than this server's ",
                     budget, " per request (max_request_mb)"));
  }
  if (status.ok() && quotas_ != nullptr && !call->principal.empty()) {
    absl::StatusOr<std::unique_ptr<PrincipalQuotas::Hold>> hold =
        quotas_->Acquire(call->principal, bytes);
    if (hold.ok()) call->hold = std::move(*hold);
    status = hold.status();
  }
  if (!status.ok()) {
    Record(*call, status, {}, 0);
    return status;
  }
  call->registered = std::move(parsed->registered);

  Job job;
  job.spec = std::move(parsed->spec);
  job.operands = std::move(parsed->operands);
  job.bytes = bytes;
  job.backend = std::move(parsed->backend);
  job.deadline = controls.deadline;
  job.cancelled = std::move(controls.cancelled);
  job.output = [response](const ConvSpec& spec) { return AllocateOutput(spec, response); };
  job.done = [this, call, finish = std::move(finish)](const absl::Status& status,
                                                      const JobReport& report) {
    v1::ConvResponse& response = *call->response;
    if (status.ok()) {
      v1::Timing* timing = response.mutable_timing();
      timing->set_queue_us(Micros(report.queued));
      timing->set_compute_us(Micros(report.compute));
      timing->set_backend(std::string(report.backend));
      timing->set_device(std::string(report.device));
      timing->set_precision(report.precision);
    } else {
      response.clear_output();
    }
    Record(*call, status, report,
           status.ok() ? static_cast<int64_t>(response.output().data().size()) : 0);
    finish(status);
  };
  return job;
}

}  // namespace convserve::server
