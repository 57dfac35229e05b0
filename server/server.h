// Building, starting and draining a ConvServe server.
#pragma once

#include <chrono>
#include <memory>

#include "absl/status/statusor.h"
#include "core/weight_cache.h"
#include "grpcpp/server.h"
#include "server/auth.h"
#include "server/call_ledger.h"
#include "server/conv_call.h"
#include "server/conv_service.h"
#include "server/echo_service.h"
#include "server/filter_store.h"
#include "server/metrics.h"
#include "server/metrics_http.h"
#include "server/scheduler.h"
#include "server/server_config.h"

namespace convserve::server {

// A started server: the gRPC service, its scheduler and worker pools, the
// call ledger, the request pipeline, the filter store, the metrics and their
// HTTP endpoint. Destroying it shuts everything
// down at once; Drain first for a graceful stop.
class RunningServer {
 public:
  ~RunningServer();

  // Graceful stop: health turns NOT_SERVING and new calls get UNAVAILABLE
  // until no Conv or ConvStream call has started for 250 ms (1 s at most);
  // then the server stops listening and sends GOAWAY, and returns once the
  // calls in flight finished, or at `grace`, when the rest are cancelled.
  void Drain(std::chrono::milliseconds grace);

  int port() const { return port_; }  // the gRPC port bound
  int metrics_port() const;           // 0 without a metrics address
  Metrics& metrics() { return *metrics_; }
  const CallLedger& ledger() const { return *ledger_; }
  const Scheduler& scheduler() const { return *scheduler_; }

 private:
  friend absl::StatusOr<std::unique_ptr<RunningServer>> StartServer(const ServerConfig& config);
  RunningServer() = default;

  // Declared in the order they are built; destroyed in reverse.
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<FilterStore> filters_;
  std::shared_ptr<WeightCache> weight_cache_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<CallLedger> ledger_;
  std::unique_ptr<PrincipalQuotas> quotas_;
  std::unique_ptr<ConvPipeline> pipeline_;
  std::unique_ptr<Authenticator> authenticator_;  // null without --auth-tokens-file
  std::unique_ptr<ConvServiceImpl> service_;
  std::unique_ptr<EchoServiceImpl> echo_service_;  // the baseline, see echo_service.h
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<MetricsHttpServer> metrics_http_;
  int port_ = 0;
};

// Runs one small conv2d on every pool of `scheduler` (each by Job::pool) and
// checks its result. A pool off the CPU that fails it (its device lost, out
// of memory, unsupported, or computing a wrong result) is taken out of
// service, logged and skipped; a CPU pool's failure is returned, naming the
// pool. StartServer calls it before serving.
absl::Status WarmUp(Scheduler& scheduler);

// Builds the worker pools (one per GPU that config.cuda_devices selects,
// then the CPU pools) and the scheduler, runs a warm-up convolution on each
// pool, then starts serving (health SERVING) and, if configured, the metrics
// page. A GPU pool whose device cannot be used at warm-up (UNAVAILABLE) is
// taken out of service, logged, and the server starts without it.
// INVALID_ARGUMENT for a bad config (including GPUs asked for by ordinal that
// cannot be used), UNAVAILABLE if an address cannot be bound, INTERNAL if any
// other warm-up fails.
absl::StatusOr<std::unique_ptr<RunningServer>> StartServer(const ServerConfig& config);

}  // namespace convserve::server
