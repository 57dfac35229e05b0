#include "client/perf/server_metrics.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "httplib.h"

namespace convserve::perf {

absl::StatusOr<std::string> FetchMetricsPage(const std::string& url,
                                             const client::TransportOptions& transport) {
  // httplib's universal client takes "scheme://host:port"; the rest is the path.
  const size_t scheme_end = url.find("://");
  const size_t path_start = url.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  const std::string origin = url.substr(0, path_start);
  const std::string path = path_start == std::string::npos ? "/metrics" : url.substr(path_start);
  httplib::Client client(origin, transport.tls_cert_file, transport.tls_key_file);
  if (!transport.tls_ca_file.empty()) client.set_ca_cert_path(transport.tls_ca_file.c_str());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  const httplib::Result response = client.Get(path);
  if (!response) {
    return absl::UnavailableError(
        absl::StrCat("cannot fetch ", url, ": ", httplib::to_string(response.error())));
  }
  if (response->status != 200) {
    return absl::UnavailableError(absl::StrCat(url, " answered HTTP ", response->status));
  }
  return response->body;
}

std::optional<HistogramTotals> FindHistogram(absl::string_view page, const std::string& name) {
  const std::optional<double> sum = FindSample(page, name + "_sum");
  const std::optional<double> count = FindSample(page, name + "_count");
  if (!sum || !count) return std::nullopt;
  return HistogramTotals{.sum = *sum, .count = *count};
}

std::optional<double> FindSample(absl::string_view page, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!absl::ConsumePrefix(&line, series) || !absl::ConsumePrefix(&line, " ")) continue;
    double value = 0;
    if (absl::SimpleAtod(line, &value)) return value;
  }
  return std::nullopt;
}

}  // namespace convserve::perf
