// The status page's data: the recent errors ring buffer, the snapshot the
// metrics take for it, its JSON, and the page and JSON over HTTP. (The page
// drawing in a browser: status_page/status_page_test.sh.)
#include "server/status_page.h"

#include <chrono>
#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "server/metrics.h"
#include "server/metrics_http.h"
#include "server/recent_errors.h"
#include "server/status_json.h"

namespace convserve::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr std::chrono::system_clock::time_point kTime{std::chrono::seconds(1700000000)};

TEST(RecentErrorsTest, KeepsTheLastEntriesOldestFirst) {
  RecentErrors errors(3);
  EXPECT_TRUE(errors.Snapshot().empty());
  for (int i = 0; i < 5; ++i) {
    errors.Add(kTime + std::chrono::seconds(i), "conv2d", "float", "INVALID_ARGUMENT",
               std::to_string(i));
  }
  EXPECT_EQ(errors.total(), 5u);
  const std::vector<RecentErrors::Entry> entries = errors.Snapshot();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].message, "2");
  EXPECT_EQ(entries[2].message, "4");
  EXPECT_EQ(entries[2].time, kTime + std::chrono::seconds(4));
  EXPECT_EQ(entries[2].op, "conv2d");
  EXPECT_EQ(entries[2].dtype, "float");
  EXPECT_EQ(entries[2].code, "INVALID_ARGUMENT");
}

TEST(RecentErrorsTest, KeepsBoundedPrintableText) {
  RecentErrors errors(0);  // still keeps one
  errors.Add(kTime, std::string(100, 'o'), "float", "CODE", std::string(1000, 'm'));
  errors.Add(kTime, "conv2d", "float", "CODE", "line\nbreak \xc3\xa9 \x7f");
  const std::vector<RecentErrors::Entry> entries = errors.Snapshot();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].message, "line?break ?? ?");

  RecentErrors long_ones(1);
  long_ones.Add(kTime, std::string(100, 'o'), "float", "CODE", std::string(1000, 'm'));
  const RecentErrors::Entry entry = long_ones.Snapshot().at(0);
  EXPECT_EQ(entry.op, std::string(RecentErrors::kLabelChars - 3, 'o') + "...");
  EXPECT_EQ(entry.message, std::string(RecentErrors::kMessageChars - 3, 'm') + "...");
}

TEST(StatusSnapshotTest, SumsRequestsAndLatencyOverOpsAndKeepsFailures) {
  Metrics metrics;
  metrics.AddGauge("convserve_queue_depth", "Queued.", [] { return 3.0; });
  metrics.AddGaugeFamily("convserve_labelled", "Not in the snapshot.", [] {
    return std::vector<Metrics::GaugeSample>{{{{"device", "cpu"}}, 1.0}};
  });
  metrics.RecordConv("conv2d", "float", "OK", 0, 0, 0.0015, 0, 0);
  metrics.RecordConv("conv3d", "float", "OK", 0, 0, 0.0015, 0, 0);
  metrics.RecordConv("conv2d", "float", "INVALID_ARGUMENT", 0, 0, 100, 0, 0);
  metrics.RecordFailure("conv2d", "float", "INVALID_ARGUMENT", "strides");

  const Metrics::StatusSnapshot status = metrics.ReadStatus();
  EXPECT_EQ(status.requests, 3u);
  EXPECT_EQ(status.failed, 1u);
  ASSERT_EQ(status.latency_counts.size(), status.latency_bounds.size() + 1);
  // 1.5 ms falls in the (1 ms, 2.5 ms] bucket; 100 s above the last bound.
  for (size_t i = 0; i < status.latency_counts.size(); ++i) {
    const bool millis = i < status.latency_bounds.size() && status.latency_bounds[i] == 0.0025;
    const bool inf = i == status.latency_bounds.size();
    EXPECT_EQ(status.latency_counts[i], millis ? 2u : inf ? 1u : 0u) << i;
  }
  EXPECT_DOUBLE_EQ(status.latency_seconds_sum, 100.003);
  EXPECT_THAT(status.gauges,
              ElementsAre(std::pair<std::string, double>("convserve_queue_depth", 3)));
  EXPECT_EQ(status.errors_recorded, 1u);
  ASSERT_EQ(status.recent_errors.size(), 1u);
  EXPECT_EQ(status.recent_errors[0].message, "strides");
  EXPECT_GE(status.uptime_seconds, 0);
  const double later = metrics.ReadStatus().uptime_seconds;
  EXPECT_GE(later, status.uptime_seconds);
}

TEST(StatusJsonTest, WritesEveryFieldAndEscapes) {
  Metrics::StatusSnapshot status;
  status.uptime_seconds = 12.5;
  status.time = kTime + std::chrono::milliseconds(250);
  status.requests = 100;
  status.failed = 3;
  status.latency_bounds = {1e-05, 0.5};
  status.latency_counts = {1, 2, 3};
  status.latency_seconds_sum = 0.75;
  status.gauges = {{"convserve_queue_depth", 2}, {"convserve_odd", std::nan("")}};
  status.errors_recorded = 7;
  status.recent_errors.push_back({kTime, "conv2d", "float", "INVALID_ARGUMENT", "a \"b\" \\ c"});
  EXPECT_EQ(RenderStatusJson(status),
            "{\"uptime_s\":12.5,\"time\":1700000000.25,\"requests\":100,\"failed\":3,"
            "\"latency\":{\"bounds\":[1e-05,0.5],\"counts\":[1,2,3],\"sum\":0.75},"
            "\"gauges\":{\"convserve_queue_depth\":2,\"convserve_odd\":null},"
            "\"errors_recorded\":7,\"recent_errors\":[{\"time\":1700000000,\"op\":\"conv2d\","
            "\"dtype\":\"float\",\"code\":\"INVALID_ARGUMENT\",\"message\":\"a \\\"b\\\" \\\\ "
            "c\"}]}");

  status.recent_errors[0].message = "tab\there \xc3\xa9";
  EXPECT_THAT(RenderStatusJson(status), HasSubstr("\"message\":\"tab\\u0009here \\u00c3\\u00a9\""));
}

TEST(StatusPageTest, TheEmbeddedPageIsTheFileAndPollsStatusJson) {
  const std::string_view page = StatusPageHtml();
  EXPECT_THAT(std::string(page), StartsWith("<!DOCTYPE html>"));
  EXPECT_THAT(std::string(page), HasSubstr("fetch(\"status.json\""));
  EXPECT_THAT(std::string(page), HasSubstr("<canvas id=\"plot-latency\">"));
  EXPECT_THAT(std::string(page), Not(HasSubstr("http://")));
  EXPECT_THAT(std::string(page), Not(HasSubstr("https://")));
}

TEST(StatusPageTest, TheMetricsPortServesThePageAndItsJsonUncached) {
  Metrics metrics;
  metrics.RecordConv("conv2d", "float", "NOT_FOUND", 0, 0, 0.001, 0, 0);
  metrics.RecordFailure("conv2d", "float", "NOT_FOUND", "no filter is registered under id \"x\"");
  auto server = MetricsHttpServer::Start("127.0.0.1:0", &metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client client("127.0.0.1", (*server)->port());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);

  auto page = client.Get("/");
  ASSERT_TRUE(page) << httplib::to_string(page.error());
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(page->get_header_value("Cache-Control"), "no-store");
  EXPECT_THAT(page->get_header_value("Content-Security-Policy"), HasSubstr("default-src 'none'"));
  EXPECT_EQ(page->body, StatusPageHtml());

  auto json = client.Get("/status.json");
  ASSERT_TRUE(json) << httplib::to_string(json.error());
  EXPECT_EQ(json->status, 200);
  EXPECT_EQ(json->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(json->get_header_value("Cache-Control"), "no-store");
  EXPECT_THAT(json->body, HasSubstr("\"requests\":1,\"failed\":1,"));
  EXPECT_THAT(json->body, HasSubstr("\"code\":\"NOT_FOUND\",\"message\":\"no filter is registered "
                                    "under id \\\"x\\\"\""));

  // Each read is fresh.
  metrics.RecordConv("conv2d", "float", "OK", 0, 0, 0.001, 0, 0);
  json = client.Get("/status.json");
  ASSERT_TRUE(json);
  EXPECT_THAT(json->body, HasSubstr("\"requests\":2,\"failed\":1,"));
}

}  // namespace
}  // namespace convserve::server
