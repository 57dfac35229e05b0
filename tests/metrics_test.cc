// Metrics: the Prometheus text it renders and the HTTP endpoint serving it.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "server/metrics_http.h"

namespace convserve::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  EXPECT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(), "") << "the exposition ends with a newline";
  lines.pop_back();
  return lines;
}

// The value of the sample line starting with `series` followed by a space.
double Sample(const std::string& text, const std::string& series) {
  for (const std::string& line : Lines(text)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      double value = 0;
      EXPECT_TRUE(absl::SimpleAtod(line.substr(series.size() + 1), &value)) << line;
      return value;
    }
  }
  ADD_FAILURE() << "no sample " << series << " in:\n" << text;
  return -1;
}

// `text` up to the process families (process_*), which sort last.
std::string WithoutProcessFamilies(const std::string& text) {
  const size_t process = text.find("# HELP process_");
  EXPECT_NE(process, std::string::npos) << text;
  return text.substr(0, process);
}

// Structural checks of the text format: each family has one HELP then one
// TYPE line before its samples, families appear once and sorted, each
// sample belongs to the family just declared, histogram buckets are
// cumulative with increasing le, and +Inf equals _count.
void CheckExposition(const std::string& text) {
  std::vector<std::string> families;
  std::string family, type;
  std::string previous_le_series;  // the series (labels minus le) of the last bucket
  double previous_le = 0, previous_bucket = 0;
  std::map<std::string, double> inf_buckets;  // series -> +Inf bucket count
  std::map<std::string, double> counts;       // series -> _count
  const std::vector<std::string> lines = Lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    SCOPED_TRACE(line);
    if (line.rfind("# HELP ", 0) == 0) {
      std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(' ', 3));
      ASSERT_EQ(parts.size(), 4u);
      family = parts[2];
      ASSERT_LT(i + 1, lines.size());
      std::vector<std::string> type_parts = absl::StrSplit(lines[i + 1], ' ');
      ASSERT_EQ(type_parts.size(), 4u) << lines[i + 1];
      EXPECT_EQ(type_parts[0], "#");
      EXPECT_EQ(type_parts[1], "TYPE");
      EXPECT_EQ(type_parts[2], family);
      type = type_parts[3];
      EXPECT_THAT(type, ::testing::AnyOf("counter", "gauge", "histogram"));
      if (!families.empty()) {
        EXPECT_LT(families.back(), family) << "families sorted and unique";
      }
      families.push_back(family);
      ++i;
      continue;
    }
    ASSERT_NE(line[0], '#') << "a comment other than HELP before TYPE";
    ASSERT_FALSE(family.empty()) << "a sample before any HELP";
    const size_t name_end = line.find_first_of("{ ");
    ASSERT_NE(name_end, std::string::npos);
    const std::string name = line.substr(0, name_end);
    const size_t value_start = line.rfind(' ');
    double value = 0;
    ASSERT_TRUE(absl::SimpleAtod(line.substr(value_start + 1), &value));
    const std::string labels = line.substr(name_end, value_start - name_end);
    if (type != "histogram") {
      EXPECT_EQ(name, family);
      continue;
    }
    if (name == family + "_bucket") {
      const size_t le = labels.find("le=\"");
      ASSERT_NE(le, std::string::npos);
      const std::string series = family + labels.substr(0, le);
      const std::string le_value = labels.substr(le + 4, labels.size() - le - 4 - 2);
      double bound = 0;
      ASSERT_TRUE(absl::SimpleAtod(le_value, &bound)) << le_value;
      if (series == previous_le_series) {
        EXPECT_GT(bound, previous_le) << "le increases";
        EXPECT_GE(value, previous_bucket) << "buckets are cumulative";
      }
      previous_le_series = series;
      previous_le = bound;
      previous_bucket = value;
      if (le_value == "+Inf") inf_buckets[series] = value;
    } else if (name == family + "_count") {
      // As the buckets' series: `{op="x",` for labelled ones, `{` for unlabelled ones.
      counts[family + (labels.empty() ? "{" : labels.substr(0, labels.size() - 1) + ",")] = value;
    } else {
      EXPECT_EQ(name, family + "_sum");
    }
  }
  EXPECT_EQ(inf_buckets.size(), counts.size());
  for (const auto& [series, count] : counts) {
    ASSERT_TRUE(inf_buckets.contains(series)) << series;
    EXPECT_EQ(inf_buckets[series], count) << series;
  }
}

TEST(MetricsTest, EmptyRendersEveryFamilyWithZeroCounters) {
  Metrics metrics;
  const std::string text = metrics.Render();
  CheckExposition(text);
  // ExportsTheProcessCpuMemoryAndFileDescriptors checks the process families.
  EXPECT_EQ(WithoutProcessFamilies(text),
            "# HELP convserve_bytes_received_total Bytes of tensor data received in Conv "
            "requests.\n"
            "# TYPE convserve_bytes_received_total counter\n"
            "convserve_bytes_received_total 0\n"
            "# HELP convserve_bytes_sent_total Bytes of tensor data sent in Conv replies.\n"
            "# TYPE convserve_bytes_sent_total counter\n"
            "convserve_bytes_sent_total 0\n"
            "# HELP convserve_compute_seconds Seconds Conv requests spent computing.\n"
            "# TYPE convserve_compute_seconds histogram\n"
            "# HELP convserve_device_compute_seconds_total Seconds spent computing requests, by "
            "device (\"cpu\", or a GPU such as \"cuda:0\").\n"
            "# TYPE convserve_device_compute_seconds_total counter\n"
            "# HELP convserve_device_requests_total Requests computed, by device (\"cpu\", or a "
            "GPU such as \"cuda:0\").\n"
            "# TYPE convserve_device_requests_total counter\n"
            "# HELP convserve_queue_seconds Seconds Conv requests waited in the queue before a "
            "worker took them.\n"
            "# TYPE convserve_queue_seconds histogram\n"
            "# HELP convserve_request_seconds Seconds from receipt of a Conv request to its "
            "reply.\n"
            "# TYPE convserve_request_seconds histogram\n"
            "# HELP convserve_requests_total Finished Conv requests by op, input dtype and gRPC "
            "status code.\n"
            "# TYPE convserve_requests_total counter\n");
}

TEST(MetricsTest, CountsRequestsByOpDtypeAndCode) {
  Metrics metrics;
  metrics.RecordConv("conv2d", "float", "OK", 0, 0, 0, 10, 20);
  metrics.RecordConv("conv2d", "float", "OK", 0, 0, 0, 1, 2);
  metrics.RecordConv("conv2d", "half", "OK", 0, 0, 0, 0, 0);
  metrics.RecordConv("conv2d", "float", "INVALID_ARGUMENT", 0, 0, 0, 5, 0);
  metrics.RecordConv("depthwise_conv2d", "bfloat16", "OK", 0, 0, 0, 0, 0);
  const std::string text = metrics.Render();
  CheckExposition(text);
  EXPECT_THAT(
      text,
      HasSubstr(
          "# TYPE convserve_requests_total counter\n"
          "convserve_requests_total{op=\"conv2d\",dtype=\"float\",code=\"INVALID_ARGUMENT\"} 1\n"
          "convserve_requests_total{op=\"conv2d\",dtype=\"float\",code=\"OK\"} 2\n"
          "convserve_requests_total{op=\"conv2d\",dtype=\"half\",code=\"OK\"} 1\n"
          "convserve_requests_total{op=\"depthwise_conv2d\",dtype=\"bfloat16\",code=\"OK\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nconvserve_bytes_received_total 16\n"));
  EXPECT_THAT(text, HasSubstr("\nconvserve_bytes_sent_total 22\n"));
}

TEST(MetricsTest, CountsRequestsAndComputeSecondsByDevice) {
  Metrics metrics;
  metrics.RecordDeviceCompute("cuda:0", 0.5);
  metrics.RecordDeviceCompute("cuda:0", 0.25);
  metrics.RecordDeviceCompute("cpu", 0.125);
  metrics.RecordDeviceCompute("cuda:1", std::nan(""));  // counts, as zero seconds
  metrics.RecordDeviceCompute("cuda:1", -1);
  const std::string text = metrics.Render();
  CheckExposition(text);
  EXPECT_THAT(text, HasSubstr("# TYPE convserve_device_requests_total counter\n"
                              "convserve_device_requests_total{device=\"cpu\"} 1\n"
                              "convserve_device_requests_total{device=\"cuda:0\"} 2\n"
                              "convserve_device_requests_total{device=\"cuda:1\"} 2\n"));
  EXPECT_EQ(Sample(text, "convserve_device_compute_seconds_total{device=\"cuda:0\"}"), 0.75);
  EXPECT_EQ(Sample(text, "convserve_device_compute_seconds_total{device=\"cpu\"}"), 0.125);
  EXPECT_EQ(Sample(text, "convserve_device_compute_seconds_total{device=\"cuda:1\"}"), 0);
}

TEST(MetricsTest, BatchHistogramsAppearOnceABatchIsRecorded) {
  Metrics metrics;
  EXPECT_THAT(metrics.Render(), Not(HasSubstr("convserve_batch")));
  metrics.RecordBatch(1, 0);
  metrics.RecordBatch(3, 0.002);
  metrics.RecordBatch(16, 0.0005);
  const std::string text = metrics.Render();
  CheckExposition(text);
  EXPECT_THAT(text, HasSubstr("# TYPE convserve_batch_size histogram\n"
                              "convserve_batch_size_bucket{le=\"1\"} 1\n"
                              "convserve_batch_size_bucket{le=\"2\"} 1\n"
                              "convserve_batch_size_bucket{le=\"4\"} 2\n"
                              "convserve_batch_size_bucket{le=\"8\"} 2\n"
                              "convserve_batch_size_bucket{le=\"16\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("convserve_batch_size_bucket{le=\"+Inf\"} 3\n"
                              "convserve_batch_size_sum 20\n"
                              "convserve_batch_size_count 3\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE convserve_batch_wait_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("convserve_batch_wait_seconds_bucket{le=\"0.0005\"} 2\n"));
  EXPECT_EQ(Sample(text, "convserve_batch_wait_seconds_count"), 3);
  EXPECT_DOUBLE_EQ(Sample(text, "convserve_batch_wait_seconds_sum"), 0.0025);
}

TEST(MetricsTest, GaugeFamiliesRenderOneSeriesPerLabelSetAtRenderTime) {
  Metrics metrics;
  std::atomic<int> in_service{1};
  metrics.AddGaugeFamily("convserve_pool_in_service", "Pools in service.", [&in_service] {
    return std::vector<Metrics::GaugeSample>{
        {.labels = {{"backend", "gpu"}, {"device", "cuda:0"}},
         .value = static_cast<double>(in_service.load())},
        {.labels = {{"backend", "cpu \"main\""}, {"device", "cpu"}}, .value = 1}};
  });
  metrics.AddGaugeFamily("convserve_device_memory_bytes", "None yet.",
                         [] { return std::vector<Metrics::GaugeSample>{}; });
  metrics.AddGaugeFamily("convserve_unlabelled", "A sample with no labels.",
                         [] { return std::vector<Metrics::GaugeSample>{{.value = 2.5}}; });
  std::string text = metrics.Render();
  CheckExposition(text);
  EXPECT_THAT(
      text,
      HasSubstr("# HELP convserve_pool_in_service Pools in service.\n"
                "# TYPE convserve_pool_in_service gauge\n"
                "convserve_pool_in_service{backend=\"gpu\",device=\"cuda:0\"} 1\n"
                "convserve_pool_in_service{backend=\"cpu \\\"main\\\"\",device=\"cpu\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE convserve_device_memory_bytes gauge\n# HELP"));
  EXPECT_THAT(text, HasSubstr("\nconvserve_unlabelled 2.5\n"));
  in_service = 0;
  text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("convserve_pool_in_service{backend=\"gpu\",device=\"cuda:0\"} 0\n"));

  // The built-in families' names are taken; a family without a function is ignored.
  metrics.AddGaugeFamily("convserve_device_requests_total", "clash",
                         [] { return std::vector<Metrics::GaugeSample>{{.value = 1}}; });
  metrics.AddGaugeFamily("no_function", "h", nullptr);
  text = metrics.Render();
  CheckExposition(text);
  EXPECT_THAT(text, Not(HasSubstr("clash")));
  EXPECT_THAT(text, Not(HasSubstr("no_function")));
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInclusiveBounds) {
  Metrics metrics;
  // queue: 1 ms exactly (on a bound: counted in le="0.001"), 3 ms, 2 minutes.
  metrics.RecordConv("conv2d", "float", "OK", 0.001, 0.5, 0.75, 0, 0);
  metrics.RecordConv("conv2d", "float", "OK", 0.003, 0.5, 0.75, 0, 0);
  metrics.RecordConv("conv2d", "float", "OK", 120, 0.5, 0.75, 0, 0);
  const std::string text = metrics.Render();
  CheckExposition(text);
  EXPECT_THAT(text, HasSubstr("# TYPE convserve_queue_seconds histogram\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"1e-05\"} 0\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"2.5e-05\"} 0\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"5e-05\"} 0\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"0.0001\"} 0\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"0.00025\"} 0\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"0.0005\"} 0\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"0.001\"} 1\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"0.0025\"} 1\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"0.005\"} 2\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"0.01\"} 2\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"0.025\"} 2\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"0.05\"} 2\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"0.1\"} 2\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"0.25\"} 2\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"0.5\"} 2\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"1\"} 2\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"2.5\"} 2\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"5\"} 2\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"10\"} 2\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"30\"} 2\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"60\"} 2\n"
                              "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"+Inf\"} 3\n"
                              "convserve_queue_seconds_sum{op=\"conv2d\"} 120.004\n"
                              "convserve_queue_seconds_count{op=\"conv2d\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("convserve_compute_seconds_bucket{op=\"conv2d\",le=\"0.25\"} 0\n"
                              "convserve_compute_seconds_bucket{op=\"conv2d\",le=\"0.5\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("convserve_compute_seconds_sum{op=\"conv2d\"} 1.5\n"));
  EXPECT_THAT(text, HasSubstr("convserve_request_seconds_bucket{op=\"conv2d\",le=\"0.5\"} 0\n"
                              "convserve_request_seconds_bucket{op=\"conv2d\",le=\"1\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("convserve_request_seconds_sum{op=\"conv2d\"} 2.25\n"
                              "convserve_request_seconds_count{op=\"conv2d\"} 3\n"));
}

TEST(MetricsTest, HistogramsAreSeparatePerOpAndSorted) {
  Metrics metrics;
  metrics.RecordConv("conv3d", "float", "OK", 1e-6, 1e-6, 1e-6, 0, 0);
  metrics.RecordConv("conv2d", "float", "OK", 100, 100, 100, 0, 0);
  const std::string text = metrics.Render();
  CheckExposition(text);
  EXPECT_LT(text.find("convserve_queue_seconds_count{op=\"conv2d\"} 1"),
            text.find("convserve_queue_seconds_bucket{op=\"conv3d\""));
  EXPECT_EQ(Sample(text, "convserve_queue_seconds_bucket{op=\"conv3d\",le=\"1e-05\"}"), 1);
  EXPECT_EQ(Sample(text, "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"60\"}"), 0);
  EXPECT_EQ(Sample(text, "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"+Inf\"}"), 1);
  EXPECT_EQ(Sample(text, "convserve_queue_seconds_sum{op=\"conv2d\"}"), 100);
  EXPECT_EQ(Sample(text, "convserve_queue_seconds_sum{op=\"conv3d\"}"), 1e-6);
  EXPECT_THAT(text, HasSubstr("convserve_queue_seconds_sum{op=\"conv3d\"} 1e-06\n"));
}

TEST(MetricsTest, NegativeAndNanDurationsCountAsZero) {
  Metrics metrics;
  metrics.RecordConv("conv2d", "float", "OK", -1, std::nan(""), 0, -5, -7);
  const std::string text = metrics.Render();
  CheckExposition(text);
  EXPECT_EQ(Sample(text, "convserve_queue_seconds_bucket{op=\"conv2d\",le=\"1e-05\"}"), 1);
  EXPECT_EQ(Sample(text, "convserve_compute_seconds_bucket{op=\"conv2d\",le=\"1e-05\"}"), 1);
  EXPECT_THAT(text, HasSubstr("convserve_compute_seconds_sum{op=\"conv2d\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nconvserve_bytes_received_total 0\n"));
  EXPECT_THAT(text, HasSubstr("\nconvserve_bytes_sent_total 0\n"));
}

TEST(MetricsTest, EscapesLabelValues) {
  Metrics metrics;
  metrics.RecordConv("a\\b", "say \"hi\"", "line\nbreak", 0, 0, 0, 0, 0);
  const std::string text = metrics.Render();
  CheckExposition(text);
  EXPECT_THAT(text, HasSubstr("convserve_requests_total{op=\"a\\\\b\",dtype=\"say \\\"hi\\\"\","
                              "code=\"line\\nbreak\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("convserve_queue_seconds_count{op=\"a\\\\b\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("line\nbreak")));
}

TEST(MetricsTest, GaugesAreReadAtRenderTime) {
  Metrics metrics;
  std::atomic<int> depth{3};
  metrics.AddGauge("convserve_queue_depth", "Requests waiting for a worker.",
                   [&depth] { return depth.load(); });
  metrics.AddGauge("convserve_a_fraction", "A value with a fraction.\nAnd a \\ in its help.",
                   [] { return 0.1; });
  std::string text = metrics.Render();
  CheckExposition(text);
  EXPECT_THAT(text, HasSubstr("# HELP convserve_queue_depth Requests waiting for a worker.\n"
                              "# TYPE convserve_queue_depth gauge\n"
                              "convserve_queue_depth 3\n"));
  EXPECT_THAT(text, HasSubstr("# HELP convserve_a_fraction A value with a fraction.\\nAnd a \\\\ "
                              "in its help.\n"
                              "# TYPE convserve_a_fraction gauge\n"
                              "convserve_a_fraction 0.1\n"));
  EXPECT_LT(text.find("convserve_a_fraction"), text.find("convserve_bytes_received_total"))
      << "gauges sort with the other families";
  depth = 17;
  text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("\nconvserve_queue_depth 17\n"));
}

TEST(MetricsTest, GaugeValuesFormatForPrometheus) {
  Metrics metrics;
  metrics.AddGauge("g_big", "h", [] { return 123456789012.0; });
  metrics.AddGauge("g_huge", "h", [] { return 1e300; });
  metrics.AddGauge("g_inf", "h", [] { return std::numeric_limits<double>::infinity(); });
  metrics.AddGauge("g_minus_inf", "h", [] { return -std::numeric_limits<double>::infinity(); });
  metrics.AddGauge("g_nan", "h", [] { return std::nan(""); });
  metrics.AddGauge("g_negative", "h", [] { return -2.5; });
  metrics.AddGauge("g_third", "h", [] { return 1.0 / 3; });
  const std::string text = metrics.Render();
  CheckExposition(text);
  EXPECT_THAT(text, HasSubstr("\ng_big 123456789012\n"));
  EXPECT_THAT(text, HasSubstr("\ng_huge 1e+300\n"));
  EXPECT_THAT(text, HasSubstr("\ng_inf +Inf\n"));
  EXPECT_THAT(text, HasSubstr("\ng_minus_inf -Inf\n"));
  EXPECT_THAT(text, HasSubstr("\ng_nan NaN\n"));
  EXPECT_THAT(text, HasSubstr("\ng_negative -2.5\n"));
  EXPECT_THAT(text, HasSubstr("\ng_third 0.3333333333333333\n"));
  EXPECT_EQ(Sample(text, "g_third"), 1.0 / 3) << "round-trips exactly";
}

TEST(MetricsTest, GaugeWithSameNameReplacesAndBadNamesAreIgnored) {
  Metrics metrics;
  metrics.AddGauge("g", "first", [] { return 1.0; });
  metrics.AddGauge("g", "second", [] { return 2.0; });
  metrics.AddGauge("1starts_with_digit", "h", [] { return 1.0; });
  metrics.AddGauge("has space", "h", [] { return 1.0; });
  metrics.AddGauge("convserve_requests_total", "clash", [] { return 1.0; });
  metrics.AddGauge("convserve_queue_seconds_count", "clash", [] { return 1.0; });
  metrics.AddGauge("process_cpu_seconds_total", "clash", [] { return 1.0; });
  metrics.AddGauge("no_function", "h", nullptr);
  const std::string text = metrics.Render();
  CheckExposition(text);
  EXPECT_THAT(text, HasSubstr("# HELP g second\n# TYPE g gauge\ng 2\n"));
  EXPECT_THAT(text, Not(HasSubstr("first")));
  EXPECT_THAT(text, Not(HasSubstr("1starts_with_digit")));
  EXPECT_THAT(text, Not(HasSubstr("has space")));
  EXPECT_THAT(text, Not(HasSubstr("clash")));
  EXPECT_THAT(text, Not(HasSubstr("no_function")));
}

TEST(MetricsTest, ExportsTheProcessCpuMemoryAndFileDescriptors) {
  Metrics metrics;
  const std::string before = metrics.Render();
  CheckExposition(before);
  EXPECT_THAT(before, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_THAT(before, HasSubstr("# TYPE process_resident_memory_bytes gauge\n"));
  EXPECT_THAT(before, HasSubstr("# TYPE process_open_fds gauge\n"));
  EXPECT_GT(Sample(before, "process_resident_memory_bytes"), 1 << 20);

  // Eight more descriptors are counted.
  int pipes[4][2];
  for (auto& ends : pipes) ASSERT_EQ(pipe(ends), 0);
  const std::string with_pipes = metrics.Render();
  for (auto& ends : pipes) {
    close(ends[0]);
    close(ends[1]);
  }
  EXPECT_EQ(Sample(with_pipes, "process_open_fds"), Sample(before, "process_open_fds") + 8);

  // CPU time moves once this thread has spun for a while (getrusage counts
  // in scheduler ticks); bounded at 10 s of wall time.
  const double cpu_before = Sample(before, "process_cpu_seconds_total");
  double cpu_after = cpu_before;
  volatile double sink = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (cpu_after <= cpu_before && std::chrono::steady_clock::now() < give_up) {
    for (int i = 0; i < 1000000; ++i) sink = sink + 1;
    cpu_after = Sample(metrics.Render(), "process_cpu_seconds_total");
  }
  EXPECT_GT(cpu_after, cpu_before);
}

TEST(MetricsTest, ConcurrentRecordsTotalExactly) {
  Metrics metrics;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::atomic<bool> stop_rendering{false};
  std::thread renderer([&] {  // scrapes race with the writers
    while (!stop_rendering) CheckExposition(metrics.Render());
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics, t] {
      const std::string op = t % 2 == 0 ? "conv2d" : "conv3d";
      for (int i = 0; i < kPerThread; ++i) {
        metrics.RecordConv(op, "float", i % 4 == 0 ? "INVALID_ARGUMENT" : "OK", 0.001, 0.002, 0.25,
                           3, 5);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  stop_rendering = true;
  renderer.join();

  const std::string text = metrics.Render();
  CheckExposition(text);
  for (const char* op : {"conv2d", "conv3d"}) {
    const std::string op_label = absl::StrCat("{op=\"", op, "\"");
    EXPECT_EQ(Sample(text, absl::StrCat("convserve_requests_total", op_label,
                                        ",dtype=\"float\",code=\"OK\"}")),
              2 * kPerThread * 3 / 4);
    EXPECT_EQ(Sample(text, absl::StrCat("convserve_requests_total", op_label,
                                        ",dtype=\"float\",code=\"INVALID_ARGUMENT\"}")),
              2 * kPerThread / 4);
    EXPECT_EQ(Sample(text, absl::StrCat("convserve_queue_seconds_count", op_label, "}")),
              2 * kPerThread);
    EXPECT_EQ(Sample(text, absl::StrCat("convserve_request_seconds_sum", op_label, "}")),
              2 * kPerThread * 0.25);
    EXPECT_EQ(
        Sample(text, absl::StrCat("convserve_compute_seconds_bucket", op_label, ",le=\"0.0025\"}")),
        2 * kPerThread);
  }
  EXPECT_EQ(Sample(text, "convserve_bytes_received_total"), kThreads * kPerThread * 3);
  EXPECT_EQ(Sample(text, "convserve_bytes_sent_total"), kThreads * kPerThread * 5);
}

TEST(MetricsHttpServerTest, ServesMetricsAndNotFoundElsewhere) {
  Metrics metrics;
  metrics.RecordConv("conv2d", "float", "OK", 0.001, 0.002, 0.004, 100, 200);
  metrics.AddGauge("convserve_in_flight", "Requests being handled.", [] { return 2.0; });
  auto server = MetricsHttpServer::Start("127.0.0.1:0", &metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  ASSERT_GT(port, 0);

  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  auto response = client.Get("/metrics");
  ASSERT_TRUE(response) << httplib::to_string(response.error());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  // As rendered here, but for the process families, whose values move.
  EXPECT_EQ(WithoutProcessFamilies(response->body), WithoutProcessFamilies(metrics.Render()));
  EXPECT_THAT(response->body, HasSubstr("\nconvserve_in_flight 2\n"));
  CheckExposition(response->body);

  // Each scrape renders afresh.
  metrics.RecordConv("conv2d", "float", "OK", 0.001, 0.002, 0.004, 1, 1);
  response = client.Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_THAT(response->body, HasSubstr("\nconvserve_bytes_received_total 101\n"));

  auto missing = client.Get("/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  missing = client.Get("/metrics/more");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto post = client.Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_NE(post->status, 200);
}

TEST(MetricsHttpServerTest, FixedPortAndBracketedHost) {
  Metrics metrics;
  int port = 0;
  {
    auto probe = MetricsHttpServer::Start("127.0.0.1:0", &metrics);
    ASSERT_TRUE(probe.ok()) << probe.status();
    port = (*probe)->port();
  }  // stopped: the port is free again (SO_REUSEADDR)
  auto server = MetricsHttpServer::Start(absl::StrCat("127.0.0.1:", port), &metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->port(), port);
  httplib::Client client("127.0.0.1", port);
  auto response = client.Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);

  auto v6 = MetricsHttpServer::Start("[::1]:0", &metrics);
  if (v6.ok()) {  // hosts without IPv6 loopback cannot bind it
    httplib::Client v6_client("::1", (*v6)->port());
    auto v6_response = v6_client.Get("/metrics");
    ASSERT_TRUE(v6_response) << httplib::to_string(v6_response.error());
    EXPECT_EQ(v6_response->status, 200);
  } else {
    EXPECT_EQ(v6.status().code(), absl::StatusCode::kUnavailable);
  }
}

TEST(MetricsHttpServerTest, AddressInUseIsUnavailable) {
  Metrics metrics;
  auto first = MetricsHttpServer::Start("127.0.0.1:0", &metrics);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = MetricsHttpServer::Start(absl::StrCat("127.0.0.1:", (*first)->port()), &metrics);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();

  // The first still serves.
  httplib::Client client("127.0.0.1", (*first)->port());
  auto response = client.Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
}

TEST(MetricsHttpServerTest, MalformedAddressIsInvalidArgument) {
  Metrics metrics;
  for (const char* address :
       {"127.0.0.1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000", "127.0.0.1:-1"}) {
    auto server = MetricsHttpServer::Start(address, &metrics);
    ASSERT_FALSE(server.ok()) << address;
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << address;
  }
  auto unresolvable = MetricsHttpServer::Start("no-such-host.invalid:0", &metrics);
  ASSERT_FALSE(unresolvable.ok());
  EXPECT_EQ(unresolvable.status().code(), absl::StatusCode::kUnavailable);
}

TEST(MetricsHttpServerTest, StartsAndStopsQuickly) {
  Metrics metrics;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto server = MetricsHttpServer::Start("127.0.0.1:0", &metrics);
    ASSERT_TRUE(server.ok()) << server.status();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

}  // namespace
}  // namespace convserve::server
