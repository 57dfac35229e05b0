#include "client/perf/report.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"

namespace convserve::perf {
namespace {

std::string ErrorsText(const std::map<std::string, int64_t>& errors) {
  std::string text;
  for (const auto& [name, count] : errors) {
    absl::StrAppend(&text, text.empty() ? "" : " ", name, ":", count);
  }
  return text.empty() ? "-" : text;
}

}  // namespace

void PrintHeader() {
  std::printf("%-6s %-12s %8s %7s %8s %10s %9s %9s %9s %9s %9s  %s\n", "mode", "load", "ok",
              "dropped", "seconds", "req/s", "GFLOP/s", "p50_us", "p90_us", "p95_us", "p99_us",
              "errors");
}

void PrintRow(const StepResult& r) {
  std::printf("%-6s %-12s %8lld %7lld %8.2f %10.1f %9.2f %9.0f %9.0f %9.0f %9.0f  %s\n",
              r.mode.c_str(), r.load.c_str(), static_cast<long long>(r.ok),
              static_cast<long long>(r.dropped), r.seconds, r.rps, r.gflops, r.p50, r.p90, r.p95,
              r.p99, ErrorsText(r.errors).c_str());
  std::fflush(stdout);
}

bool WriteCsv(const std::string& path, const std::vector<StepResult>& rows) {
  std::ofstream out(path);
  out << "mode,load,level,ok,dropped,errors,seconds,req_per_s,gflops,p50_us,p90_us,p95_us,"
         "p99_us,echo_req_per_s,ratio_vs_echo,in_process_gflops,ratio_vs_in_process,"
         "limit_req_per_s,ratio_vs_limit,mean_batch,server_cpu_us\n";
  for (const StepResult& r : rows) {
    out << r.mode << "," << r.load << "," << r.level << "," << r.ok << "," << r.dropped << ","
        << ErrorsText(r.errors) << "," << r.seconds << "," << r.rps << "," << r.gflops << ","
        << r.p50 << "," << r.p90 << "," << r.p95 << "," << r.p99 << "," << r.echo_rps << ","
        << r.ratio_echo << "," << r.in_process_gflops << "," << r.ratio_in_process << ","
        << r.limit_rps << "," << r.ratio_limit << "," << r.mean_batch << "," << r.server_cpu_us
        << "\n";
  }
  return static_cast<bool>(out);
}

bool WriteLatencyLog(const std::string& path, const std::vector<StepResult>& rows) {
  std::ofstream out(path);
  out << "mode,load,end_unix_ms,latency_us,code\n";
  for (const StepResult& r : rows) {
    for (const Sample& sample : r.samples) {
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(sample.end.time_since_epoch())
              .count();
      out << r.mode << "," << r.load << "," << ms << "," << sample.latency_us << "," << sample.code
          << "\n";
    }
  }
  return static_cast<bool>(out);
}

bool WriteJson(const std::string& path, const Options& o, const Workload& w,
               const std::vector<StepResult>& rows) {
  std::ofstream out(path);
  out << "{\"op\":\"" << o.op << "\",\"dtype\":\"" << o.dtype << "\",\"mode\":\"" << o.mode
      << "\",\"flops_per_request\":" << w.flops << ",\"request_bytes\":" << w.request.ByteSizeLong()
      << ",\"steps\":[";
  for (size_t i = 0; i < rows.size(); ++i) {
    const StepResult& r = rows[i];
    out << (i ? "," : "") << "{\"mode\":\"" << r.mode << "\",\"load\":\"" << r.load
        << "\",\"level\":" << r.level << ",\"ok\":" << r.ok << ",\"dropped\":" << r.dropped
        << ",\"errors\":{";
    bool first = true;
    for (const auto& [name, count] : r.errors) {
      out << (first ? "" : ",") << "\"" << name << "\":" << count;
      first = false;
    }
    out << "},\"seconds\":" << r.seconds << ",\"req_per_s\":" << r.rps << ",\"gflops\":" << r.gflops
        << ",\"p50_us\":" << r.p50 << ",\"p90_us\":" << r.p90 << ",\"p95_us\":" << r.p95
        << ",\"p99_us\":" << r.p99;
    if (r.echo_rps >= 0) {
      out << ",\"echo_req_per_s\":" << r.echo_rps << ",\"ratio_vs_echo\":" << r.ratio_echo;
    }
    if (r.in_process_gflops >= 0) {
      out << ",\"in_process_gflops\":" << r.in_process_gflops
          << ",\"ratio_vs_in_process\":" << r.ratio_in_process;
    }
    if (r.limit_rps >= 0) {
      out << ",\"limit_req_per_s\":" << r.limit_rps << ",\"ratio_vs_limit\":" << r.ratio_limit;
    }
    if (r.mean_batch >= 0) out << ",\"mean_batch\":" << r.mean_batch;
    if (r.server_cpu_us >= 0) out << ",\"server_cpu_us\":" << r.server_cpu_us;
    out << "}";
  }
  out << "]}\n";
  return static_cast<bool>(out);
}

}  // namespace convserve::perf
