#include "server/server.h"

#include <algorithm>
#include <climits>
#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/backend_registry.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_builder.h"
#include "server/device_selection.h"
#include "server/tls.h"
#include "server/wire.h"
#include "spdlog/spdlog.h"

namespace convserve::server {
namespace {

constexpr char kServiceName[] = "convserve.v1.ConvService";

// The worker pools `config` asks for, in routing order, and the GPUs found.
struct Pools {
  std::vector<Scheduler::Pool> pools;
  std::vector<ListedDevice> gpus;
};

// One line on a GPU for the start-up log.
std::string DescribeGpu(const ListedDevice& gpu) {
  return absl::StrCat(gpu.info.id, " (", gpu.entry->name, "): ", gpu.info.name, ", ",
                      absl::StrFormat("%.1f", static_cast<double>(gpu.info.memory_bytes) /
                                                  static_cast<double>(int64_t{1} << 30)),
                      " GiB, compute capability ", gpu.info.compute_capability, ", driver CUDA ",
                      gpu.info.driver_version, ", runtime CUDA ", gpu.info.runtime_version,
                      ", cuDNN ", gpu.info.cudnn_version);
}

// One pool of one worker per GPU that config.cuda_devices selects, then the
// main pool of config.backend, then the fallback pool for what that backend
// cannot compute.
absl::StatusOr<Pools> MakePools(const ServerConfig& config,
                                const std::shared_ptr<WeightCache>& weight_cache) {
  auto make_pool = [&](const BackendEntry& entry, int workers) {
    Scheduler::Pool pool;
    pool.max_queue = config.max_queue;
    const BackendOptions options{.threads = config.threads_per_worker,
                                 .weight_cache = weight_cache};
    for (int i = 0; i < workers; ++i) pool.backends.push_back(entry.make(options));
    return pool;
  };
  const BackendEntry* main = FindBackend(config.backend);
  const BackendEntry* fallback = FindBackend(kFallbackBackend);
  if (main == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown backend \"", config.backend, "\""));
  }
  if (main->per_device) {
    return absl::InvalidArgumentError(absl::StrCat("backend \"", config.backend,
                                                   "\" runs one worker per GPU; choose its GPUs "
                                                   "with ",
                                                   kDevicesFlag));
  }
  absl::StatusOr<DeviceSelection> selection =
      SelectDevices(config.cuda_devices, RegisteredBackends());
  if (!selection.ok()) return selection.status();
  if (!selection->note.empty()) spdlog::info("no GPU workers: {}", selection->note);

  Pools pools;
  for (const ListedDevice& gpu : selection->devices) {
    if (!gpu.selected) {
      spdlog::info("GPU {}; not selected by {}", DescribeGpu(gpu), std::string(kDevicesFlag));
      continue;
    }
    spdlog::info("GPU {}", DescribeGpu(gpu));
    Scheduler::Pool pool;
    pool.max_queue = config.max_queue;
    pool.backends.push_back(
        gpu.entry->make(BackendOptions{.threads = 1,
                                       .weight_cache = nullptr,
                                       .device = gpu.info.ordinal,
                                       .device_weight_cache_bytes = config.gpu_weight_cache_bytes,
                                       .benchmark_algorithms = config.cuda_benchmark_algorithms}));
    pools.pools.push_back(std::move(pool));
  }
  pools.gpus = std::move(selection->devices);
  pools.pools.push_back(make_pool(*main, config.workers));
  if (!main->computes_everything && config.fallback_workers > 0) {
    pools.pools.push_back(make_pool(*fallback, config.fallback_workers));
  }
  return pools;
}

void AddGauges(Metrics& metrics, const Scheduler& scheduler, const CallLedger& ledger,
               const FilterStore& filters, const std::shared_ptr<WeightCache>& weight_cache,
               int64_t memory_budget_bytes) {
  metrics.AddGauge("convserve_queue_depth", "Requests admitted and waiting for a worker.",
                   [&scheduler] { return scheduler.queue_depth(); });
  metrics.AddGauge("convserve_running", "Requests being computed.",
                   [&scheduler] { return scheduler.running(); });
  metrics.AddGauge("convserve_in_flight_calls",
                   "Calls whose replies are not all sent (unary calls and open streams).",
                   [&ledger] { return ledger.active_calls(); });
  metrics.AddGauge("convserve_open_streams", "ConvStream calls open.",
                   [&ledger] { return ledger.open_streams(); });
  metrics.AddGauge("convserve_admitted_bytes",
                   "Tensor bytes held by admitted requests (the memory budget's use).",
                   [&scheduler] { return static_cast<double>(scheduler.bytes_admitted()); });
  metrics.AddGauge("convserve_memory_budget_bytes",
                   "Tensor bytes all admitted requests may hold (--memory-budget-mb).",
                   [memory_budget_bytes] { return static_cast<double>(memory_budget_bytes); });
  metrics.AddGauge("convserve_workers", "Worker threads computing requests.",
                   [&scheduler] { return scheduler.workers(); });
  metrics.AddGauge("convserve_registered_filters", "Filters stored by RegisterFilter.",
                   [&filters] { return static_cast<double>(filters.entries()); });
  metrics.AddGauge("convserve_registered_filter_bytes", "Bytes of registered filters.",
                   [&filters] { return static_cast<double>(filters.bytes()); });
  metrics.AddGauge("convserve_weight_cache_entries", "Reordered weights cached by the backend.",
                   [weight_cache] { return static_cast<double>(weight_cache->entries()); });
  metrics.AddGauge("convserve_weight_cache_bytes", "Bytes of reordered weights cached.",
                   [weight_cache] { return static_cast<double>(weight_cache->bytes()); });
  metrics.AddGaugeFamily(
      "convserve_device_memory_bytes",
      "Bytes of GPU memory each GPU worker holds (buffers and cached weights), by device.",
      [&scheduler] {
        std::vector<Metrics::GaugeSample> samples;
        for (const Scheduler::PoolStatus& pool : scheduler.pool_status()) {
          if (pool.device_id == kCpuDeviceId) continue;
          samples.push_back({.labels = {{"device", pool.device_id}},
                             .value = static_cast<double>(pool.device_bytes)});
        }
        return samples;
      });
  // Per pool, so that one full queue shows beside idle ones.
  const auto per_pool = [&scheduler](int Scheduler::PoolStatus::*member) {
    return [&scheduler, member] {
      std::vector<Metrics::GaugeSample> samples;
      for (const Scheduler::PoolStatus& pool : scheduler.pool_status()) {
        samples.push_back({.labels = {{"backend", pool.backend}, {"device", pool.device_id}},
                           .value = static_cast<double>(pool.*member)});
      }
      return samples;
    };
  };
  metrics.AddGaugeFamily("convserve_pool_queue_depth",
                         "Requests waiting for a worker, by pool (backend and device).",
                         per_pool(&Scheduler::PoolStatus::queue_depth));
  metrics.AddGaugeFamily(
      "convserve_pool_max_queue",
      "Requests a pool's queue holds (--max-queue); more are refused with RESOURCE_EXHAUSTED.",
      per_pool(&Scheduler::PoolStatus::max_queue));
  metrics.AddGaugeFamily(
      "convserve_pool_in_service",
      "1 while a worker pool computes requests; 0 once it is out of service for good (its "
      "device was lost), by backend and device.",
      [&scheduler] {
        std::vector<Metrics::GaugeSample> samples;
        for (const Scheduler::PoolStatus& pool : scheduler.pool_status()) {
          samples.push_back({.labels = {{"backend", pool.backend}, {"device", pool.device_id}},
                             .value = pool.in_service ? 1.0 : 0.0});
        }
        return samples;
      });
}

}  // namespace

absl::Status WarmUp(Scheduler& scheduler) {
  // 1x3x3x1 input of ones, 2x2 filter of ones, VALID: every output is 4.
  const std::vector<float> input(9, 1.0f), filter(4, 1.0f);
  OperandInfo info;
  info.input = {DataType::kFloat32, {1, 3, 3, 1}};
  info.filter = {DataType::kFloat32, {2, 2, 1, 1}};
  Conv2DParams params;
  params.padding = Padding::kValid;
  absl::StatusOr<ConvSpec> spec = MakeSpec(params, info, SpecLimits{});
  if (!spec.ok()) return spec.status();
  const std::vector<Scheduler::PoolStatus> pools = scheduler.pool_status();
  for (size_t i = 0; i < pools.size(); ++i) {
    std::vector<float> output(4, 0.0f);
    std::promise<absl::Status> done;
    Job job;
    job.spec = *spec;
    job.operands.input = {DataType::kFloat32, info.input.shape,
                          reinterpret_cast<const std::byte*>(input.data())};
    job.operands.filter = {DataType::kFloat32, info.filter.shape,
                           reinterpret_cast<const std::byte*>(filter.data())};
    job.pool = static_cast<int>(i);
    job.output = [&](const ConvSpec& job_spec) {
      return TensorView{DataType::kFloat32, job_spec.result_shape,
                        reinterpret_cast<std::byte*>(output.data())};
    };
    job.done = [&](const absl::Status& status, const JobReport&) { done.set_value(status); };
    absl::Status status = scheduler.Submit(job);
    if (status.ok()) status = done.get_future().get();
    if (status.ok() && output != std::vector<float>(4, 4.0f)) {
      status = absl::InternalError("the warm-up convolution gave a wrong result");
    }
    if (status.ok()) continue;
    const Scheduler::PoolStatus& pool = pools[i];
    const std::string where = pool.device_id == kCpuDeviceId
                                  ? pool.backend
                                  : absl::StrCat(pool.backend, " on ", pool.device_id);
    if (pool.device_id != kCpuDeviceId) {
      // A device that cannot compute (lost, out of memory, an architecture
      // cuDNN does not run on, ...) leaves service; the others serve.
      scheduler.TakeOutOfService(static_cast<int>(i), status);
      spdlog::warn("warm-up: {} cannot be used, the server starts without it: {}", where,
                   std::string(status.message()));
      continue;
    }
    return absl::Status(status.code(), absl::StrCat(where, ": ", status.message()));
  }
  return absl::OkStatus();
}

RunningServer::~RunningServer() {
  metrics_http_.reset();
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
  // Every call is done, but a worker may still be returning from the one it
  // finished last (touching the service): join the workers before the service
  // and the server are destroyed.
  scheduler_.reset();
}

int RunningServer::metrics_port() const { return metrics_http_ ? metrics_http_->port() : 0; }

void RunningServer::Drain(std::chrono::milliseconds grace) {
  ledger_->StartDraining();
  server_->GetHealthCheckService()->SetServingStatus(false);
  const auto deadline = std::chrono::system_clock::now() + grace;
  // Give clients a moment to turn away: those that watch health, or are
  // refused with UNAVAILABLE, stop sending within moments. Wait until no call
  // started for 250 ms, for 1 s at most: Shutdown would cancel (CANCELLED,
  // not UNAVAILABLE) a call whose request is still arriving, which no handler
  // has seen yet. Clients still sending after that (a connection that
  // kube-proxy balanced) get Shutdown's GOAWAY and reconnect elsewhere.
  constexpr std::chrono::milliseconds kQuiet{250};
  constexpr std::chrono::milliseconds kMaxSettle{1000};
  const auto start = std::chrono::steady_clock::now();
  const auto settle_end = start + std::min<std::chrono::milliseconds>(kMaxSettle, grace);
  for (auto now = start; now < settle_end; now = std::chrono::steady_clock::now()) {
    if (now - std::max(start, ledger_->last_call_started()) >= kQuiet) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // gRPC counts a call done once its last send is queued, and Shutdown then
  // closes the connections, which can cut off a large reply still being
  // written (the client sees "Connection reset by peer"). So first let the
  // unary calls in flight end, then give the transports a moment to flush.
  // Streams may stay open for long: Shutdown's GOAWAY tells their clients.
  auto unary_calls = [&] { return ledger_->active_calls() - ledger_->open_streams(); };
  constexpr std::chrono::milliseconds kFlush{100};
  while (unary_calls() > 0 && std::chrono::system_clock::now() + kFlush < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (std::chrono::system_clock::now() + kFlush < deadline) std::this_thread::sleep_for(kFlush);
  // Shutdown sends GOAWAY, stops listening, lets the calls in flight finish
  // until the deadline and cancels what is left then.
  server_->Shutdown(deadline);
}

absl::StatusOr<std::unique_ptr<RunningServer>> StartServer(const ServerConfig& config) {
  std::unique_ptr<RunningServer> running(new RunningServer());
  running->metrics_ = std::make_unique<Metrics>();
  running->filters_ = std::make_unique<FilterStore>(
      config.filter_store_bytes,
      static_cast<int64_t>(static_cast<double>(config.filter_store_bytes) *
                           config.quota_filter_share));
  running->weight_cache_ = std::make_shared<WeightCache>(config.weight_cache_bytes);
  absl::StatusOr<Pools> pools = MakePools(config, running->weight_cache_);
  if (!pools.ok()) return pools.status();
  Scheduler::Batching batching{.max_images = config.batch_max_size,
                               .max_delay = config.batch_max_delay,
                               .preferred_images = config.batch_preferred_sizes,
                               .observe = nullptr};
  if (config.batch_max_size > 1) {
    batching.observe = [metrics = running->metrics_.get()](int requests,
                                                           std::chrono::nanoseconds wait) {
      metrics->RecordBatch(requests, std::chrono::duration<double>(wait).count());
    };
  }
  running->scheduler_ = std::make_unique<Scheduler>(
      config.memory_budget_bytes, std::move(pools->pools), std::move(batching),
      static_cast<double>(config.inline_max_kflop) * 1e3);
  if (absl::Status warm = WarmUp(*running->scheduler_); !warm.ok()) {
    return absl::InternalError(absl::StrCat("warm-up failed: ", warm.message()));
  }
  running->ledger_ = std::make_unique<CallLedger>(config.max_streams);
  running->quotas_ = std::make_unique<PrincipalQuotas>(
      QuotaLimits{.max_requests = config.quota_requests, .max_bytes = config.quota_bytes});
  running->pipeline_ = std::make_unique<ConvPipeline>(
      config, running->filters_.get(), running->metrics_.get(), running->quotas_.get());
  if (!config.auth_tokens_file.empty()) {
    absl::StatusOr<std::unique_ptr<Authenticator>> authenticator =
        Authenticator::Start(config.auth_tokens_file, config.reload_interval);
    if (!authenticator.ok()) return authenticator.status();
    running->authenticator_ = std::move(*authenticator);
  }
  running->service_ = std::make_unique<ConvServiceImpl>(
      config, running->authenticator_.get(), running->pipeline_.get(), running->ledger_.get(),
      running->scheduler_.get(), running->filters_.get(), std::move(pools->gpus));
  running->echo_service_ = std::make_unique<EchoServiceImpl>(config.max_message_bytes);
  AddGauges(*running->metrics_, *running->scheduler_, *running->ledger_, *running->filters_,
            running->weight_cache_, config.memory_budget_bytes);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  const int max_message = static_cast<int>(std::min<int64_t>(config.max_message_bytes, INT_MAX));
  grpc::ServerBuilder builder;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(config);
  if (!credentials.ok()) return credentials.status();
  builder.AddListeningPort(config.address, *credentials, &running->port_);
  builder.RegisterService(running->service_.get());
  builder.RegisterService(running->echo_service_.get());
  builder.SetMaxReceiveMessageSize(max_message);
  builder.SetMaxSendMessageSize(max_message);
  // Accept the keepalive pings clients send on long calls (ConvClient: 20 s).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  if (config.max_connection_age.count() > 0) {
    auto milliseconds = [](std::chrono::milliseconds d) {
      return static_cast<int>(std::min<int64_t>(d.count(), INT_MAX));
    };
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               milliseconds(config.max_connection_age));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               milliseconds(config.grace_period));
  }
  running->server_ = builder.BuildAndStart();
  if (!running->server_ || running->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config.address));
  }
  grpc::HealthCheckServiceInterface* health = running->server_->GetHealthCheckService();
  health->SetServingStatus(kServiceName, true);
  health->SetServingStatus(true);

  if (!config.metrics_address.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http =
        MetricsHttpServer::Start(config.metrics_address, running->metrics_.get(),
                                 {.cert_file = config.tls_cert_file,
                                  .key_file = config.tls_key_file,
                                  .client_ca_file = config.tls_client_ca_file});
    if (!http.ok()) return http.status();
    running->metrics_http_ = std::move(*http);
  }
  return running;
}

}  // namespace convserve::server
