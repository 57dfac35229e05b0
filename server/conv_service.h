// The ConvService implementation on gRPC's callback API: the four RPCs.
// gRPC threads only parse, validate and hand requests to the scheduler;
// results are sent from the worker that computed them.
#pragma once

#include "convserve/v1/convserve.grpc.pb.h"
#include "server/auth.h"
#include "server/call_ledger.h"
#include "server/conv_call.h"
#include "server/device_selection.h"
#include "server/filter_store.h"
#include "server/scheduler.h"
#include "server/server_config.h"

namespace convserve::server {

// GetServerInfo's gpus: one GpuInfo per device of `gpus`, in order, in
// service as its pool in `pools` (matched by backend and device id) is; a
// device not selected, or without a pool, is out of service with the reason.
void AddGpuInfos(absl::Span<const ListedDevice> gpus, absl::Span<const Scheduler::PoolStatus> pools,
                 v1::ServerInfo* info);

// Thread-safe: gRPC calls the handlers from any of its threads.
class ConvServiceImpl final : public v1::ConvService::CallbackService {
 public:
  // All pointers must outlive the service and every call it started.
  // `authenticator` may be null: every call is let in. `gpus`: the devices
  // found at start (DeviceSelection::devices), which GetServerInfo lists
  // with their pools' state.
  ConvServiceImpl(const ServerConfig& config, const Authenticator* authenticator,
                  const ConvPipeline* pipeline, CallLedger* ledger, Scheduler* scheduler,
                  FilterStore* filters, std::vector<ListedDevice> gpus = {});

  grpc::ServerUnaryReactor* Conv(grpc::CallbackServerContext* context,
                                 const v1::ConvRequest* request,
                                 v1::ConvResponse* response) override;
  grpc::ServerBidiReactor<v1::ConvRequest, v1::ConvResponse>* ConvStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* RegisterFilter(grpc::CallbackServerContext* context,
                                           const v1::RegisterFilterRequest* request,
                                           v1::RegisterFilterResponse* response) override;
  grpc::ServerUnaryReactor* GetServerInfo(grpc::CallbackServerContext* context,
                                          const v1::GetServerInfoRequest* request,
                                          v1::ServerInfo* response) override;

 private:
  // The call's principal (empty without authentication), or why its
  // credentials may not use `scope`; checked before the request is read.
  absl::StatusOr<std::string> Authorize(const grpc::CallbackServerContext& context,
                                        Scope scope) const;

  const ServerConfig config_;
  const Authenticator* const authenticator_;
  const ConvPipeline* const pipeline_;
  CallLedger* const ledger_;
  Scheduler* const scheduler_;
  FilterStore* const filters_;
  const std::vector<ListedDevice> gpus_;
};

}  // namespace convserve::server
