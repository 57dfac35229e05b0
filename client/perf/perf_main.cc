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
// process on the oneDNN backend and prints served / in-process GFLOP/s.
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
#include "client/perf/workload.h"

namespace convserve::perf {
namespace {

int Run(int argc, char** argv) {
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

  std::vector<StepResult> rows;
  std::vector<std::string> ratio_lines;
  PrintHeader();
  for (double level : o.levels) {
    StepResult ours = run_step(o.mode, level);
    if (in_process > 0 && o.mode != "echo") {
      ours.in_process_gflops = in_process;
      ours.ratio_in_process = ours.gflops / in_process;
    }
    PrintRow(ours);
    if (o.compare_echo && o.mode != "echo") {
      StepResult echo = run_step("echo", level);
      PrintRow(echo);
      ours.echo_rps = echo.rps;
      ours.ratio_echo = echo.rps > 0 ? ours.rps / echo.rps : 0;
      ratio_lines.push_back(
          absl::StrFormat("ratio ours/echo throughput at %s: %.3f (%s %.1f req/s, echo %.1f req/s)",
                          ours.load, ours.ratio_echo, ours.mode, ours.rps, echo.rps));
      rows.push_back(ours);
      rows.push_back(echo);
    } else {
      rows.push_back(ours);
    }
    if (ours.in_process_gflops > 0) {
      ratio_lines.push_back(absl::StrFormat(
          "ratio served/in-process GFLOP/s at %s: %.3f (served %.2f, in-process %.2f)", ours.load,
          ours.ratio_in_process, ours.gflops, in_process));
    }
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
