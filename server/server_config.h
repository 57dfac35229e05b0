// Settings of one server instance. Every field has a flag and an environment
// variable (see flags.h); the defaults here are the flags' defaults.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/make_spec.h"

namespace convserve::server {

struct ServerConfig {
  // host:port for gRPC; port 0 picks a free port.
  std::string address = "0.0.0.0:50051";
  // host:port for the Prometheus /metrics page; empty disables it.
  std::string metrics_address;
  // Largest request or reply, in bytes.
  int64_t max_message_bytes = int64_t{256} << 20;
  // Largest result (and separable intermediate) a request may produce.
  SpecLimits limits;
  // The main worker pool's backend, a name from the backend registry.
  std::string backend = "onednn";
  // Requests the main pool computes at once, and the threads each uses;
  // workers x threads_per_worker must not exceed the cores available.
  int workers = 1;
  int threads_per_worker = 1;
  // Single-threaded workers of the fallback pool (kFallbackBackend), which
  // computes the requests `backend` cannot; none is started when `backend`
  // computes everything. 0: those requests get UNIMPLEMENTED.
  int fallback_workers = 1;
  // GPUs to run workers on, one pool of one worker each, ahead of the CPU
  // pools (server/device_selection.h): "all" (every device the per-device
  // backends list; none found or a build without CUDA runs on the CPU alone,
  // and says why in one log line), "none", or comma-separated CUDA ordinals
  // ("0,1"), which must all be usable or the server does not start.
  std::string cuda_devices = "all";
  // Bytes of filters each GPU worker keeps in device memory (LRU).
  int64_t gpu_weight_cache_bytes = int64_t{256} << 20;
  // Whether GPU workers time cuDNN's algorithms and run the fastest, which may
  // change a result's bytes from run to run; off: each spec always runs the
  // same algorithm.
  bool cuda_benchmark_algorithms = false;
  // Whether requests may opt in to reduced precision (allow_reduced_precision);
  // false: every float32 request computes in full float32.
  bool allow_reduced_precision = true;
  // Requests admitted but not yet running; more are refused with RESOURCE_EXHAUSTED.
  int max_queue = 64;
  // Dynamic batching (see scheduler.h): the images (the sum of the requests'
  // batch sizes) one kernel call may take, 1 turning it off; how long a
  // batch's first request may wait for more (0: only those already queued);
  // and batch sizes, in images, to prefer (each from 2 to batch_max_size).
  int batch_max_size = 1;
  std::chrono::microseconds batch_max_delay{0};
  std::vector<int> batch_preferred_sizes;
  // Requests of at most this many thousand floating-point operations run on
  // the gRPC thread that received them when a CPU worker is idle and nothing
  // is queued (see scheduler.h); 0: every request goes through the queue.
  int64_t inline_max_kflop = 1000;
  // Bytes that admitted requests (queued or running) may hold in tensors,
  // inputs and results together; more are refused with RESOURCE_EXHAUSTED.
  int64_t memory_budget_bytes = int64_t{4} << 30;
  // Bytes one request may hold (its tensors and result); more is RESOURCE_EXHAUSTED.
  int64_t max_request_bytes = int64_t{1} << 30;
  // ConvStream calls open at once; more are refused with RESOURCE_EXHAUSTED.
  int max_streams = 256;
  // Requests one stream may have in flight before the server stops reading it.
  int stream_window = 64;
  // Bytes of reordered weights the oneDNN backend keeps (LRU).
  int64_t weight_cache_bytes = int64_t{1} << 30;
  // Bytes of registered filters the server keeps.
  int64_t filter_store_bytes = int64_t{1} << 30;
  // On SIGTERM/SIGINT, how long calls in flight may take to finish.
  std::chrono::milliseconds grace_period{30000};
  // Age at which the server asks a client connection to go away (GOAWAY), so
  // clients reconnect and load balancers see new replicas; 0: never. Calls on
  // the old connection get grace_period to finish.
  std::chrono::milliseconds max_connection_age{0};
  // TLS: PEM files of the server's certificate chain and private key; both
  // empty serves plaintext. With a client CA bundle, clients must present a
  // certificate it signed (mutual TLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // Principals allowed to call, with their scopes (see auth.h); empty: no
  // authentication.
  std::string auth_tokens_file;
  // With authentication, what each principal may hold at once: requests and
  // tensor bytes in flight (0: no limit), and its share of filter_store_bytes.
  int quota_requests = 0;
  int64_t quota_bytes = 0;
  double quota_filter_share = 1.0;
  // How often the TLS and tokens files are re-read, so they change without a restart.
  std::chrono::milliseconds reload_interval{10000};
  // spdlog level name, and "text" or "json" lines.
  std::string log_level = "info";
  std::string log_format = "text";
};

}  // namespace convserve::server
