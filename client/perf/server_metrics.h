// convserve-perf's view of the server's Prometheus page (--metrics-url): the
// totals of an unlabelled histogram, read before and after a step so that
// the step's own observations are their difference (e.g. the mean batch size
// from convserve_batch_size).
//
// Thread safety: ScrapeHistogram holds no state; call it from any thread.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "client/credentials.h"

namespace convserve::perf {

// An unlabelled histogram's _sum and _count.
struct HistogramTotals {
  double sum = 0;
  double count = 0;
};

// GETs `url` ("http://host:port/metrics", or https:// verified with the CA of
// `transport`, presenting its client certificate if it has one) and reads
// histogram `name`'s totals. UNAVAILABLE if the page cannot be fetched,
// NOT_FOUND if it has no such histogram.
absl::StatusOr<HistogramTotals> ScrapeHistogram(const std::string& url,
                                                const client::TransportOptions& transport,
                                                const std::string& name);

}  // namespace convserve::perf
