#include "server/conv_service.h"

#include <iterator>
#include <optional>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "server/conv_stream_reactor.h"
#include "server/trace_parent.h"
#include "server/wire.h"

namespace convserve::server {
namespace {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

// The call's `traceparent` metadata if it has exactly one and that one is
// valid; anything else is ignored (it never fails a call).
std::optional<TraceParent> TraceParentOf(const grpc::CallbackServerContext& context) {
  const auto [first, last] = context.client_metadata().equal_range("traceparent");
  if (first == last || std::next(first) != last) return std::nullopt;
  return ParseTraceParent(std::string_view(first->second.data(), first->second.size()));
}

const absl::Status& ShuttingDown() {
  static const absl::Status* const kStatus =
      new absl::Status(absl::UnavailableError("the server is shutting down"));
  return *kStatus;
}

}  // namespace

void AddGpuInfos(absl::Span<const ListedDevice> gpus, absl::Span<const Scheduler::PoolStatus> pools,
                 v1::ServerInfo* info) {
  for (const ListedDevice& gpu : gpus) {
    v1::GpuInfo* out = info->add_gpus();
    ToProto(gpu.info, out);
    if (!gpu.selected) {
      out->set_out_of_service_reason(absl::StrCat("not selected by ", kDevicesFlag));
      continue;
    }
    out->set_out_of_service_reason("no worker runs on it");
    for (const Scheduler::PoolStatus& pool : pools) {
      if (pool.backend != gpu.entry->name || pool.device_id != gpu.info.id) continue;
      out->set_in_service(pool.in_service);
      out->set_out_of_service_reason(pool.out_of_service_reason);
    }
  }
}

ConvServiceImpl::ConvServiceImpl(const ServerConfig& config, const Authenticator* authenticator,
                                 const ConvPipeline* pipeline, CallLedger* ledger,
                                 Scheduler* scheduler, FilterStore* filters,
                                 std::vector<ListedDevice> gpus)
    : config_(config),
      authenticator_(authenticator),
      pipeline_(pipeline),
      ledger_(ledger),
      scheduler_(scheduler),
      filters_(filters),
      gpus_(std::move(gpus)) {}

absl::StatusOr<std::string> ConvServiceImpl::Authorize(const grpc::CallbackServerContext& context,
                                                       Scope scope) const {
  if (authenticator_ == nullptr) return std::string();
  absl::StatusOr<Principal> principal = authenticator_->Check(context, scope);
  if (!principal.ok()) return principal.status();
  return std::move(principal->name);
}

grpc::ServerUnaryReactor* ConvServiceImpl::Conv(grpc::CallbackServerContext* context,
                                                const v1::ConvRequest* request,
                                                v1::ConvResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ledger_->CallStarted();
  // Counted as ended first: once the reply is out, Shutdown may return.
  ConvPipeline::Finish finish = [ledger = ledger_, reactor](const absl::Status& status) {
    ledger->CallEnded();
    reactor->Finish(ToGrpc(status));
  };
  std::optional<TraceParent> trace = TraceParentOf(*context);
  if (ledger_->draining()) {
    pipeline_->Refuse(*request, ShuttingDown(), "", trace, finish);
    return reactor;
  }
  absl::StatusOr<std::string> principal = Authorize(*context, Scope::kConv);
  if (!principal.ok()) {
    pipeline_->Refuse(*request, principal.status(), "", trace, finish);
    return reactor;
  }
  // Work that is no longer wanted is dropped before it runs. The deadline is
  // checked first: gRPC also marks a call whose deadline passed as cancelled.
  ConvPipeline::Controls controls{
      .principal = std::move(*principal),
      .deadline = context->deadline(),
      .cancelled = [context]() -> absl::Status {
        if (context->IsCancelled()) {
          return absl::CancelledError("the call was cancelled before the request ran");
        }
        return absl::OkStatus();
      },
      .trace = std::move(trace)};
  absl::StatusOr<Job> job = pipeline_->Prepare(*request, response, std::move(controls), finish);
  if (!job.ok()) {
    finish(job.status());
    return reactor;
  }
  if (absl::Status admitted = scheduler_->SubmitOrRun(*job); !admitted.ok()) {
    job->done(admitted, {});
  }
  return reactor;
}

grpc::ServerBidiReactor<v1::ConvRequest, v1::ConvResponse>* ConvServiceImpl::ConvStream(
    grpc::CallbackServerContext* context) {
  if (ledger_->draining()) return new RefusedStreamReactor(ToGrpc(ShuttingDown()));
  absl::StatusOr<std::string> principal = Authorize(*context, Scope::kConv);
  if (!principal.ok()) return new RefusedStreamReactor(ToGrpc(principal.status()));
  if (!ledger_->TryOpenStream()) {
    return new RefusedStreamReactor(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     absl::StrCat("this server already has ", ledger_->max_streams(),
                                  " streams open (max_streams); retry later")));
  }
  ledger_->CallStarted();
  return new ConvStreamReactor(
      ConvStreamReactor::Deps{pipeline_, ledger_, scheduler_, config_.stream_window,
                              std::move(*principal), TraceParentOf(*context)},
      context);
}

grpc::ServerUnaryReactor* ConvServiceImpl::RegisterFilter(grpc::CallbackServerContext* context,
                                                          const v1::RegisterFilterRequest* request,
                                                          v1::RegisterFilterResponse* response) {
  absl::StatusOr<std::string> id = [&]() -> absl::StatusOr<std::string> {
    if (ledger_->draining()) return ShuttingDown();
    absl::StatusOr<std::string> principal = Authorize(*context, Scope::kRegister);
    if (!principal.ok()) return principal.status();
    absl::StatusOr<ConstTensorView> filter = ViewTensor(request->filter(), "filter");
    if (!filter.ok()) return filter.status();
    return filters_->Register(request->filter(), *principal);
  }();
  if (id.ok()) response->set_filter_id(*id);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpc(id.status()));
  return reactor;
}

grpc::ServerUnaryReactor* ConvServiceImpl::GetServerInfo(grpc::CallbackServerContext* context,
                                                         const v1::GetServerInfoRequest*,
                                                         v1::ServerInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::StatusOr<std::string> principal = Authorize(*context, Scope::kInfo); !principal.ok()) {
    reactor->Finish(ToGrpc(principal.status()));
    return reactor;
  }
  response->set_version(CONVSERVE_VERSION);
  const google::protobuf::OneofDescriptor* ops =
      v1::ConvRequest::descriptor()->FindOneofByName("op");
  for (int i = 0; i < ops->field_count(); ++i) response->add_ops(ops->field(i)->name());
  for (DataType dtype : kAllDataTypes) response->add_dtypes(ToProto(dtype));
  for (const BackendInfo& backend : scheduler_->DescribeBackends()) {
    ToProto(backend, response->add_backends());
  }
  v1::Limits* limits = response->mutable_limits();
  limits->set_max_message_bytes(config_.max_message_bytes);
  limits->set_max_output_elements(config_.limits.max_output_elements);
  limits->set_max_queue(config_.max_queue);
  limits->set_workers(scheduler_->workers());
  AddGpuInfos(gpus_, scheduler_->pool_status(), response);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace convserve::server
