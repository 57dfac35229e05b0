// convserve-perf's command line: every option, its checks, and the sweep it
// asks for.
//
// Contract: CommandLine::Parse fills Options from argv or says how the process
// should exit instead (--help, or a usage error printed as CLI11 prints them,
// with CLI11's exit codes); a parsed Options is consistent (the sweep parsed,
// --target moved into `addresses`, flag combinations checked). Refuse reports
// a later usage error (e.g. a shape the op does not accept) the same way.
//
// Thread safety: CommandLine is used by main's thread alone; a parsed Options
// is read-only afterwards and may be shared by every thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/credentials.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace convserve::perf {

struct Options {
  // Where to: addresses round-robin over `connections` channels, or (with
  // --target) one gRPC target in addresses[0].
  std::vector<std::string> addresses{"127.0.0.1:50051"};
  std::string target;
  std::string lb_policy;
  bool health_check = false;
  int max_attempts = 1;
  std::vector<std::string> retry_on{"UNAVAILABLE"};
  int connections = 1;
  // TLS (--tls-ca, --tls-cert, --tls-key); plaintext when unset.
  client::TransportOptions transport;
  // What: "unary", "stream" or "echo", and the request.
  std::string mode = "unary";
  std::string op = "conv2d";
  std::vector<int64_t> input_shape{1, 56, 56, 64};
  std::vector<int64_t> filter_shape{3, 3, 64, 64};
  std::vector<int64_t> strides;
  std::vector<int64_t> output_shape;
  std::string padding = "SAME";
  std::string dtype = "float32";
  bool registered_filter = false;
  // How much: a closed-loop concurrency sweep, or open-loop rates.
  std::string concurrency = "1";
  std::string rate;
  std::string arrivals = "constant";
  int max_in_flight = 64;
  int64_t requests = 1000;
  double duration_s = 10;
  int64_t warmup_requests = 10;
  int timeout_ms = 30000;
  // Baselines.
  bool compare_echo = false;
  bool compare_in_process = false;
  double in_process_seconds = 1.0;
  // Each step and its baselines run this many times, interleaved; the ratios
  // are the medians over the rounds (one noisy moment then moves one round).
  int rounds = 1;
  // The server's Prometheus page (http:// or https://); with it, each step
  // reports the mean batch size (requests per kernel call) it saw there.
  std::string metrics_url;
  // Extra outputs; empty: none.
  std::string csv_path, json_path, latency_log_path;

  // Derived by Parse: the steps (concurrencies, or rates in requests/s).
  std::vector<double> levels;
  bool open_loop() const { return !rate.empty(); }
};

class CommandLine {
 public:
  CommandLine();
  ~CommandLine();

  // Parses argv into options(). nullopt: go on; otherwise the process's exit
  // status (help or a usage error, already printed).
  std::optional<int> Parse(int argc, char** argv);
  // Prints `message` as a usage error and returns the exit status to use.
  int Refuse(const std::string& message);

  const Options& options() const { return options_; }

 private:
  Options options_;
  std::unique_ptr<CLI::App> app_;
  CLI::Option* target_option_ = nullptr;  // to learn whether --target was given
};

}  // namespace convserve::perf
