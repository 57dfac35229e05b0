#include "client/perf/options.h"

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "client/transport_flags.h"

namespace convserve::perf {
namespace {

// "1,4,16" or "lo:hi:xF" (lo, lo*F, ... up to hi).
std::vector<double> ParseSweep(const std::string& text) {
  std::vector<double> values;
  if (text.find(':') != std::string::npos) {
    std::vector<std::string> parts = absl::StrSplit(text, ':');
    double lo = 0, hi = 0, factor = 0;
    if (parts.size() != 3 || parts[2].empty() || parts[2][0] != 'x' ||
        !absl::SimpleAtod(parts[0], &lo) || !absl::SimpleAtod(parts[1], &hi) ||
        !absl::SimpleAtod(parts[2].substr(1), &factor) || lo <= 0 || hi < lo || factor <= 1) {
      throw CLI::ValidationError("sweep", "expected lo:hi:xF with 0 < lo <= hi and F > 1: " + text);
    }
    for (double v = lo; v <= hi * (1 + 1e-9); v *= factor) values.push_back(v);
  } else {
    for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
      double v = 0;
      if (!absl::SimpleAtod(part, &v) || v <= 0) {
        throw CLI::ValidationError("sweep", "expected positive numbers: " + text);
      }
      values.push_back(v);
    }
  }
  if (values.empty()) throw CLI::ValidationError("sweep", "empty: " + text);
  return values;
}

}  // namespace

CommandLine::CommandLine()
    : app_(std::make_unique<CLI::App>(
          "convserve-perf: ConvServe load generator (closed-loop concurrency sweeps, "
          "open-loop rates, Echo and in-process baselines)")) {
  CLI::App& app = *app_;
  Options& o = options_;
  CLI::Option* address_option =
      app.add_option("--address", o.addresses,
                     "server host:port; repeat or comma-separate to spread connections round-robin")
          ->delimiter(',')
          ->capture_default_str();
  target_option_ = app.add_option("--target", o.target,
                                  "one gRPC target instead of --address, taken whole: e.g. "
                                  "ipv4:127.0.0.2:50051,127.0.0.3:50051 or dns:///host:50051")
                       ->excludes(address_option);
  app.add_option("--lb-policy", o.lb_policy, "gRPC load balancing policy (default: pick_first)")
      ->check(CLI::IsMember({"pick_first", "round_robin"}));
  app.add_flag("--health-check", o.health_check,
               "client-side health checking: send only to backends whose "
               "convserve.v1.ConvService health is SERVING");
  app.add_option("--max-attempts", o.max_attempts,
                 "attempts per call; above 1, calls that fail with a --retry-on code are "
                 "retried (gRPC allows at most 5)")
      ->check(CLI::Range(1, 5))
      ->capture_default_str();
  app.add_option("--retry-on", o.retry_on,
                 "status codes --max-attempts retries, e.g. UNAVAILABLE,RESOURCE_EXHAUSTED "
                 "(a full queue refuses a request before running it)")
      ->delimiter(',')
      ->check(CLI::IsMember({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "ABORTED",
                             "INTERNAL", "UNKNOWN"}))
      ->capture_default_str();
  client::AddTransportFlags(app, &o.transport);
  app.add_option("--connections", o.connections,
                 "gRPC channels (TCP connections), at least one per address; callers share them "
                 "round-robin")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--mode", o.mode, "unary (Conv), stream (ConvStream) or echo (EchoService)")
      ->check(CLI::IsMember({"unary", "stream", "echo"}))
      ->capture_default_str();
  app.add_option("--op", o.op, "the op")
      ->check(CLI::IsMember({"conv2d", "depthwise_conv2d", "conv2d_transpose", "conv1d", "conv3d"}))
      ->capture_default_str();
  app.add_option("--input-shape", o.input_shape, "input shape, e.g. 1,56,56,64")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--filter-shape", o.filter_shape, "filter shape, e.g. 3,3,64,64")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--strides", o.strides, "strides as TensorFlow takes them (empty: ones)")
      ->delimiter(',');
  app.add_option("--output-shape", o.output_shape, "conv2d_transpose's output_shape")
      ->delimiter(',');
  app.add_option("--padding", o.padding, "SAME or VALID")
      ->check(CLI::IsMember({"SAME", "VALID"}))
      ->capture_default_str();
  app.add_option("--dtype", o.dtype, "element type")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16", "float64", "int32"}))
      ->capture_default_str();
  app.add_flag("--registered-filter", o.registered_filter,
               "RegisterFilter once (on every address), then send the filter's id");
  app.add_option("--concurrency", o.concurrency,
                 "closed-loop sweep: a list \"1,4,16\" or a range \"lo:hi:xF\"")
      ->capture_default_str();
  app.add_option("--rate", o.rate,
                 "open loop instead: requests/s, a list or a range like --concurrency");
  app.add_option("--arrivals", o.arrivals, "open-loop arrival process")
      ->check(CLI::IsMember({"constant", "poisson"}))
      ->capture_default_str();
  app.add_option("--max-in-flight", o.max_in_flight,
                 "open loop: requests outstanding at most; arrivals beyond are dropped")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--requests", o.requests, "requests per step at most")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--duration", o.duration_s, "seconds per step at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup-requests", o.warmup_requests,
                 "requests per step before measuring, spread over the callers")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--timeout-ms", o.timeout_ms, "deadline of each unary call")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--compare-echo", o.compare_echo,
               "after each step, run it again through EchoService with the same request and "
               "reply sizes and print ours/echo throughput");
  app.add_flag("--compare-in-process", o.compare_in_process,
               "measure the op in this process (oneDNN, all cores, warm weight cache) and print "
               "served / in-process GFLOP/s");
  app.add_option("--in-process-seconds", o.in_process_seconds,
                 "seconds spent measuring the in-process baseline")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--rounds", o.rounds,
                 "run each step and its baselines this many times, interleaved, and print "
                 "the median of each ratio over the rounds")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--metrics-url", o.metrics_url,
                 "the server's /metrics (http:// or https://, verified with --tls-ca): print "
                 "each step's mean batch size (requests per kernel call, from "
                 "convserve_batch_size) and the server's CPU microseconds per request (from "
                 "process_cpu_seconds_total), for ours and echo (against several servers: "
                 "that one server's CPU divided by all their requests)");
  app.add_option("--csv", o.csv_path, "also write the steps as CSV to this file");
  app.add_option("--json", o.json_path, "also write the steps as JSON to this file");
  app.add_option("--latency-log", o.latency_log_path,
                 "also write every request (end time, latency, status) as CSV to this file");
}

CommandLine::~CommandLine() = default;

std::optional<int> CommandLine::Parse(int argc, char** argv) {
  Options& o = options_;
  try {
    app_->parse(argc, argv);
    if (target_option_->count() > 0) {
      if (o.registered_filter) {
        throw CLI::ValidationError("--registered-filter",
                                   "needs --address: with --target, RegisterFilter would reach "
                                   "one replica only");
      }
      o.addresses = {o.target};
    }
    if (o.health_check && o.lb_policy != "round_robin") {
      throw CLI::ValidationError("--health-check",
                                 "needs --lb-policy round_robin (gRPC checks health only there)");
    }
    o.levels = ParseSweep(o.open_loop() ? o.rate : o.concurrency);
  } catch (const CLI::ParseError& e) {
    return app_->exit(e);
  }
  return std::nullopt;
}

int CommandLine::Refuse(const std::string& message) {
  return app_->exit(CLI::ValidationError(message));
}

}  // namespace convserve::perf
