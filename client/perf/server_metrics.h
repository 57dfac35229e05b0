// convserve-perf's view of the server's Prometheus page (--metrics-url), read
// before and after a step so that the step's own share is their difference:
// the mean batch size from convserve_batch_size, and the server's CPU time
// per request from process_cpu_seconds_total.
//
// Thread safety: these functions hold no state; call them from any thread.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/credentials.h"

namespace convserve::perf {

// GETs `url` ("http://host:port/metrics", or https:// verified with the CA of
// `transport`, presenting its client certificate if it has one) and returns
// the page. UNAVAILABLE if it cannot be fetched.
absl::StatusOr<std::string> FetchMetricsPage(const std::string& url,
                                             const client::TransportOptions& transport);

// An unlabelled histogram's _sum and _count.
struct HistogramTotals {
  double sum = 0;
  double count = 0;
};

// Histogram `name`'s totals in `page`, if it has them.
std::optional<HistogramTotals> FindHistogram(absl::string_view page, const std::string& name);

// The value of the unlabelled sample `series` in `page`, if it has one.
std::optional<double> FindSample(absl::string_view page, const std::string& series);

}  // namespace convserve::perf
