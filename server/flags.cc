#include "server/flags.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <sstream>
#include <string_view>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_join.h"
#include "core/backend_registry.h"
#include "server/cpu_quota.h"
#include "server/device_selection.h"

namespace convserve::server {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;
// gRPC keeps message sizes in an int.
constexpr int64_t kMaxMessageMb = std::numeric_limits<int>::max() / kMiB;
// The most MiB whose byte count still fits in an int64.
constexpr int64_t kMaxMb = std::numeric_limits<int64_t>::max() / kMiB;
constexpr int64_t kMaxInt = std::numeric_limits<int>::max();
// Long enough for any drain; short enough that milliseconds fit in an int64.
constexpr double kMaxSeconds = 1e9;

// "--max-queue" -> "CONVSERVE_MAX_QUEUE".
std::string EnvName(std::string_view flag) {
  std::string name = "CONVSERVE_";
  for (char c : flag.substr(2)) {
    name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

std::string FormatNumber(double value) {
  std::ostringstream out;
  out << std::setprecision(15) << value;
  return out.str();
}

// Whole numbers from `min` to `max`; the error names the flag and its variable.
CLI::Validator IntegerIn(int64_t min, int64_t max, const std::string& flag,
                         const std::string& description, const std::string& what) {
  const std::string source = " (from " + flag + " or " + EnvName(flag) + ")";
  return CLI::Validator(
      [=](std::string& input) -> std::string {
        int64_t value = 0;
        if (!CLI::detail::lexical_cast(input, value)) {
          return "'" + input + "' is not a whole number" + source;
        }
        if (value < min || value > max) {
          return "must be " + what + ", got " + input + source;
        }
        return std::string();
      },
      description);
}

CLI::Validator Seconds(const std::string& flag) {
  const std::string source = " (from " + flag + " or " + EnvName(flag) + ")";
  return CLI::Validator(
      [=](std::string& input) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(input, value) || !std::isfinite(value)) {
          return "'" + input + "' is not a number of seconds" + source;
        }
        if (value < 0 || value > kMaxSeconds) {
          return "must be from 0 to " + FormatNumber(kMaxSeconds) + " seconds, got " + input +
                 source;
        }
        return std::string();
      },
      "NON-NEGATIVE");
}

// --cuda-devices: all, none or ordinals, rewritten to its canonical form
// ("all", "none", "0,1").
CLI::Validator DeviceListValidator(const std::string& flag) {
  const std::string source = " (from " + flag + " or " + EnvName(flag) + ")";
  return CLI::Validator(
      [=](std::string& input) -> std::string {
        absl::StatusOr<DeviceList> list = ParseDeviceList(input);
        if (!list.ok()) return std::string(list.status().message()) + source;
        switch (list->kind) {
          case DeviceList::Kind::kAll: input = "all"; break;
          case DeviceList::Kind::kNone: input = "none"; break;
          case DeviceList::Kind::kListed: input = absl::StrJoin(list->ordinals, ","); break;
        }
        return std::string();
      },
      "all|none|ORDINALS");
}

// The backends --backend may name: those not run one pool per device.
std::vector<std::string> PoolBackendNames() {
  std::vector<std::string> names;
  for (const BackendEntry& entry : RegisteredBackends()) {
    if (!entry.per_device) names.emplace_back(entry.name);
  }
  return names;
}

// Bytes as MiB: "256", or "0.5" for sizes that are not whole MiB.
std::string FormatMiB(int64_t bytes) {
  if (bytes % kMiB == 0) return std::to_string(bytes / kMiB);
  return FormatNumber(static_cast<double>(bytes) / static_cast<double>(kMiB));
}

// logfmt-style: quoted when empty or holding spaces, quotes or '='.
std::string FormatValue(const std::string& value) {
  if (!value.empty() && value.find_first_of(" \t\"=\\") == std::string::npos) return value;
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

}  // namespace

std::optional<int> ParseServerFlags(int argc, const char* const* argv, ServerConfig* config,
                                    std::ostream& out, std::ostream& err) {
  ServerConfig parsed;
  const int cores = CoresAvailable();
  int64_t max_message_mb = parsed.max_message_bytes / kMiB;
  int64_t memory_budget_mb = parsed.memory_budget_bytes / kMiB;
  int64_t max_request_mb = parsed.max_request_bytes / kMiB;
  int64_t weight_cache_mb = parsed.weight_cache_bytes / kMiB;
  int64_t gpu_weight_cache_mb = parsed.gpu_weight_cache_bytes / kMiB;
  int64_t filter_store_mb = parsed.filter_store_bytes / kMiB;
  double grace_period_s = static_cast<double>(parsed.grace_period.count()) / 1000.0;
  double max_connection_age_s = static_cast<double>(parsed.max_connection_age.count()) / 1000.0;

  CLI::App app(
      "convserve-server: TensorFlow's convolution ops over gRPC.\n"
      "Every flag can also be set by the environment variable shown with it; "
      "a flag beats its variable.",
      "convserve-server");
  app.set_version_flag("--version", CONVSERVE_VERSION);
  app.get_formatter()->column_width(40);

  auto add = [&app](const std::string& flag, auto& value, const std::string& help) {
    return app.add_option(flag, value, help)->envname(EnvName(flag))->capture_default_str();
  };
  auto positive = [](const std::string& flag, int64_t max = kMaxInt) {
    return IntegerIn(1, max, flag, "POSITIVE", "a positive whole number");
  };
  auto non_negative = [](const std::string& flag, int64_t max) {
    return IntegerIn(0, max, flag, "NON-NEGATIVE", "a whole number, 0 or more");
  };

  add("--address", parsed.address, "host:port for gRPC (port 0: any free port)");
  add("--metrics-address", parsed.metrics_address,
      "host:port for the Prometheus /metrics page; empty: none");
  add("--max-message-mb", max_message_mb, "largest request or reply, in MiB")
      ->check(IntegerIn(1, kMaxMessageMb, "--max-message-mb", "1.." + std::to_string(kMaxMessageMb),
                        "from 1 to " + std::to_string(kMaxMessageMb) + " (gRPC's limit)"));
  add("--max-output-elements", parsed.limits.max_output_elements,
      "largest result (or separable intermediate) a request may produce, in elements")
      ->check(positive("--max-output-elements", std::numeric_limits<int64_t>::max()));
  const std::vector<std::string> backends = PoolBackendNames();
  add("--backend", parsed.backend,
      "compute backend of the main worker pool: " + absl::StrJoin(backends, " or "))
      ->transform(CLI::IsMember(backends, CLI::ignore_case));
  add("--workers", parsed.workers, "requests the main pool computes at once")
      ->check(positive("--workers"));
  add("--fallback-workers", parsed.fallback_workers,
      "single-threaded workers of the " + std::string(kFallbackBackend) +
          " pool that computes what --backend cannot (e.g. float64, int32); 0: no such "
          "pool, and those requests get UNIMPLEMENTED")
      ->check(non_negative("--fallback-workers", 1024));
  add("--cuda-devices", parsed.cuda_devices,
      "GPUs to run one worker each on, ahead of the CPU pools: all (every GPU found; with "
      "none, or in a build without CUDA, the CPU alone), none, or CUDA ordinals such as 0,1 "
      "(each must be usable)")
      ->transform(DeviceListValidator("--cuda-devices"));
  add("--gpu-weight-cache-mb", gpu_weight_cache_mb,
      "filters each GPU worker keeps in device memory, in MiB (LRU)")
      ->check(non_negative("--gpu-weight-cache-mb", kMaxMb));
  app.add_flag("--allow-reduced-precision,!--forbid-reduced-precision",
               parsed.allow_reduced_precision,
               "float32 requests may opt in to a reduced precision (bfloat16 products on a CPU "
               "with bfloat16 hardware, TF32 on a GPU); --forbid-reduced-precision computes "
               "every float32 request in full float32")
      ->envname(EnvName("--allow-reduced-precision"))
      ->capture_default_str();
  app.add_flag("--cuda-benchmark-algorithms", parsed.cuda_benchmark_algorithms,
               "GPU workers time cuDNN's algorithms and run the fastest; a result's bytes may "
               "then change from run to run (off: each shape always runs the same algorithm)")
      ->envname(EnvName("--cuda-benchmark-algorithms"))
      ->capture_default_str();
  CLI::Option* threads_option =
      add("--threads-per-worker", parsed.threads_per_worker,
          "threads each request computes with; workers x threads may not exceed the cores "
          "available (" +
              std::to_string(cores) + " here)")
          ->check(positive("--threads-per-worker"))
          ->default_str("cores/workers");
  add("--max-queue", parsed.max_queue,
      "requests admitted but not yet running; more are refused (RESOURCE_EXHAUSTED)")
      ->check(positive("--max-queue"));
  add("--batch-max-size", parsed.batch_max_size,
      "dynamic batching: images (the sum of requests' batch sizes) one kernel call may take, "
      "from queued requests with the same spec but for the batch and the same filter; 1: off")
      ->check(positive("--batch-max-size", 4096));
  int64_t batch_max_delay_us = parsed.batch_max_delay.count();
  add("--batch-max-delay-us", batch_max_delay_us,
      "dynamic batching: microseconds after its arrival a batch's first request may wait for "
      "more (never within a deadline of theirs); 0: only the requests already queued")
      ->check(non_negative("--batch-max-delay-us", int64_t{60} * 1000 * 1000));
  add("--batch-preferred-sizes", parsed.batch_preferred_sizes,
      "dynamic batching: comma-separated batch sizes in images, each 2 to --batch-max-size, "
      "that a batch stops waiting at (and, after the wait, is cut to); none: any size")
      ->delimiter(',')
      ->check(positive("--batch-preferred-sizes", 4096));
  add("--inline-max-kflop", parsed.inline_max_kflop,
      "requests of at most this many thousand floating-point operations run on the gRPC thread "
      "that received them when a CPU worker is idle and none are queued (saves two thread "
      "handoffs); 0: all go through the queue")
      ->check(non_negative("--inline-max-kflop", int64_t{1} << 40));
  add("--memory-budget-mb", memory_budget_mb,
      "MiB that admitted requests may hold together; more are refused (RESOURCE_EXHAUSTED)")
      ->check(positive("--memory-budget-mb", kMaxMb));
  add("--max-request-mb", max_request_mb,
      "MiB one request may hold (its tensors and result); more is RESOURCE_EXHAUSTED")
      ->check(positive("--max-request-mb", kMaxMb));
  add("--max-streams", parsed.max_streams,
      "ConvStream calls open at once; more are refused (RESOURCE_EXHAUSTED)")
      ->check(positive("--max-streams"));
  add("--stream-window", parsed.stream_window,
      "requests one stream may have in flight before the server stops reading it")
      ->check(positive("--stream-window"));
  add("--weight-cache-mb", weight_cache_mb,
      "reordered weights the oneDNN backend keeps, in MiB (LRU)")
      ->check(non_negative("--weight-cache-mb", kMaxMb));
  add("--filter-store-mb", filter_store_mb, "registered filters kept, in MiB")
      ->check(non_negative("--filter-store-mb", kMaxMb));
  add("--grace-period-s", grace_period_s,
      "on SIGTERM/SIGINT, seconds calls in flight may take to finish (fractions allowed)")
      ->check(Seconds("--grace-period-s"))
      ->default_str(FormatNumber(grace_period_s));
  add("--max-connection-age-s", max_connection_age_s,
      "seconds after which a client connection is asked to reconnect (GOAWAY), so that load "
      "balancers spread clients over new replicas; calls on it get --grace-period-s to end; "
      "0: never")
      ->check(Seconds("--max-connection-age-s"))
      ->default_str(FormatNumber(max_connection_age_s));
  add("--tls-cert", parsed.tls_cert_file,
      "PEM certificate chain to serve TLS with (with --tls-key); re-read when it changes")
      ->check(CLI::ExistingFile);
  add("--tls-key", parsed.tls_key_file, "PEM private key of --tls-cert; re-read when it changes")
      ->check(CLI::ExistingFile);
  add("--tls-client-ca", parsed.tls_client_ca_file,
      "PEM CA bundle: require client certificates it signed (mutual TLS; needs --tls-cert)")
      ->check(CLI::ExistingFile);
  int64_t reload_s = parsed.reload_interval.count() / 1000;
  add("--auth-tokens-file", parsed.auth_tokens_file,
      "principals allowed in: lines of <sha256 hex of a bearer token, or cn=CERT NAME> <name> "
      "<scopes conv,register,info>; re-read when it changes; none: no authentication")
      ->check(CLI::ExistingFile);
  add("--quota-requests", parsed.quota_requests,
      "with --auth-tokens-file: requests one principal may have in flight; 0: no limit")
      ->check(non_negative("--quota-requests", kMaxInt));
  int64_t quota_mb = parsed.quota_bytes / kMiB;
  add("--quota-mb", quota_mb,
      "with --auth-tokens-file: MiB of tensors one principal's requests may hold; 0: no limit")
      ->check(non_negative("--quota-mb", kMaxMb));
  add("--quota-filter-share", parsed.quota_filter_share,
      "with --auth-tokens-file: the share (0 to 1) of --filter-store-mb one principal's "
      "registered filters may take")
      ->check(CLI::Range(0.0, 1.0));
  add("--reload-s", reload_s, "seconds between checks of the TLS and tokens files for changes")
      ->check(positive("--reload-s", 86400));
  add("--log-level", parsed.log_level, "trace, debug, info, warn, error or off")
      ->transform(
          CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}, CLI::ignore_case));
  add("--log-format", parsed.log_format, "log lines as text or json (one object a line)")
      ->transform(CLI::IsMember({"text", "json"}, CLI::ignore_case));

  try {
    app.parse(argc, argv);
    if (threads_option->count() == 0) {
      parsed.threads_per_worker = std::max(1, cores / parsed.workers);
    }
    if (parsed.tls_cert_file.empty() != parsed.tls_key_file.empty()) {
      throw CLI::ValidationError("--tls-cert and --tls-key", "give both or neither");
    }
    if (!parsed.tls_client_ca_file.empty() && parsed.tls_cert_file.empty()) {
      throw CLI::ValidationError("--tls-client-ca", "needs --tls-cert and --tls-key");
    }
    for (int size : parsed.batch_preferred_sizes) {
      if (size < 2 || size > parsed.batch_max_size) {
        throw CLI::ValidationError("--batch-preferred-sizes",
                                   "each must be from 2 to --batch-max-size (" +
                                       std::to_string(parsed.batch_max_size) + "), got " +
                                       std::to_string(size));
      }
    }
    if (int64_t{parsed.workers} * parsed.threads_per_worker > cores) {
      throw CLI::ValidationError("--workers x --threads-per-worker",
                                 std::to_string(parsed.workers) + " x " +
                                     std::to_string(parsed.threads_per_worker) +
                                     " threads exceeds the " + std::to_string(cores) +
                                     " cores available (hardware, affinity mask and cgroup quota)");
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err);
  }

  parsed.max_message_bytes = max_message_mb * kMiB;
  parsed.memory_budget_bytes = memory_budget_mb * kMiB;
  parsed.max_request_bytes = max_request_mb * kMiB;
  parsed.weight_cache_bytes = weight_cache_mb * kMiB;
  parsed.gpu_weight_cache_bytes = gpu_weight_cache_mb * kMiB;
  parsed.filter_store_bytes = filter_store_mb * kMiB;
  parsed.grace_period = std::chrono::milliseconds(std::llround(grace_period_s * 1000.0));
  parsed.max_connection_age =
      std::chrono::milliseconds(std::llround(max_connection_age_s * 1000.0));
  parsed.reload_interval = std::chrono::seconds(reload_s);
  parsed.batch_max_delay = std::chrono::microseconds(batch_max_delay_us);
  std::sort(parsed.batch_preferred_sizes.begin(), parsed.batch_preferred_sizes.end());
  parsed.quota_bytes = quota_mb * kMiB;
  *config = std::move(parsed);
  return std::nullopt;
}

std::string DescribeConfig(const ServerConfig& config) {
  const std::pair<const char*, std::string> settings[] = {
      {"address", FormatValue(config.address)},
      {"metrics-address", FormatValue(config.metrics_address)},
      {"max-message-mb", FormatMiB(config.max_message_bytes)},
      {"max-output-elements", std::to_string(config.limits.max_output_elements)},
      {"backend", FormatValue(config.backend)},
      {"workers", std::to_string(config.workers)},
      {"fallback-workers", std::to_string(config.fallback_workers)},
      {"cuda-devices", FormatValue(config.cuda_devices)},
      {"gpu-weight-cache-mb", FormatMiB(config.gpu_weight_cache_bytes)},
      {"cuda-benchmark-algorithms", config.cuda_benchmark_algorithms ? "true" : "false"},
      {"allow-reduced-precision", config.allow_reduced_precision ? "true" : "false"},
      {"threads-per-worker", std::to_string(config.threads_per_worker)},
      {"max-queue", std::to_string(config.max_queue)},
      {"batch-max-size", std::to_string(config.batch_max_size)},
      {"batch-max-delay-us", std::to_string(config.batch_max_delay.count())},
      {"batch-preferred-sizes", FormatValue(absl::StrJoin(config.batch_preferred_sizes, ","))},
      {"inline-max-kflop", std::to_string(config.inline_max_kflop)},
      {"memory-budget-mb", FormatMiB(config.memory_budget_bytes)},
      {"max-request-mb", FormatMiB(config.max_request_bytes)},
      {"max-streams", std::to_string(config.max_streams)},
      {"stream-window", std::to_string(config.stream_window)},
      {"weight-cache-mb", FormatMiB(config.weight_cache_bytes)},
      {"filter-store-mb", FormatMiB(config.filter_store_bytes)},
      {"grace-period-s", FormatNumber(static_cast<double>(config.grace_period.count()) / 1000.0)},
      {"max-connection-age-s",
       FormatNumber(static_cast<double>(config.max_connection_age.count()) / 1000.0)},
      {"tls-cert", FormatValue(config.tls_cert_file)},
      {"tls-key", FormatValue(config.tls_key_file)},
      {"tls-client-ca", FormatValue(config.tls_client_ca_file)},
      {"auth-tokens-file", FormatValue(config.auth_tokens_file)},
      {"quota-requests", std::to_string(config.quota_requests)},
      {"quota-mb", FormatMiB(config.quota_bytes)},
      {"quota-filter-share", FormatNumber(config.quota_filter_share)},
      {"reload-s", FormatNumber(static_cast<double>(config.reload_interval.count()) / 1000.0)},
      {"log-level", FormatValue(config.log_level)},
      {"log-format", FormatValue(config.log_format)},
  };
  std::string line;
  for (const auto& [name, value] : settings) {
    if (!line.empty()) line += ' ';
    line += name;
    line += '=';
    line += value;
  }
  return line;
}

}  // namespace convserve::server
