#include "server/flags.h"

#include <sched.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"

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

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) return std::nullopt;
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) return std::nullopt;
  return contents.str();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::optional<int64_t> ParseInt(std::string_view s) {
  s = Trim(s);
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

std::optional<double> QuotaCpus(std::optional<int64_t> quota, std::optional<int64_t> period) {
  if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;
  return static_cast<double>(*quota) / static_cast<double>(*period);
}

std::vector<std::string_view> Split(std::string_view s, char separator) {
  std::vector<std::string_view> parts;
  while (true) {
    const size_t at = s.find(separator);
    parts.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return parts;
    s.remove_prefix(at + 1);
  }
}

// `path` ("/a/b") and its ancestors ("/a/b", "/a", ""), deepest first; none
// when it climbs with "..", as it does for a cgroup outside this namespace.
std::vector<std::string> SelfAndAncestors(std::string_view path) {
  std::vector<std::string> paths;
  std::string current(Trim(path));
  while (!current.empty() && current.back() == '/') current.pop_back();
  for (std::string_view part : Split(current, '/')) {
    if (part == "..") return {};
  }
  while (!current.empty()) {
    paths.push_back(current);
    current.resize(current.rfind('/') == std::string::npos ? 0 : current.rfind('/'));
  }
  paths.push_back("");
  return paths;
}

void KeepLeast(std::optional<double>& least, std::optional<double> candidate) {
  if (candidate && (!least || *candidate < *least)) least = candidate;
}

int CpusInAffinityMask() {
  for (size_t cpus = 1024; cpus <= (size_t{1} << 20); cpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(cpus);
    if (set == nullptr) return 0;
    const size_t size = CPU_ALLOC_SIZE(cpus);
    CPU_ZERO_S(size, set);
    const int rc = sched_getaffinity(0, size, set);
    const int count = rc == 0 ? CPU_COUNT_S(size, set) : 0;
    const bool too_small = rc != 0 && errno == EINVAL;
    CPU_FREE(set);
    if (!too_small) return count;
  }
  return 0;
}

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
          return "must be from 0 to " + FormatNumber(kMaxSeconds) + " seconds, got " +
                 input + source;
        }
        return std::string();
      },
      "NON-NEGATIVE");
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

std::optional<double> ParseCgroupV2CpuMax(std::string_view cpu_max) {
  const std::string_view line = Trim(cpu_max.substr(0, cpu_max.find('\n')));
  const size_t space = line.find(' ');
  const std::string_view quota = line.substr(0, space);
  if (quota == "max") return std::nullopt;
  // The period may be left out; the kernel's default is 100 ms.
  const std::optional<int64_t> period =
      space == std::string_view::npos ? std::optional<int64_t>(100000)
                                      : ParseInt(line.substr(space + 1));
  return QuotaCpus(ParseInt(quota), period);
}

std::optional<double> ParseCgroupV1CpuQuota(std::string_view quota_us,
                                            std::string_view period_us) {
  return QuotaCpus(ParseInt(quota_us), ParseInt(period_us));
}

std::optional<double> CgroupCpuQuota(const std::string& cgroup_root,
                                     std::string_view proc_self_cgroup) {
  // cgroup v2 ("0::/path") and v1 with the cpu controller ("3:cpu,cpuacct:/path").
  std::optional<std::string> v2_path;
  std::optional<std::string> v1_path;
  for (std::string_view line : Split(proc_self_cgroup, '\n')) {
    const std::vector<std::string_view> fields = Split(line, ':');
    if (fields.size() < 3) continue;
    // The path may itself hold ':'.
    const std::string path(line.substr(fields[0].size() + fields[1].size() + 2));
    if (fields[0] == "0" && fields[1].empty()) {
      v2_path = path;
      continue;
    }
    for (std::string_view controller : Split(fields[1], ',')) {
      if (controller == "cpu") v1_path = path;
    }
  }

  std::optional<double> least;
  bool found_v2 = false;
  std::vector<std::string> v2_dirs = {""};  // the root: our own cgroup inside a namespace
  if (v2_path) {
    for (const std::string& dir : SelfAndAncestors(*v2_path)) v2_dirs.push_back(dir);
  }
  for (const std::string& dir : v2_dirs) {
    if (std::optional<std::string> cpu_max = ReadFile(cgroup_root + dir + "/cpu.max")) {
      found_v2 = true;
      KeepLeast(least, ParseCgroupV2CpuMax(*cpu_max));
    }
  }
  if (found_v2) return least;

  for (const char* mount : {"/cpu", "/cpu,cpuacct", "/cpuacct,cpu"}) {
    std::vector<std::string> v1_dirs = {""};
    if (v1_path) {
      for (const std::string& dir : SelfAndAncestors(*v1_path)) v1_dirs.push_back(dir);
    }
    for (const std::string& dir : v1_dirs) {
      const std::string base = cgroup_root + mount + dir;
      const std::optional<std::string> quota = ReadFile(base + "/cpu.cfs_quota_us");
      const std::optional<std::string> period = ReadFile(base + "/cpu.cfs_period_us");
      if (quota && period) KeepLeast(least, ParseCgroupV1CpuQuota(*quota, *period));
    }
  }
  return least;
}

int CoresAvailable() {
  int64_t cores = std::numeric_limits<int>::max();
  if (const unsigned hardware = std::thread::hardware_concurrency(); hardware > 0) {
    cores = std::min<int64_t>(cores, hardware);
  }
  if (const int affinity = CpusInAffinityMask(); affinity > 0) {
    cores = std::min<int64_t>(cores, affinity);
  }
  const std::optional<double> quota =
      CgroupCpuQuota("/sys/fs/cgroup", ReadFile("/proc/self/cgroup").value_or(""));
  if (quota) cores = std::min<int64_t>(cores, static_cast<int64_t>(std::ceil(*quota)));
  if (cores == std::numeric_limits<int>::max()) cores = 1;
  return static_cast<int>(std::max<int64_t>(cores, 1));
}

std::optional<int> ParseServerFlags(int argc, const char* const* argv, ServerConfig* config,
                                    std::ostream& out, std::ostream& err) {
  ServerConfig parsed;
  const int cores = CoresAvailable();
  int64_t max_message_mb = parsed.max_message_bytes / kMiB;
  int64_t memory_budget_mb = parsed.memory_budget_bytes / kMiB;
  int64_t max_request_mb = parsed.max_request_bytes / kMiB;
  int64_t weight_cache_mb = parsed.weight_cache_bytes / kMiB;
  int64_t filter_store_mb = parsed.filter_store_bytes / kMiB;
  double grace_period_s = static_cast<double>(parsed.grace_period.count()) / 1000.0;
  double max_connection_age_s = static_cast<double>(parsed.max_connection_age.count()) / 1000.0;

  CLI::App app("convserve-server: TensorFlow's convolution ops over gRPC.\n"
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
  add("--backend", parsed.backend, "compute backend: onednn or reference")
      ->transform(CLI::IsMember({"onednn", "reference"}, CLI::ignore_case));
  add("--workers", parsed.workers, "requests computed at once")->check(positive("--workers"));
  CLI::Option* threads_option =
      add("--threads-per-worker", parsed.threads_per_worker,
          "threads each request computes with; workers x threads may not exceed the cores "
          "available (" + std::to_string(cores) + " here)")
          ->check(positive("--threads-per-worker"))
          ->default_str("cores/workers");
  add("--max-queue", parsed.max_queue,
      "requests admitted but not yet running; more are refused (RESOURCE_EXHAUSTED)")
      ->check(positive("--max-queue"));
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
    if (int64_t{parsed.workers} * parsed.threads_per_worker > cores) {
      throw CLI::ValidationError(
          "--workers x --threads-per-worker",
          std::to_string(parsed.workers) + " x " + std::to_string(parsed.threads_per_worker) +
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
  parsed.filter_store_bytes = filter_store_mb * kMiB;
  parsed.grace_period = std::chrono::milliseconds(std::llround(grace_period_s * 1000.0));
  parsed.max_connection_age =
      std::chrono::milliseconds(std::llround(max_connection_age_s * 1000.0));
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
      {"threads-per-worker", std::to_string(config.threads_per_worker)},
      {"max-queue", std::to_string(config.max_queue)},
      {"memory-budget-mb", FormatMiB(config.memory_budget_bytes)},
      {"max-request-mb", FormatMiB(config.max_request_bytes)},
      {"max-streams", std::to_string(config.max_streams)},
      {"stream-window", std::to_string(config.stream_window)},
      {"weight-cache-mb", FormatMiB(config.weight_cache_bytes)},
      {"filter-store-mb", FormatMiB(config.filter_store_bytes)},
      {"grace-period-s", FormatNumber(static_cast<double>(config.grace_period.count()) / 1000.0)},
      {"max-connection-age-s",
       FormatNumber(static_cast<double>(config.max_connection_age.count()) / 1000.0)},
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
