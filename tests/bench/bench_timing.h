// Timing helpers the benchmarks share: elapsed seconds and a robust middle.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

namespace convserve::bench {

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The median: robust to the moments when another process takes a core.
inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  if (v.size() % 2 == 1) return *mid;
  return (*mid + *std::max_element(v.begin(), mid)) / 2;
}

}  // namespace convserve::bench
