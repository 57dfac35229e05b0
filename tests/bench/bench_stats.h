// What the benchmarks share: elapsed seconds, a robust middle, and the
// relative error of a result against a reference.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
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

// max |got - want| / max |want| over `elements` entries, read by
// got(i) and want(i) as doubles; infinite if `got` has a non-finite entry.
template <typename Got, typename Want>
double MaxRelativeError(int64_t elements, Got got, Want want) {
  double max_diff = 0, max_want = 0;
  for (int64_t i = 0; i < elements; ++i) {
    const double x = got(i), y = want(i);
    if (!std::isfinite(x)) return INFINITY;
    max_diff = std::max(max_diff, std::abs(x - y));
    max_want = std::max(max_want, std::abs(y));
  }
  return max_want > 0 ? max_diff / max_want : max_diff;
}

}  // namespace convserve::bench
