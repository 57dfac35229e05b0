// convserve-perf: ConvServe's load generator. Sweeps closed-loop concurrency
// (a list "1,4,16" or a range "1:64:x2") or open-loop arrival rates, through
// unary Conv, ConvStream or the Echo baseline, and reports per step requests
// ok, errors by status code, req/s, GFLOP/s and latency percentiles.
//
//   convserve-perf --address 127.0.0.1:50051 --mode unary --op conv2d
//       --input-shape 1,56,56,64 --filter-shape 3,3,64,64 --padding SAME
//       --concurrency 1:16:x2 --compare-echo --compare-in-process
//
// --compare-echo runs every step again through EchoService with the same
// request and reply sizes (gRPC's own floor on this server) and prints the
// ours/echo throughput ratio; --compare-in-process measures the same op in this
// process on the oneDNN backend and prints served / in-process GFLOP/s; with
// both, served / limit, the limit being the throughput if a request cost only
// its in-process compute plus an echo of its bytes. --rounds N interleaves N
// runs of each and prints medians; --metrics-url adds the mean batch size and
// the server's CPU time per request (ours and echo).
//
// Several replicas: --target takes any gRPC target (e.g.
// "ipv4:127.0.0.2:50051,127.0.0.3:50051" or "dns:///convserve-headless:50051")
// with --lb-policy round_robin, --health-check (skip replicas that are not
// SERVING) and --max-attempts (retry UNAVAILABLE calls).
//
// The parts: options (command line), workload (the request), channels and
// callers (gRPC), loops (closed and open loop steps), in_process (the oneDNN
// baseline), report (table, CSV, JSON, latency log).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/perf/callers.h"
#include "client/perf/channels.h"
#include "client/perf/in_process.h"
#include "client/perf/loops.h"
#include "client/perf/options.h"
#include "client/perf/report.h"
#include "client/perf/server_metrics.h"
#include "client/perf/workload.h"
#include "core/process_settings.h"

namespace convserve::perf {
namespace {

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// What a step added to the server's counters, from the metrics pages read
// before and after it (empty when unread): the mean batch size, and the
// server's CPU time per request sent (its warm-up included).
void AddServerShare(const std::string& before, const std::string& after, int64_t warmup,
                    StepResult* step) {
  const std::optional<HistogramTotals> batch_before = FindHistogram(before, "convserve_batch_size");
  const std::optional<HistogramTotals> batch_after = FindHistogram(after, "convserve_batch_size");
  if (batch_before && batch_after && batch_after->count > batch_before->count) {
    step->mean_batch =
        (batch_after->sum - batch_before->sum) / (batch_after->count - batch_before->count);
  }
  const std::optional<double> cpu_before = FindSample(before, "process_cpu_seconds_total");
  const std::optional<double> cpu_after = FindSample(after, "process_cpu_seconds_total");
  int64_t sent = step->ok + warmup;
  for (const auto& [code, count] : step->errors) sent += count;
  if (cpu_before && cpu_after && sent > 0) {
    step->server_cpu_us = (*cpu_after - *cpu_before) / static_cast<double>(sent) * 1e6;
  }
}

int Run(int argc, char** argv) {
  // As in the server: without it, the client's own page faults halved the
  // throughput of 800 KB echoes at concurrency 4, and the client shares the cores.
  ApplyRpcProcessSettings();
  CommandLine command_line;
  if (std::optional<int> exit_code = command_line.Parse(argc, argv)) return *exit_code;
  const Options& o = command_line.options();
  absl::StatusOr<Workload> workload = MakeWorkload(o);
  if (!workload.ok()) return command_line.Refuse(std::string(workload.status().message()));
  Workload& w = *workload;

  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      client::MakeChannelCredentials(o.transport);
  if (!credentials.ok()) return command_line.Refuse(std::string(credentials.status().message()));
  std::vector<Stubs> stubs = MakeStubs(o, *credentials);
  if (o.registered_filter) {
    absl::StatusOr<std::string> id =
        RegisterFilterEverywhere(o, stubs, w.request.filter().tensor());
    if (!id.ok()) {
      std::cerr << "error: " << id.status().message() << "\n";
      return EXIT_FAILURE;
    }
    w.request.mutable_filter()->set_filter_id(*id);
  }
  // One real call per address: checks the request and learns the reply size.
  absl::StatusOr<int64_t> reply_bytes = ProbeReplyBytes(o, stubs, w.request);
  if (!reply_bytes.ok()) {
    std::cerr << "error: " << reply_bytes.status().message() << "\n";
    return EXIT_FAILURE;
  }
  v1::EchoRequest echo_request;
  echo_request.set_payload(std::string(w.request.ByteSizeLong(), '\0'));
  echo_request.set_reply_bytes(*reply_bytes);

  std::printf(
      "convserve-perf: %s %s %s input=%s filter=%s; %.4f GFLOP/request; request %zu "
      "bytes, reply %lld bytes; %zu address(es), %d connection(s)\n",
      o.mode.c_str(), o.op.c_str(), o.dtype.c_str(), absl::StrJoin(o.input_shape, "x").c_str(),
      absl::StrJoin(o.filter_shape, "x").c_str(), w.flops / 1e9, w.request.ByteSizeLong(),
      static_cast<long long>(*reply_bytes), o.addresses.size(), static_cast<int>(stubs.size()));

  double in_process = -1;
  if (o.compare_in_process) {
    in_process = InProcessGflops(w, o.in_process_seconds);
    std::printf("in-process: %.2f GFLOP/s (oneDNN, %u threads, warm weight cache)\n", in_process,
                std::max(1u, std::thread::hardware_concurrency()));
  }

  auto run_step = [&](const std::string& mode, double level) {
    const double flops = mode == "echo" ? 0 : w.flops;
    const CallerFactory make =
        MakeCallerFactory(mode, stubs, w.request, echo_request, o.timeout_ms);
    return o.open_loop() ? RunOpen(o, mode, level, make, flops)
                         : RunClosed(o, mode, static_cast<int>(level), make, flops);
  };

  // The server's metrics page; empty without --metrics-url or when
  // unreadable (said once).
  bool metrics_warned = false;
  auto metrics_page = [&]() -> std::string {
    if (o.metrics_url.empty()) return "";
    absl::StatusOr<std::string> page = FetchMetricsPage(o.metrics_url, o.transport);
    if (page.ok()) return *std::move(page);
    if (!metrics_warned) std::cerr << "warning: no server metrics: " << page.status() << "\n";
    metrics_warned = true;
    return "";
  };

  std::vector<StepResult> rows;
  std::vector<std::string> ratio_lines;
  PrintHeader();
  for (double level : o.levels) {
    std::vector<double> echo_ratios, in_process_ratios, limit_ratios, mean_batches;
    std::vector<double> server_cpu, echo_server_cpu, cpu_ratios;
    std::string load;
    for (int round = 0; round < o.rounds; ++round) {
      if (round > 0 && o.compare_in_process) in_process = InProcessGflops(w, o.in_process_seconds);
      const std::string before = metrics_page();
      StepResult ours = run_step(o.mode, level);
      const std::string after = metrics_page();
      load = ours.load;
      AddServerShare(before, after, o.warmup_requests, &ours);
      if (ours.mean_batch >= 0) mean_batches.push_back(ours.mean_batch);
      if (ours.server_cpu_us >= 0) server_cpu.push_back(ours.server_cpu_us);
      if (in_process > 0 && o.mode != "echo") {
        ours.in_process_gflops = in_process;
        ours.ratio_in_process = ours.gflops / in_process;
        in_process_ratios.push_back(ours.ratio_in_process);
      }
      PrintRow(ours);
      if (o.compare_echo && o.mode != "echo") {
        StepResult echo = run_step("echo", level);
        AddServerShare(after, metrics_page(), o.warmup_requests, &echo);
        PrintRow(echo);
        ours.echo_rps = echo.rps;
        ours.ratio_echo = echo.rps > 0 ? ours.rps / echo.rps : 0;
        echo_ratios.push_back(ours.ratio_echo);
        if (ours.server_cpu_us > 0 && echo.server_cpu_us > 0) {
          echo_server_cpu.push_back(echo.server_cpu_us);
          cpu_ratios.push_back(ours.server_cpu_us / echo.server_cpu_us);
        }
        if (ours.in_process_gflops > 0 && echo.rps > 0 && w.flops > 0) {
          const double in_process_rps = in_process * 1e9 / w.flops;
          ours.limit_rps = 1 / (1 / in_process_rps + 1 / echo.rps);
          ours.ratio_limit = ours.rps / ours.limit_rps;
          limit_ratios.push_back(ours.ratio_limit);
        }
        rows.push_back(ours);
        rows.push_back(echo);
      } else {
        rows.push_back(ours);
      }
    }
    auto add_line = [&](const std::string& what, const std::vector<double>& values) {
      if (values.empty()) return;
      std::string line = absl::StrFormat("%s at %s: %.3f", what, load, Median(values));
      if (values.size() > 1) {
        line += absl::StrFormat(" (median of %d rounds: %s)", values.size(),
                                absl::StrJoin(values, " ", [](std::string* out, double v) {
                                  absl::StrAppendFormat(out, "%.3f", v);
                                }));
      }
      ratio_lines.push_back(line);
    };
    add_line("ratio ours/echo throughput", echo_ratios);
    add_line("ratio served/in-process GFLOP/s", in_process_ratios);
    add_line("ratio served/limit (in-process compute + echo)", limit_ratios);
    add_line("mean batch size (requests per kernel call)", mean_batches);
    add_line("server CPU per request, ours (us)", server_cpu);
    add_line("server CPU per request, echo (us)", echo_server_cpu);
    add_line("ratio server CPU per request ours/echo", cpu_ratios);
  }
  for (const std::string& line : ratio_lines) std::printf("%s\n", line.c_str());

  if (!o.csv_path.empty() && !WriteCsv(o.csv_path, rows)) {
    std::cerr << "error: cannot write " << o.csv_path << "\n";
    return EXIT_FAILURE;
  }
  if (!o.json_path.empty() && !WriteJson(o.json_path, o, w, rows)) {
    std::cerr << "error: cannot write " << o.json_path << "\n";
    return EXIT_FAILURE;
  }
  if (!o.latency_log_path.empty() && !WriteLatencyLog(o.latency_log_path, rows)) {
    std::cerr << "error: cannot write " << o.latency_log_path << "\n";
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}

}  // namespace
}  // namespace convserve::perf

int main(int argc, char** argv) { return convserve::perf::Run(argc, argv); }
