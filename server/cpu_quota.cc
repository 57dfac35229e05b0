#include "server/cpu_quota.h"

#include <sched.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>
#include <vector>

namespace convserve::server {
namespace {

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

}  // namespace

std::optional<double> ParseCgroupV2CpuMax(std::string_view cpu_max) {
  const std::string_view line = Trim(cpu_max.substr(0, cpu_max.find('\n')));
  const size_t space = line.find(' ');
  const std::string_view quota = line.substr(0, space);
  if (quota == "max") return std::nullopt;
  // The period may be left out; the kernel's default is 100 ms.
  const std::optional<int64_t> period = space == std::string_view::npos
                                            ? std::optional<int64_t>(100000)
                                            : ParseInt(line.substr(space + 1));
  return QuotaCpus(ParseInt(quota), period);
}

std::optional<double> ParseCgroupV1CpuQuota(std::string_view quota_us, std::string_view period_us) {
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

}  // namespace convserve::server
