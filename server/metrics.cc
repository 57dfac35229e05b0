#include "server/metrics.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "server/process_stats.h"
#include "spdlog/spdlog.h"

namespace convserve::server {
namespace {

constexpr char kRequests[] = "convserve_requests_total";
constexpr char kQueueSeconds[] = "convserve_queue_seconds";
constexpr char kComputeSeconds[] = "convserve_compute_seconds";
constexpr char kRequestSeconds[] = "convserve_request_seconds";
constexpr char kBytesReceived[] = "convserve_bytes_received_total";
constexpr char kBytesSent[] = "convserve_bytes_sent_total";
constexpr char kPrincipalRequests[] = "convserve_principal_requests_total";
constexpr char kDeviceRequests[] = "convserve_device_requests_total";
constexpr char kDeviceComputeSeconds[] = "convserve_device_compute_seconds_total";
constexpr char kBatchSize[] = "convserve_batch_size";
constexpr char kBatchWaitSeconds[] = "convserve_batch_wait_seconds";
constexpr char kProcessCpuSeconds[] = "process_cpu_seconds_total";
constexpr char kProcessResidentBytes[] = "process_resident_memory_bytes";
constexpr char kProcessOpenFds[] = "process_open_fds";

// Upper bounds (inclusive, requests) of the batch size histogram's buckets.
constexpr std::array<double, 10> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

// Upper bounds (inclusive, seconds) of the latency histograms' buckets: 10 us
// to 60 s in 1-2.5-5 steps; a final +Inf bucket holds everything above.
constexpr std::array<double, 21> kBounds = {1e-5,   2.5e-5, 5e-5, 1e-4,   2.5e-4, 5e-4, 1e-3,
                                            2.5e-3, 5e-3,   1e-2, 2.5e-2, 5e-2,   0.1,  0.25,
                                            0.5,    1,      2.5,  5,      10,     30,   60};

std::string_view Std(absl::string_view s) { return {s.data(), s.size()}; }

// A sample value as Prometheus parses it: integral values without exponent;
// others with the fewest digits that read back exactly, in the notation of
// Go's strconv 'g' (as Prometheus' own clients write it): an exponent only
// below 1e-4 or from 1e21 on, so "0.0001" and "1e-05"; NaN and +-Inf by name.
std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<int64_t>(v));  // also -0 -> "0"
  }
  char buffer[400];  // fixed notation of any double in [1e-4, 1e21) fits
  char* end = std::to_chars(buffer, buffer + sizeof(buffer), v, std::chars_format::scientific).ptr;
  const char* e = std::find(buffer, end, 'e') + 1;
  int exponent = 0;
  std::from_chars(e + (*e == '+' ? 1 : 0), end, exponent);
  if (exponent >= -4 && exponent < 21) {
    end = std::to_chars(buffer, buffer + sizeof(buffer), v, std::chars_format::fixed).ptr;
  }
  return std::string(buffer, end);
}

// The `le` label values, formatted once.
const std::array<std::string, kBounds.size()>& BoundLabels() {
  static const auto* labels = [] {
    auto* out = new std::array<std::string, kBounds.size()>;
    for (size_t i = 0; i < kBounds.size(); ++i) (*out)[i] = FormatValue(kBounds[i]);
    return out;
  }();
  return *labels;
}

// Label values escape backslash, double quote and newline.
void AppendLabelValue(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

// HELP text escapes backslash and newline.
void AppendHeader(std::string& out, std::string_view name, std::string_view help,
                  std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

bool ValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Names a gauge may not take: the built-in families and their series names.
bool ReservedName(std::string_view name) {
  for (std::string_view family :
       {kRequests, kBytesReceived, kBytesSent, kPrincipalRequests, kDeviceRequests,
        kDeviceComputeSeconds, kProcessCpuSeconds, kProcessResidentBytes, kProcessOpenFds}) {
    if (name == family) return true;
  }
  for (std::string_view family :
       {kQueueSeconds, kComputeSeconds, kRequestSeconds, kBatchSize, kBatchWaitSeconds}) {
    for (std::string_view suffix : {"", "_bucket", "_sum", "_count"}) {
      if (name == absl::StrCat(std::string(family), std::string(suffix))) return true;
    }
  }
  return false;
}

struct Histogram {
  // Per-bucket (not cumulative) counts; the last entry is the +Inf bucket.
  std::array<uint64_t, kBounds.size() + 1> counts{};
  double sum = 0;
  uint64_t count = 0;

  void Observe(double seconds) {
    if (!(seconds >= 0)) seconds = 0;  // negative or NaN: a caller's clock glitch
    const size_t bucket = static_cast<size_t>(
        std::lower_bound(kBounds.begin(), kBounds.end(), seconds) - kBounds.begin());
    ++counts[bucket];
    sum += seconds;
    ++count;
  }
};

// An unlabelled histogram over any bounds: per-bucket counts, the last +Inf.
struct PlainHistogram {
  std::vector<double> bounds;
  std::vector<uint64_t> counts = std::vector<uint64_t>(bounds.size() + 1);
  double sum = 0;
  uint64_t count = 0;

  void Observe(double value) {
    if (!(value >= 0)) value = 0;
    const size_t bucket =
        static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
    ++counts[bucket];
    sum += value;
    ++count;
  }
  void Append(std::string& out, const char* name, const char* help) const {
    AppendHeader(out, name, help, "histogram");
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds.size(); ++i) {
      cumulative += counts[i];
      absl::StrAppend(&out, name, "_bucket{le=\"",
                      i < bounds.size() ? FormatValue(bounds[i]) : std::string("+Inf"), "\"} ",
                      cumulative, "\n");
    }
    absl::StrAppend(&out, name, "_sum ", FormatValue(sum), "\n");
    absl::StrAppend(&out, name, "_count ", count, "\n");
  }
};

// dtype -> code -> count.
using RequestCounts =
    std::map<std::string, std::map<std::string, uint64_t, std::less<>>, std::less<>>;

struct OpSeries {
  Histogram queue, compute, total;
  RequestCounts requests;
};

template <class Map>
typename Map::mapped_type& FindOrAdd(Map& map, std::string_view key) {
  auto it = map.find(key);
  if (it == map.end()) it = map.emplace(std::string(key), typename Map::mapped_type{}).first;
  return it->second;
}

void AppendHistogram(std::string& out, const char* name, const char* help,
                     const std::map<std::string, OpSeries, std::less<>>& ops,
                     Histogram OpSeries::*member) {
  AppendHeader(out, name, help, "histogram");
  const auto& labels = BoundLabels();
  for (const auto& [op, series] : ops) {
    const Histogram& h = series.*member;
    std::string op_label = "op=\"";
    AppendLabelValue(op_label, op);
    op_label += '"';
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= kBounds.size(); ++i) {
      cumulative += h.counts[i];
      absl::StrAppend(&out, name, "_bucket{", op_label, ",le=\"",
                      i < kBounds.size() ? labels[i] : std::string("+Inf"), "\"} ", cumulative,
                      "\n");
    }
    absl::StrAppend(&out, name, "_sum{", op_label, "} ", FormatValue(h.sum), "\n");
    absl::StrAppend(&out, name, "_count{", op_label, "} ", h.count, "\n");
  }
}

}  // namespace

struct Metrics::State {
  std::mutex mutex;
  std::map<std::string, OpSeries, std::less<>> ops ABSL_GUARDED_BY(mutex);
  uint64_t bytes_received ABSL_GUARDED_BY(mutex) = 0;
  uint64_t bytes_sent ABSL_GUARDED_BY(mutex) = 0;
  // principal -> gRPC status code -> count.
  RequestCounts principals ABSL_GUARDED_BY(mutex);
  // device -> requests computed there and seconds inside Run.
  std::map<std::string, std::pair<uint64_t, double>, std::less<>> devices ABSL_GUARDED_BY(mutex);
  // Kernel calls while batching is on: requests each, and seconds waited.
  PlainHistogram batch_size ABSL_GUARDED_BY(mutex){
      std::vector<double>(kBatchBounds.begin(), kBatchBounds.end())};
  PlainHistogram batch_wait ABSL_GUARDED_BY(mutex){
      std::vector<double>(kBounds.begin(), kBounds.end())};

  // A gauge has `value` (one unlabelled series) or `samples` (a labelled family).
  struct Gauge {
    std::string help;
    std::function<double()> value;
    std::function<std::vector<GaugeSample>()> samples;
  };
  std::mutex gauges_mutex;
  std::map<std::string, Gauge, std::less<>> gauges ABSL_GUARDED_BY(gauges_mutex);

  const std::chrono::steady_clock::time_point created = std::chrono::steady_clock::now();
  RecentErrors recent_errors;  // thread-safe itself
};

Metrics::Metrics() : state_(std::make_unique<State>()) {}
Metrics::~Metrics() = default;

void Metrics::RecordPrincipal(absl::string_view principal, absl::string_view code) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  ++FindOrAdd(FindOrAdd(state_->principals, Std(principal)), Std(code));
}

void Metrics::RecordConv(absl::string_view op, absl::string_view dtype, absl::string_view code,
                         double queue_seconds, double compute_seconds, double total_seconds,
                         int64_t bytes_in, int64_t bytes_out) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  OpSeries& series = FindOrAdd(state_->ops, Std(op));
  ++FindOrAdd(FindOrAdd(series.requests, Std(dtype)), Std(code));
  series.queue.Observe(queue_seconds);
  series.compute.Observe(compute_seconds);
  series.total.Observe(total_seconds);
  state_->bytes_received += static_cast<uint64_t>(std::max<int64_t>(bytes_in, 0));
  state_->bytes_sent += static_cast<uint64_t>(std::max<int64_t>(bytes_out, 0));
}

void Metrics::RecordFailure(absl::string_view op, absl::string_view dtype, absl::string_view code,
                            absl::string_view message) {
  state_->recent_errors.Add(std::chrono::system_clock::now(), op, dtype, code, message);
}

void Metrics::RecordDeviceCompute(absl::string_view device, double compute_seconds) {
  if (!(compute_seconds >= 0)) compute_seconds = 0;  // negative or NaN: a clock glitch
  std::lock_guard<std::mutex> lock(state_->mutex);
  auto& [count, seconds] = FindOrAdd(state_->devices, Std(device));
  ++count;
  seconds += compute_seconds;
}

void Metrics::RecordBatch(int requests, double wait_seconds) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->batch_size.Observe(requests);
  state_->batch_wait.Observe(wait_seconds);
}

void Metrics::AddGauge(const std::string& name, const std::string& help,
                       std::function<double()> value) {
  if (!ValidMetricName(name) || ReservedName(name) || !value) {
    spdlog::error("metrics: gauge name '{}' is invalid or taken; not exported", name);
    return;
  }
  std::lock_guard<std::mutex> lock(state_->gauges_mutex);
  state_->gauges[name] = State::Gauge{help, std::move(value), nullptr};  // the same name replaces
}

void Metrics::AddGaugeFamily(const std::string& name, const std::string& help,
                             std::function<std::vector<GaugeSample>()> samples) {
  if (!ValidMetricName(name) || ReservedName(name) || !samples) {
    spdlog::error("metrics: gauge name '{}' is invalid or taken; not exported", name);
    return;
  }
  std::lock_guard<std::mutex> lock(state_->gauges_mutex);
  state_->gauges[name] = State::Gauge{help, nullptr, std::move(samples)};
}

std::string Metrics::Render() const {
  // Snapshot under the lock, format outside it.
  std::map<std::string, OpSeries, std::less<>> ops;
  RequestCounts principals;
  std::map<std::string, std::pair<uint64_t, double>, std::less<>> devices;
  uint64_t bytes_received, bytes_sent;
  std::optional<PlainHistogram> batch_size, batch_wait;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->batch_size.count > 0) {
      batch_size = state_->batch_size;
      batch_wait = state_->batch_wait;
    }
    ops = state_->ops;
    principals = state_->principals;
    devices = state_->devices;
    bytes_received = state_->bytes_received;
    bytes_sent = state_->bytes_sent;
  }
  std::vector<std::pair<std::string, State::Gauge>> gauges;
  {
    std::lock_guard<std::mutex> lock(state_->gauges_mutex);
    gauges.assign(state_->gauges.begin(), state_->gauges.end());
  }

  // Each family's text keyed by its name: the output is sorted by family.
  std::map<std::string, std::string> families;

  std::string& requests = families[kRequests];
  AppendHeader(requests, kRequests,
               "Finished Conv requests by op, input dtype and gRPC status code.", "counter");
  for (const auto& [op, series] : ops) {
    for (const auto& [dtype, codes] : series.requests) {
      for (const auto& [code, count] : codes) {
        requests += kRequests;
        requests += "{op=\"";
        AppendLabelValue(requests, op);
        requests += "\",dtype=\"";
        AppendLabelValue(requests, dtype);
        requests += "\",code=\"";
        AppendLabelValue(requests, code);
        absl::StrAppend(&requests, "\"} ", count, "\n");
      }
    }
  }

  AppendHistogram(families[kQueueSeconds], kQueueSeconds,
                  "Seconds Conv requests waited in the queue before a worker took them.", ops,
                  &OpSeries::queue);
  AppendHistogram(families[kComputeSeconds], kComputeSeconds,
                  "Seconds Conv requests spent computing.", ops, &OpSeries::compute);
  AppendHistogram(families[kRequestSeconds], kRequestSeconds,
                  "Seconds from receipt of a Conv request to its reply.", ops, &OpSeries::total);

  std::string& received = families[kBytesReceived];
  AppendHeader(received, kBytesReceived, "Bytes of tensor data received in Conv requests.",
               "counter");
  absl::StrAppend(&received, kBytesReceived, " ", bytes_received, "\n");
  std::string& sent = families[kBytesSent];
  AppendHeader(sent, kBytesSent, "Bytes of tensor data sent in Conv replies.", "counter");
  absl::StrAppend(&sent, kBytesSent, " ", bytes_sent, "\n");

  const ProcessStats process = ReadProcessStats();
  std::string& cpu = families[kProcessCpuSeconds];
  AppendHeader(cpu, kProcessCpuSeconds, "User and system CPU seconds of the server's threads.",
               "counter");
  absl::StrAppend(&cpu, kProcessCpuSeconds, " ", FormatValue(process.cpu_seconds), "\n");
  std::string& resident = families[kProcessResidentBytes];
  AppendHeader(resident, kProcessResidentBytes, "Resident memory of the server, in bytes.",
               "gauge");
  absl::StrAppend(&resident, kProcessResidentBytes, " ", process.resident_bytes, "\n");
  std::string& fds = families[kProcessOpenFds];
  AppendHeader(fds, kProcessOpenFds, "File descriptors the server has open.", "gauge");
  absl::StrAppend(&fds, kProcessOpenFds, " ", process.open_fds, "\n");

  if (!principals.empty()) {
    std::string& text = families[kPrincipalRequests];
    AppendHeader(text, kPrincipalRequests,
                 "Calls by authenticated principal (a name from the tokens file) and gRPC status "
                 "code.",
                 "counter");
    for (const auto& [principal, codes] : principals) {
      for (const auto& [code, count] : codes) {
        text += kPrincipalRequests;
        text += "{principal=\"";
        AppendLabelValue(text, principal);
        text += "\",code=\"";
        AppendLabelValue(text, code);
        absl::StrAppend(&text, "\"} ", count, "\n");
      }
    }
  }

  std::string& device_requests = families[kDeviceRequests];
  AppendHeader(device_requests, kDeviceRequests,
               "Requests computed, by device (\"cpu\", or a GPU such as \"cuda:0\").", "counter");
  std::string& device_seconds = families[kDeviceComputeSeconds];
  AppendHeader(device_seconds, kDeviceComputeSeconds,
               "Seconds spent computing requests, by device (\"cpu\", or a GPU such as "
               "\"cuda:0\").",
               "counter");
  for (const auto& [device, totals] : devices) {
    std::string label = "{device=\"";
    AppendLabelValue(label, device);
    label += "\"} ";
    absl::StrAppend(&device_requests, kDeviceRequests, label, totals.first, "\n");
    absl::StrAppend(&device_seconds, kDeviceComputeSeconds, label, FormatValue(totals.second),
                    "\n");
  }

  if (batch_size) {
    batch_size->Append(families[kBatchSize], kBatchSize,
                       "Requests computed together in one kernel call (dynamic batching).");
    batch_wait->Append(families[kBatchWaitSeconds], kBatchWaitSeconds,
                       "Seconds a worker waited for requests to batch before a kernel call.");
  }

  for (const auto& [name, gauge] : gauges) {
    std::string& text = families[name];
    AppendHeader(text, name, gauge.help, "gauge");
    if (gauge.value) {
      absl::StrAppend(&text, name, " ", FormatValue(gauge.value()), "\n");
      continue;
    }
    for (const GaugeSample& sample : gauge.samples()) {
      text += name;
      if (!sample.labels.empty()) {
        char separator = '{';
        for (const auto& [label, value] : sample.labels) {
          text += separator;
          text += label;
          text += "=\"";
          AppendLabelValue(text, value);
          text += '"';
          separator = ',';
        }
        text += '}';
      }
      absl::StrAppend(&text, " ", FormatValue(sample.value), "\n");
    }
  }

  std::string out;
  for (const auto& [name, text] : families) out += text;
  return out;
}

Metrics::StatusSnapshot Metrics::ReadStatus() const {
  StatusSnapshot status;
  status.latency_bounds.assign(kBounds.begin(), kBounds.end());
  status.latency_counts.assign(kBounds.size() + 1, 0);
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    status.time = std::chrono::system_clock::now();
    status.uptime_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - state_->created).count();
    for (const auto& [op, series] : state_->ops) {
      for (const auto& [dtype, codes] : series.requests) {
        for (const auto& [code, count] : codes) {
          status.requests += count;
          if (code != "OK") status.failed += count;
        }
      }
      for (size_t i = 0; i < series.total.counts.size(); ++i) {
        status.latency_counts[i] += series.total.counts[i];
      }
      status.latency_seconds_sum += series.total.sum;
    }
  }
  status.errors_recorded = state_->recent_errors.total();
  status.recent_errors = state_->recent_errors.Snapshot();
  // Gauges are read outside the lock, as Render reads them.
  std::vector<std::pair<std::string, std::function<double()>>> gauges;
  {
    std::lock_guard<std::mutex> lock(state_->gauges_mutex);
    for (const auto& [name, gauge] : state_->gauges) {
      if (gauge.value) gauges.emplace_back(name, gauge.value);
    }
  }
  for (const auto& [name, value] : gauges) status.gauges.emplace_back(name, value());
  return status;
}

}  // namespace convserve::server
