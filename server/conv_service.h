// The ConvService implementation on gRPC's callback API. gRPC threads only
// parse, validate and hand requests to the scheduler; results are sent from
// the worker that computed them.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>

#include "convserve/v1/convserve.grpc.pb.h"
#include "server/filter_store.h"
#include "server/metrics.h"
#include "server/scheduler.h"
#include "server/server_config.h"

namespace convserve::server {

class ConvServiceImpl final : public v1::ConvService::CallbackService {
 public:
  // All pointers must outlive the service.
  ConvServiceImpl(const ServerConfig& config, Scheduler* scheduler, FilterStore* filters,
                  Metrics* metrics, std::function<void(v1::ServerInfo*)> describe_backends);

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

  // From now on new calls, and new requests on open streams, get UNAVAILABLE.
  void StartDraining() { draining_ = true; }
  // Calls whose replies are not all sent yet (unary calls and open streams).
  int active_calls() const { return active_calls_; }
  // When the latest call reached a handler.
  std::chrono::steady_clock::time_point last_call_started() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(last_call_started_.load()));
  }
  int open_streams() const { return open_streams_; }

  // Called once per finished Conv request with its status.
  using Finish = std::function<void(const absl::Status&)>;

  // Validates `request` and builds the job that computes it into `response`
  // and then calls `finish`; `check` decides at run time whether to drop it.
  // On a validation error, records it and returns it (finish is not called).
  absl::StatusOr<Job> PrepareConv(const v1::ConvRequest& request, v1::ConvResponse* response,
                                  std::function<absl::Status()> check, Finish finish);
  // Records a request that ended before reaching a worker, then calls `finish`.
  void Refuse(const v1::ConvRequest& request, const absl::Status& status,
              std::chrono::steady_clock::time_point received, const Finish& finish);

  const ServerConfig& config() const { return config_; }
  Scheduler& scheduler() { return *scheduler_; }
  bool draining() const { return draining_; }
  void CallStarted() {
    ++active_calls_;
    last_call_started_ = std::chrono::steady_clock::now().time_since_epoch().count();
  }
  void CallEnded() { --active_calls_; }
  // Counts an open stream unless max_streams are open already.
  bool TryOpenStream();
  void StreamClosed() { --open_streams_; }

 private:
  void Record(const v1::ConvRequest& request, const absl::Status& status,
              std::chrono::steady_clock::time_point received, std::chrono::nanoseconds queue,
              std::chrono::nanoseconds compute, int64_t bytes_out);

  const ServerConfig config_;
  Scheduler* const scheduler_;
  FilterStore* const filters_;
  Metrics* const metrics_;
  const std::function<void(v1::ServerInfo*)> describe_backends_;
  std::atomic<bool> draining_{false};
  std::atomic<int> active_calls_{0};
  std::atomic<std::chrono::steady_clock::rep> last_call_started_{0};
  std::atomic<int> open_streams_{0};
};

}  // namespace convserve::server
