// The cores this process may use, from the hardware, its CPU affinity mask
// and the CPU quota of the cgroups it runs in (cgroup v2 cpu.max, else v1
// cpu.cfs_quota_us / cpu.cfs_period_us).
//
// Contract: nothing here fails. A file that is missing, unreadable or
// malformed counts as "no limit from it", so CoresAvailable() is always at
// least 1 and never more than the hardware threads (when those are known).
// Nothing is cached: each call reads the affinity mask and the cgroup files
// again, so call CoresAvailable() once (at start-up), not per request.
//
// Thread-safety: every function is safe to call from any number of threads at
// once. They keep no state of their own; CgroupCpuQuota and CoresAvailable
// only read files and the calling thread's affinity mask.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace convserve::server {

// The cores this process may use: the least of the hardware threads, the CPU
// affinity mask and the cgroup CPU quota (rounded up); at least 1.
int CoresAvailable();

// CPUs granted by a cgroup v2 `cpu.max` file ("max 100000" -> none,
// "150000 100000" -> 1.5); nullopt when unlimited or unreadable.
std::optional<double> ParseCgroupV2CpuMax(std::string_view cpu_max);
// CPUs granted by cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`
// ("-1" -> none); nullopt when unlimited or unreadable.
std::optional<double> ParseCgroupV1CpuQuota(std::string_view quota_us, std::string_view period_us);
// The tightest CPU quota of the cgroups under `cgroup_root` (normally
// /sys/fs/cgroup) that apply to a process whose /proc/self/cgroup reads
// `proc_self_cgroup`: v2 cpu.max of its cgroup and every ancestor (and of
// `cgroup_root` itself, as seen inside a cgroup namespace), else v1
// cpu/cpu.cfs_quota_us. nullopt when no quota applies or no file is found.
std::optional<double> CgroupCpuQuota(const std::string& cgroup_root,
                                     std::string_view proc_self_cgroup);

}  // namespace convserve::server
