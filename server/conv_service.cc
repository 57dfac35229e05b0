#include "server/conv_service.h"

#include "server/conv_stream_reactor.h"
#include "server/wire.h"
#include "spdlog/spdlog.h"

namespace convserve::server {
namespace {

using Clock = std::chrono::steady_clock;

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

double Seconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double>(duration).count();
}

int64_t Micros(std::chrono::nanoseconds duration) {
  return std::chrono::duration_cast<std::chrono::microseconds>(duration).count();
}

// The request's op field, e.g. "conv2d", or "unknown".
std::string OpName(const v1::ConvRequest& request) {
  const google::protobuf::FieldDescriptor* op = request.GetReflection()->GetOneofFieldDescriptor(
      request, v1::ConvRequest::descriptor()->FindOneofByName("op"));
  return op ? op->name() : "unknown";
}

std::string DtypeName(const v1::ConvRequest& request) {
  absl::StatusOr<DataType> dtype = FromProto(request.input().dtype());
  return dtype.ok() ? std::string(TfTypeName(*dtype)) : "unknown";
}

int64_t RefBytes(const v1::TensorRef& ref) {
  return ref.has_tensor() ? static_cast<int64_t>(ref.tensor().data().size()) : 0;
}

// Tensor bytes the request carries.
int64_t BytesIn(const v1::ConvRequest& request) {
  return static_cast<int64_t>(request.input().data().size()) + RefBytes(request.filter()) +
         RefBytes(request.pointwise_filter()) + RefBytes(request.bias());
}

// Tensor bytes the request holds while admitted: what it carries, its result
// and, for separable_conv2d, the depthwise intermediate.
int64_t AdmittedBytes(const v1::ConvRequest& request, const ConvSpec& spec) {
  int64_t result = 1;
  for (int64_t dim : spec.result_shape) result *= dim;  // MakeSpec bounded it
  int64_t elements = result;
  if (spec.pointwise_out_channels > 0) elements += spec.OutputElements();
  return BytesIn(request) + elements * ItemSize(spec.dtype);
}

}  // namespace

ConvServiceImpl::ConvServiceImpl(const ServerConfig& config, Scheduler* scheduler,
                                 FilterStore* filters, Metrics* metrics,
                                 std::function<void(v1::ServerInfo*)> describe_backends)
    : config_(config),
      scheduler_(scheduler),
      filters_(filters),
      metrics_(metrics),
      describe_backends_(std::move(describe_backends)) {}

void ConvServiceImpl::Record(const v1::ConvRequest& request, const absl::Status& status,
                             Clock::time_point received, std::chrono::nanoseconds queue,
                             std::chrono::nanoseconds compute, int64_t bytes_out) {
  const std::chrono::nanoseconds total = Clock::now() - received;
  const std::string op = OpName(request);
  const std::string code = absl::StatusCodeToString(status.code());
  metrics_->RecordConv(op, DtypeName(request), code, Seconds(queue), Seconds(compute),
                       Seconds(total), BytesIn(request), bytes_out);
  spdlog::debug("conv id={} op={} code={} queue_us={} compute_us={} total_us={}{}{}",
                request.id(), op, code, Micros(queue), Micros(compute), Micros(total),
                status.ok() ? "" : " error=", std::string(status.message()));
}

void ConvServiceImpl::Refuse(const v1::ConvRequest& request, const absl::Status& status,
                             Clock::time_point received, const Finish& finish) {
  Record(request, status, received, {}, {}, 0);
  finish(status);
}

absl::StatusOr<Job> ConvServiceImpl::PrepareConv(const v1::ConvRequest& request,
                                                 v1::ConvResponse* response,
                                                 std::function<absl::Status()> check,
                                                 Finish finish) {
  const Clock::time_point received = Clock::now();
  response->set_id(request.id());
  absl::StatusOr<ParsedRequest> parsed = ParseConvRequest(request, config_.limits, *filters_);
  absl::Status status = parsed.status();
  const int64_t budget = std::min(config_.max_request_bytes, config_.memory_budget_bytes);
  const int64_t bytes = parsed.ok() ? AdmittedBytes(request, parsed->spec) : 0;
  if (status.ok() && bytes > budget) {
    status = absl::ResourceExhaustedError(
        absl::StrCat("the request needs ", bytes, " bytes of tensors, more than this server's ",
                     budget, " per request (max_request_mb)"));
  }
  if (!status.ok()) {
    Record(request, status, received, {}, {}, 0);
    return status;
  }
  auto work = std::make_shared<ParsedRequest>(std::move(*parsed));
  Job job;
  job.bytes = bytes;
  job.check = std::move(check);
  job.run = [this, &request, response, work, received, finish](
                Backend& backend, std::chrono::nanoseconds queued) {
    const Clock::time_point start = Clock::now();
    const TensorView output = AllocateOutput(work->spec, response);
    absl::Status status = backend.Run(work->spec, work->operands, output);
    const std::chrono::nanoseconds compute = Clock::now() - start;
    if (status.ok()) {
      v1::Timing* timing = response->mutable_timing();
      timing->set_queue_us(Micros(queued));
      timing->set_compute_us(Micros(compute));
      timing->set_backend(std::string(backend.NameFor(work->spec)));
    } else {
      response->clear_output();
    }
    Record(request, status, received, queued, compute,
           status.ok() ? static_cast<int64_t>(response->output().data().size()) : 0);
    finish(status);
  };
  job.drop = [this, &request, received, finish](absl::Status why) {
    Record(request, why, received, {}, {}, 0);
    finish(why);
  };
  return job;
}

grpc::ServerUnaryReactor* ConvServiceImpl::Conv(grpc::CallbackServerContext* context,
                                                const v1::ConvRequest* request,
                                                v1::ConvResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const Clock::time_point received = Clock::now();
  CallStarted();
  // Counted as ended first: once the reply is out, Shutdown may return.
  Finish finish = [this, reactor](const absl::Status& status) {
    CallEnded();
    reactor->Finish(ToGrpc(status));
  };
  if (draining_) {
    Refuse(*request, absl::UnavailableError("the server is shutting down"), received, finish);
    return reactor;
  }
  // Work that is no longer wanted is dropped before it runs. The deadline is
  // checked first: gRPC also marks a call whose deadline passed as cancelled.
  auto check = [context]() -> absl::Status {
    if (std::chrono::system_clock::now() > context->deadline()) {
      return absl::DeadlineExceededError("the deadline passed before the request ran");
    }
    if (context->IsCancelled()) {
      return absl::CancelledError("the call was cancelled before the request ran");
    }
    return absl::OkStatus();
  };
  absl::StatusOr<Job> job = PrepareConv(*request, response, check, finish);
  if (!job.ok()) {
    finish(job.status());
    return reactor;
  }
  const absl::Status admitted = scheduler_->Submit(*job);
  if (!admitted.ok()) Refuse(*request, admitted, received, finish);
  return reactor;
}

bool ConvServiceImpl::TryOpenStream() {
  if (++open_streams_ > config_.max_streams) {
    --open_streams_;
    return false;
  }
  return true;
}

grpc::ServerBidiReactor<v1::ConvRequest, v1::ConvResponse>* ConvServiceImpl::ConvStream(
    grpc::CallbackServerContext* context) {
  if (draining_) {
    return new RefusedStreamReactor(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
  }
  if (!TryOpenStream()) {
    return new RefusedStreamReactor(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("this server already has ", config_.max_streams,
                     " streams open (max_streams); retry later")));
  }
  CallStarted();
  return new ConvStreamReactor(this, context);
}

grpc::ServerUnaryReactor* ConvServiceImpl::RegisterFilter(
    grpc::CallbackServerContext* context, const v1::RegisterFilterRequest* request,
    v1::RegisterFilterResponse* response) {
  absl::StatusOr<std::string> id = [&]() -> absl::StatusOr<std::string> {
    if (draining_) return absl::UnavailableError("the server is shutting down");
    absl::StatusOr<ConstTensorView> filter = ViewTensor(request->filter(), "filter");
    if (!filter.ok()) return filter.status();
    return filters_->Register(request->filter());
  }();
  if (id.ok()) response->set_filter_id(*id);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpc(id.status()));
  return reactor;
}

grpc::ServerUnaryReactor* ConvServiceImpl::GetServerInfo(grpc::CallbackServerContext* context,
                                                         const v1::GetServerInfoRequest*,
                                                         v1::ServerInfo* response) {
  response->set_version(CONVSERVE_VERSION);
  const google::protobuf::OneofDescriptor* ops =
      v1::ConvRequest::descriptor()->FindOneofByName("op");
  for (int i = 0; i < ops->field_count(); ++i) response->add_ops(ops->field(i)->name());
  for (DataType dtype : kAllDataTypes) response->add_dtypes(ToProto(dtype));
  describe_backends_(response);
  v1::Limits* limits = response->mutable_limits();
  limits->set_max_message_bytes(config_.max_message_bytes);
  limits->set_max_output_elements(config_.limits.max_output_elements);
  limits->set_max_queue(config_.max_queue);
  limits->set_workers(scheduler_->workers());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace convserve::server
