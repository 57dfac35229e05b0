// The server's flags, environment fallbacks, validation, the start-up config
// line and the log formats.
#include "server/flags.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/cpu_quota.h"
#include "server/logging.h"
#include "spdlog/logger.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"

namespace convserve::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

constexpr int64_t kMiB = int64_t{1} << 20;

// One flag: a value other than its default, and how it shows in the config.
struct FlagCase {
  std::string flag;
  std::string env;
  std::string value;
  std::function<void(const ServerConfig&)> check;
};

std::vector<FlagCase> FlagCases() {
  return {
      {"--address", "CONVSERVE_ADDRESS", "127.0.0.1:6000",
       [](const ServerConfig& c) { EXPECT_EQ(c.address, "127.0.0.1:6000"); }},
      {"--metrics-address", "CONVSERVE_METRICS_ADDRESS", "0.0.0.0:9090",
       [](const ServerConfig& c) { EXPECT_EQ(c.metrics_address, "0.0.0.0:9090"); }},
      {"--max-message-mb", "CONVSERVE_MAX_MESSAGE_MB", "2047",
       [](const ServerConfig& c) { EXPECT_EQ(c.max_message_bytes, 2047 * kMiB); }},
      {"--max-output-elements", "CONVSERVE_MAX_OUTPUT_ELEMENTS", "12345",
       [](const ServerConfig& c) { EXPECT_EQ(c.limits.max_output_elements, 12345); }},
      {"--backend", "CONVSERVE_BACKEND", "reference",
       [](const ServerConfig& c) { EXPECT_EQ(c.backend, "reference"); }},
      {"--workers", "CONVSERVE_WORKERS", "1",
       [](const ServerConfig& c) { EXPECT_EQ(c.workers, 1); }},
      {"--fallback-workers", "CONVSERVE_FALLBACK_WORKERS", "0",
       [](const ServerConfig& c) { EXPECT_EQ(c.fallback_workers, 0); }},
      {"--threads-per-worker", "CONVSERVE_THREADS_PER_WORKER", "1",
       [](const ServerConfig& c) { EXPECT_EQ(c.threads_per_worker, 1); }},
      {"--cuda-devices", "CONVSERVE_CUDA_DEVICES", "1,0",
       [](const ServerConfig& c) { EXPECT_EQ(c.cuda_devices, "1,0"); }},
      {"--gpu-weight-cache-mb", "CONVSERVE_GPU_WEIGHT_CACHE_MB", "64",
       [](const ServerConfig& c) { EXPECT_EQ(c.gpu_weight_cache_bytes, 64 * kMiB); }},
      {"--max-queue", "CONVSERVE_MAX_QUEUE", "7",
       [](const ServerConfig& c) { EXPECT_EQ(c.max_queue, 7); }},
      {"--batch-max-size", "CONVSERVE_BATCH_MAX_SIZE", "16",
       [](const ServerConfig& c) { EXPECT_EQ(c.batch_max_size, 16); }},
      {"--batch-max-delay-us", "CONVSERVE_BATCH_MAX_DELAY_US", "500",
       [](const ServerConfig& c) { EXPECT_EQ(c.batch_max_delay.count(), 500); }},
      {"--memory-budget-mb", "CONVSERVE_MEMORY_BUDGET_MB", "300",
       [](const ServerConfig& c) { EXPECT_EQ(c.memory_budget_bytes, 300 * kMiB); }},
      {"--max-request-mb", "CONVSERVE_MAX_REQUEST_MB", "30",
       [](const ServerConfig& c) { EXPECT_EQ(c.max_request_bytes, 30 * kMiB); }},
      {"--max-streams", "CONVSERVE_MAX_STREAMS", "9",
       [](const ServerConfig& c) { EXPECT_EQ(c.max_streams, 9); }},
      {"--stream-window", "CONVSERVE_STREAM_WINDOW", "5",
       [](const ServerConfig& c) { EXPECT_EQ(c.stream_window, 5); }},
      {"--weight-cache-mb", "CONVSERVE_WEIGHT_CACHE_MB", "0",
       [](const ServerConfig& c) { EXPECT_EQ(c.weight_cache_bytes, 0); }},
      {"--filter-store-mb", "CONVSERVE_FILTER_STORE_MB", "17",
       [](const ServerConfig& c) { EXPECT_EQ(c.filter_store_bytes, 17 * kMiB); }},
      {"--grace-period-s", "CONVSERVE_GRACE_PERIOD_S", "2.5",
       [](const ServerConfig& c) { EXPECT_EQ(c.grace_period.count(), 2500); }},
      {"--max-connection-age-s", "CONVSERVE_MAX_CONNECTION_AGE_S", "90",
       [](const ServerConfig& c) { EXPECT_EQ(c.max_connection_age.count(), 90000); }},
      {"--quota-requests", "CONVSERVE_QUOTA_REQUESTS", "5",
       [](const ServerConfig& c) { EXPECT_EQ(c.quota_requests, 5); }},
      {"--quota-mb", "CONVSERVE_QUOTA_MB", "64",
       [](const ServerConfig& c) { EXPECT_EQ(c.quota_bytes, 64 * kMiB); }},
      {"--quota-filter-share", "CONVSERVE_QUOTA_FILTER_SHARE", "0.25",
       [](const ServerConfig& c) { EXPECT_EQ(c.quota_filter_share, 0.25); }},
      {"--reload-s", "CONVSERVE_RELOAD_S", "3",
       [](const ServerConfig& c) { EXPECT_EQ(c.reload_interval.count(), 3000); }},
      {"--log-level", "CONVSERVE_LOG_LEVEL", "debug",
       [](const ServerConfig& c) { EXPECT_EQ(c.log_level, "debug"); }},
      {"--log-format", "CONVSERVE_LOG_FORMAT", "json",
       [](const ServerConfig& c) { EXPECT_EQ(c.log_format, "json"); }},
  };
}

struct ParseResult {
  std::optional<int> exit_code;
  ServerConfig config;
  std::string out;
  std::string err;
};

ParseResult Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "convserve-server");
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  argv.push_back(nullptr);
  ParseResult result;
  std::ostringstream out, err;
  result.exit_code =
      ParseServerFlags(static_cast<int>(args.size()), argv.data(), &result.config, out, err);
  result.out = out.str();
  result.err = err.str();
  return result;
}

// Every CONVSERVE_ variable unset around each test, whatever ran it.
class FlagsTest : public ::testing::Test {
 protected:
  void SetUp() override { ClearEnv(); }
  void TearDown() override { ClearEnv(); }
  static void ClearEnv() {
    for (const FlagCase& c : FlagCases()) unsetenv(c.env.c_str());
    for (const char* name :
         {"CONVSERVE_TLS_CERT", "CONVSERVE_TLS_KEY", "CONVSERVE_TLS_CLIENT_CA",
          "CONVSERVE_CUDA_BENCHMARK_ALGORITHMS", "CONVSERVE_BATCH_PREFERRED_SIZES"}) {
      unsetenv(name);
    }
  }
};

TEST_F(FlagsTest, Defaults) {
  const ParseResult r = Parse({});
  ASSERT_EQ(r.exit_code, std::nullopt) << r.err;
  const ServerConfig defaults;
  EXPECT_EQ(r.config.address, "0.0.0.0:50051");
  EXPECT_EQ(r.config.metrics_address, "");
  EXPECT_EQ(r.config.max_message_bytes, 256 * kMiB);
  EXPECT_EQ(r.config.limits.max_output_elements, defaults.limits.max_output_elements);
  EXPECT_EQ(r.config.backend, "onednn");
  EXPECT_EQ(r.config.workers, 1);
  EXPECT_EQ(r.config.threads_per_worker, CoresAvailable());
  EXPECT_EQ(r.config.max_queue, defaults.max_queue);
  EXPECT_EQ(r.config.memory_budget_bytes, defaults.memory_budget_bytes);
  EXPECT_EQ(r.config.max_request_bytes, defaults.max_request_bytes);
  EXPECT_EQ(r.config.max_streams, defaults.max_streams);
  EXPECT_EQ(r.config.stream_window, defaults.stream_window);
  EXPECT_EQ(r.config.weight_cache_bytes, defaults.weight_cache_bytes);
  EXPECT_EQ(r.config.filter_store_bytes, defaults.filter_store_bytes);
  EXPECT_EQ(r.config.grace_period, defaults.grace_period);
  EXPECT_EQ(r.config.max_connection_age.count(), 0);
  EXPECT_EQ(r.config.log_level, "info");
  EXPECT_EQ(r.config.log_format, "text");
  EXPECT_EQ(r.config.cuda_devices, "all");
  EXPECT_EQ(r.config.gpu_weight_cache_bytes, 256 * kMiB);
  EXPECT_FALSE(r.config.cuda_benchmark_algorithms);
  EXPECT_TRUE(r.config.allow_reduced_precision);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");
}

TEST_F(FlagsTest, CudaDevicesAreAllNoneOrOrdinalsInCanonicalForm) {
  const std::pair<std::string, std::string> cases[] = {
      {"all", "all"}, {" ALL ", "all"}, {"None", "none"}, {"0", "0"}, {"1, 0 ,3", "1,0,3"}};
  for (const auto& [value, canonical] : cases) {
    const ParseResult r = Parse({"--cuda-devices", value});
    ASSERT_EQ(r.exit_code, std::nullopt) << value << ": " << r.err;
    EXPECT_EQ(r.config.cuda_devices, canonical);
  }
  // Whether the devices exist is for the server's start (the backends list them).
  const ParseResult any = Parse({"--cuda-devices", "7"});
  ASSERT_EQ(any.exit_code, std::nullopt) << any.err;
}

TEST_F(FlagsTest, ReducedPrecisionCanBeForbidden) {
  const ParseResult forbidden = Parse({"--forbid-reduced-precision"});
  ASSERT_EQ(forbidden.exit_code, std::nullopt) << forbidden.err;
  EXPECT_FALSE(forbidden.config.allow_reduced_precision);
  setenv("CONVSERVE_ALLOW_REDUCED_PRECISION", "false", 1);
  const ParseResult from_env = Parse({});
  ASSERT_EQ(from_env.exit_code, std::nullopt) << from_env.err;
  EXPECT_FALSE(from_env.config.allow_reduced_precision);
  EXPECT_THAT(Parse({"--help"}).out, HasSubstr("--forbid-reduced-precision"));
}

TEST_F(FlagsTest, CudaBenchmarkAlgorithmsIsASwitch) {
  EXPECT_TRUE(Parse({"--cuda-benchmark-algorithms"}).config.cuda_benchmark_algorithms);
  const ParseResult off = Parse({"--cuda-benchmark-algorithms=false"});
  ASSERT_EQ(off.exit_code, std::nullopt) << off.err;
  EXPECT_FALSE(off.config.cuda_benchmark_algorithms);
  setenv("CONVSERVE_CUDA_BENCHMARK_ALGORITHMS", "true", 1);
  const ParseResult from_env = Parse({});
  ASSERT_EQ(from_env.exit_code, std::nullopt) << from_env.err;
  EXPECT_TRUE(from_env.config.cuda_benchmark_algorithms);
  const ParseResult help = Parse({"--help"});
  EXPECT_THAT(help.out, HasSubstr("--cuda-benchmark-algorithms"));
  EXPECT_THAT(help.out, HasSubstr("CONVSERVE_CUDA_BENCHMARK_ALGORITHMS"));
  EXPECT_THAT(help.out, HasSubstr("change from run to run"));
}

TEST_F(FlagsTest, ThreadsPerWorkerDefaultsToCoresOverWorkers) {
  const int cores = CoresAvailable();
  const ParseResult r = Parse({"--workers", std::to_string(cores)});
  ASSERT_EQ(r.exit_code, std::nullopt) << r.err;
  EXPECT_EQ(r.config.workers, cores);
  EXPECT_EQ(r.config.threads_per_worker, 1);
}

TEST_F(FlagsTest, EveryFlagParsed) {
  std::vector<std::string> args;
  for (const FlagCase& c : FlagCases()) {
    args.push_back(c.flag);
    args.push_back(c.value);
  }
  const ParseResult r = Parse(args);
  ASSERT_EQ(r.exit_code, std::nullopt) << r.err;
  for (const FlagCase& c : FlagCases()) {
    SCOPED_TRACE(c.flag);
    c.check(r.config);
  }
}

TEST_F(FlagsTest, EveryFlagParsedWithEquals) {
  for (const FlagCase& c : FlagCases()) {
    SCOPED_TRACE(c.flag);
    const ParseResult r = Parse({c.flag + "=" + c.value});
    ASSERT_EQ(r.exit_code, std::nullopt) << r.err;
    c.check(r.config);
  }
}

TEST_F(FlagsTest, EveryFlagFallsBackOnItsEnvironmentVariable) {
  for (const FlagCase& c : FlagCases()) {
    SCOPED_TRACE(c.env);
    ASSERT_EQ(setenv(c.env.c_str(), c.value.c_str(), 1), 0);
    const ParseResult r = Parse({});
    unsetenv(c.env.c_str());
    ASSERT_EQ(r.exit_code, std::nullopt) << r.err;
    c.check(r.config);
  }
}

TEST_F(FlagsTest, FlagBeatsEnvironmentVariable) {
  setenv("CONVSERVE_ADDRESS", "10.0.0.1:1", 1);
  setenv("CONVSERVE_MAX_QUEUE", "3", 1);
  setenv("CONVSERVE_GRACE_PERIOD_S", "9", 1);
  setenv("CONVSERVE_LOG_FORMAT", "json", 1);
  const ParseResult r =
      Parse({"--address", "10.0.0.2:2", "--max-queue", "4", "--grace-period-s", "0.25"});
  ASSERT_EQ(r.exit_code, std::nullopt) << r.err;
  EXPECT_EQ(r.config.address, "10.0.0.2:2");
  EXPECT_EQ(r.config.max_queue, 4);
  EXPECT_EQ(r.config.grace_period.count(), 250);
  EXPECT_EQ(r.config.log_format, "json");  // no flag: the variable holds
}

TEST_F(FlagsTest, FlagBeatsInvalidEnvironmentVariable) {
  setenv("CONVSERVE_WORKERS", "0", 1);
  const ParseResult r = Parse({"--workers", "1"});
  ASSERT_EQ(r.exit_code, std::nullopt) << r.err;
  EXPECT_EQ(r.config.workers, 1);
}

TEST_F(FlagsTest, HelpListsEveryFlagItsVariableAndDefaults) {
  const ParseResult r = Parse({"--help"});
  ASSERT_THAT(r.exit_code, Optional(0));
  EXPECT_EQ(r.err, "");
  for (const FlagCase& c : FlagCases()) {
    EXPECT_THAT(r.out, HasSubstr(c.flag)) << c.flag;
    EXPECT_THAT(r.out, HasSubstr(c.env)) << c.env;
  }
  EXPECT_THAT(r.out, HasSubstr("0.0.0.0:50051"));
  EXPECT_THAT(r.out, HasSubstr("=256"));     // --max-message-mb
  EXPECT_THAT(r.out, HasSubstr("=onednn"));  // --backend
  EXPECT_THAT(r.out, HasSubstr("=30"));      // --grace-period-s
  EXPECT_THAT(r.out, HasSubstr("=info"));    // --log-level
  EXPECT_THAT(r.out, HasSubstr("=text"));    // --log-format
}

TEST_F(FlagsTest, TlsFilesComeInPairsAndMustExist) {
  const std::string file = ::testing::TempDir() + "convserve_flags_test.pem";
  { std::ofstream(file) << "pem"; }
  const ParseResult both = Parse({"--tls-cert", file, "--tls-key", file, "--tls-client-ca", file});
  ASSERT_EQ(both.exit_code, std::nullopt) << both.err;
  EXPECT_EQ(both.config.tls_cert_file, file);
  EXPECT_EQ(both.config.tls_key_file, file);
  EXPECT_EQ(both.config.tls_client_ca_file, file);
  const ParseResult tokens = Parse({"--auth-tokens-file", file});
  ASSERT_EQ(tokens.exit_code, std::nullopt) << tokens.err;
  EXPECT_EQ(tokens.config.auth_tokens_file, file);
  setenv("CONVSERVE_TLS_CERT", file.c_str(), 1);
  setenv("CONVSERVE_TLS_KEY", file.c_str(), 1);
  const ParseResult from_env = Parse({});
  unsetenv("CONVSERVE_TLS_CERT");
  unsetenv("CONVSERVE_TLS_KEY");
  ASSERT_EQ(from_env.exit_code, std::nullopt) << from_env.err;
  EXPECT_EQ(from_env.config.tls_key_file, file);

  const struct {
    std::vector<std::string> args;
    std::string message;
  } bad[] = {
      {{"--tls-cert", file}, "--tls-cert and --tls-key: give both or neither"},
      {{"--tls-key", file}, "--tls-cert and --tls-key: give both or neither"},
      {{"--tls-client-ca", file}, "--tls-client-ca: needs --tls-cert and --tls-key"},
      {{"--tls-cert", file + ".missing", "--tls-key", file}, "--tls-cert"},
  };
  for (const auto& c : bad) {
    const ParseResult r = Parse(c.args);
    ASSERT_TRUE(r.exit_code.has_value()) << c.message;
    EXPECT_NE(*r.exit_code, 0);
    EXPECT_THAT(r.err, HasSubstr(c.message));
  }
  std::remove(file.c_str());
}

TEST_F(FlagsTest, BatchingIsOffByDefaultAndPreferredSizesFitTheMaximum) {
  const ParseResult defaults = Parse({});
  ASSERT_EQ(defaults.exit_code, std::nullopt) << defaults.err;
  EXPECT_EQ(defaults.config.batch_max_size, 1);
  EXPECT_EQ(defaults.config.batch_max_delay.count(), 0);
  EXPECT_TRUE(defaults.config.batch_preferred_sizes.empty());

  const ParseResult r = Parse({"--batch-max-size", "8", "--batch-preferred-sizes", "8,2,4"});
  ASSERT_EQ(r.exit_code, std::nullopt) << r.err;
  EXPECT_EQ(r.config.batch_preferred_sizes, (std::vector<int>{2, 4, 8}));

  setenv("CONVSERVE_BATCH_PREFERRED_SIZES", "4", 1);
  const ParseResult from_env = Parse({"--batch-max-size", "4"});
  unsetenv("CONVSERVE_BATCH_PREFERRED_SIZES");
  ASSERT_EQ(from_env.exit_code, std::nullopt) << from_env.err;
  EXPECT_EQ(from_env.config.batch_preferred_sizes, (std::vector<int>{4}));

  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--batch-preferred-sizes", "4"},
        std::vector<std::string>{"--batch-max-size", "8", "--batch-preferred-sizes", "16"},
        std::vector<std::string>{"--batch-max-size", "8", "--batch-preferred-sizes", "1"}}) {
    const ParseResult bad = Parse(args);
    ASSERT_TRUE(bad.exit_code.has_value());
    EXPECT_NE(*bad.exit_code, 0);
    EXPECT_THAT(bad.err, HasSubstr("--batch-preferred-sizes"));
  }
  const ParseResult zero = Parse({"--batch-max-size", "0"});
  ASSERT_TRUE(zero.exit_code.has_value());
  EXPECT_THAT(zero.err, HasSubstr("--batch-max-size: must be a positive whole number"));
}

TEST_F(FlagsTest, VersionExitsZero) {
  const ParseResult r = Parse({"--version"});
  EXPECT_THAT(r.exit_code, Optional(0));
  EXPECT_THAT(r.out, HasSubstr(CONVSERVE_VERSION));
}

struct BadCase {
  std::vector<std::string> args;
  std::string message;
};

TEST_F(FlagsTest, ValidationErrorsExitNonZeroWithAClearMessage) {
  const std::string too_many = std::to_string(CoresAvailable() + 1);
  const std::vector<BadCase> cases = {
      {{"--workers", "0"}, "--workers: must be a positive whole number, got 0"},
      {{"--workers", "-2"}, "--workers: must be a positive whole number, got -2"},
      {{"--workers", "two"}, "'two' is not a whole number"},
      {{"--threads-per-worker", "0"}, "--threads-per-worker: must be a positive whole number"},
      {{"--max-queue", "0"}, "--max-queue: must be a positive whole number"},
      {{"--memory-budget-mb", "0"}, "--memory-budget-mb: must be a positive whole number"},
      {{"--memory-budget-mb", "9999999999999999"}, "--memory-budget-mb: must be"},
      {{"--max-request-mb", "-1"}, "--max-request-mb: must be a positive whole number"},
      {{"--max-streams", "0"}, "--max-streams: must be a positive whole number"},
      {{"--stream-window", "0"}, "--stream-window: must be a positive whole number"},
      {{"--max-output-elements", "0"}, "--max-output-elements: must be a positive whole number"},
      {{"--max-message-mb", "0"}, "--max-message-mb: must be from 1 to 2047"},
      {{"--max-message-mb", "2048"}, "--max-message-mb: must be from 1 to 2047 (gRPC's limit)"},
      {{"--weight-cache-mb", "-1"}, "--weight-cache-mb: must be a whole number, 0 or more"},
      {{"--filter-store-mb", "-1"}, "--filter-store-mb: must be a whole number, 0 or more"},
      {{"--grace-period-s", "-0.5"}, "--grace-period-s: must be from 0"},
      {{"--grace-period-s", "nan"}, "'nan' is not a number of seconds"},
      {{"--grace-period-s", "soon"}, "'soon' is not a number of seconds"},
      {{"--max-connection-age-s", "-1"}, "--max-connection-age-s: must be from 0"},
      {{"--backend", "cuda"}, "--backend: cuda not in {onednn,reference}"},
      {{"--cuda-devices", "some"}, "--cuda-devices: \"some\": \"some\" is not a device ordinal"},
      {{"--cuda-devices", "0,0"}, "device 0 is given twice; give all, none, or comma-separated"},
      {{"--cuda-devices", ""}, "is not a device ordinal"},
      {{"--gpu-weight-cache-mb", "-1"}, "--gpu-weight-cache-mb: must be a whole number, 0 or more"},
      {{"--fallback-workers", "-1"}, "--fallback-workers: must be a whole number, 0 or more"},
      {{"--log-level", "verbose"}, "--log-level: verbose not in"},
      {{"--log-format", "xml"}, "--log-format: xml not in {text,json}"},
      {{"--no-such-flag"}, "--no-such-flag"},
      {{"stray"}, "stray"},
      {{"--threads-per-worker", too_many}, "cores available"},
      {{"--workers", too_many}, "cores available"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(::testing::PrintToString(c.args));
    const ParseResult r = Parse(c.args);
    ASSERT_TRUE(r.exit_code.has_value());
    EXPECT_NE(*r.exit_code, 0);
    EXPECT_THAT(r.err, HasSubstr(c.message));
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(FlagsTest, BadEnvironmentVariableNamesIt) {
  setenv("CONVSERVE_MAX_QUEUE", "0", 1);
  const ParseResult r = Parse({});
  ASSERT_TRUE(r.exit_code.has_value());
  EXPECT_NE(*r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("CONVSERVE_MAX_QUEUE"));
}

TEST_F(FlagsTest, OversubscribedMessageNamesBothNumbers) {
  const int cores = CoresAvailable();
  const ParseResult r =
      Parse({"--workers", "1", "--threads-per-worker", std::to_string(cores + 1)});
  ASSERT_TRUE(r.exit_code.has_value());
  EXPECT_THAT(r.err, HasSubstr("1 x " + std::to_string(cores + 1) + " threads exceeds the " +
                               std::to_string(cores) + " cores available"));
}

TEST_F(FlagsTest, EnumsIgnoreCase) {
  const ParseResult r =
      Parse({"--backend", "Reference", "--log-level", "WARN", "--log-format", "JSON"});
  ASSERT_EQ(r.exit_code, std::nullopt) << r.err;
  EXPECT_EQ(r.config.backend, "reference");
  EXPECT_EQ(r.config.log_level, "warn");
  EXPECT_EQ(r.config.log_format, "json");
}

TEST(DescribeConfigTest, MentionsEveryField) {
  ServerConfig config;
  config.address = "127.0.0.1:1234";
  config.metrics_address = "127.0.0.1:9100";
  config.max_message_bytes = 100 * kMiB;
  config.limits.max_output_elements = 4242;
  config.backend = "reference";
  config.workers = 3;
  config.threads_per_worker = 5;
  config.max_queue = 11;
  config.memory_budget_bytes = 700 * kMiB;
  config.max_request_bytes = 70 * kMiB;
  config.max_streams = 13;
  config.stream_window = 17;
  config.weight_cache_bytes = kMiB / 2;
  config.filter_store_bytes = 19 * kMiB;
  config.grace_period = std::chrono::milliseconds(1500);
  config.max_connection_age = std::chrono::milliseconds(60000);
  config.log_level = "warn";
  config.log_format = "json";
  config.cuda_devices = "0,1";
  config.gpu_weight_cache_bytes = 64 * kMiB;
  config.cuda_benchmark_algorithms = true;
  config.batch_max_size = 8;
  config.batch_max_delay = std::chrono::microseconds(250);
  config.batch_preferred_sizes = {4, 8};
  const std::string line = DescribeConfig(config);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  for (const char* pair : {"address=127.0.0.1:1234",
                           "metrics-address=127.0.0.1:9100",
                           "max-message-mb=100",
                           "max-output-elements=4242",
                           "backend=reference",
                           "workers=3",
                           "threads-per-worker=5",
                           "max-queue=11",
                           "memory-budget-mb=700",
                           "max-request-mb=70",
                           "max-streams=13",
                           "stream-window=17",
                           "weight-cache-mb=0.5",
                           "filter-store-mb=19",
                           "grace-period-s=1.5",
                           "max-connection-age-s=60",
                           "log-level=warn",
                           "log-format=json",
                           "cuda-devices=0,1",
                           "gpu-weight-cache-mb=64",
                           "cuda-benchmark-algorithms=true",
                           "batch-max-size=8",
                           "batch-max-delay-us=250",
                           "batch-preferred-sizes=4,8"}) {
    EXPECT_THAT(line, HasSubstr(pair));
  }
}

TEST(DescribeConfigTest, EmptyValuesAreQuoted) {
  EXPECT_THAT(DescribeConfig(ServerConfig{}), HasSubstr("metrics-address=\"\""));
  EXPECT_THAT(DescribeConfig(ServerConfig{}), ::testing::StartsWith("address=0.0.0.0:50051 "));
}

// Logs `message` at info through a logger with the given format and returns
// what it wrote.
std::string LogLine(const std::string& format, const std::string& message) {
  std::ostringstream stream;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(stream);
  sink->set_formatter(MakeLogFormatter(format));
  spdlog::logger logger("test", sink);
  logger.info("{}", message);
  logger.flush();
  return stream.str();
}

TEST(LoggingTest, JsonLinesAreValidJsonWithTheMessageEscaped) {
  const std::string message = "a \"quoted\" C:\\path\nsecond line\ttab \x01 bell\x07 caf\xc3\xa9";
  const std::string line = LogLine("json", message);
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per event";
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &parsed).ok()) << line;
  EXPECT_EQ(parsed.fields().at("msg").string_value(), message);
  EXPECT_EQ(parsed.fields().at("level").string_value(), "info");
  EXPECT_TRUE(std::regex_match(parsed.fields().at("time").string_value(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << parsed.fields().at("time").string_value();
  EXPECT_THAT(line, HasSubstr(R"(a \"quoted\" C:\\path\nsecond line\ttab \u0001 bell\u0007)"));
}

TEST(LoggingTest, JsonReplacesInvalidUtf8) {
  const std::string line = LogLine("json", "bad \xff\xc3 byte \xed\xa0\x80 ok \xf0\x9f\x99\x82");
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &parsed).ok()) << line;
  EXPECT_EQ(parsed.fields().at("msg").string_value(),
            "bad \xef\xbf\xbd\xef\xbf\xbd byte \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd ok "
            "\xf0\x9f\x99\x82");
}

TEST(LoggingTest, JsonEscape) {
  EXPECT_EQ(JsonEscape("plain"), "plain");
  EXPECT_EQ(JsonEscape("\"\\/"), "\\\"\\\\/");
  EXPECT_EQ(JsonEscape(std::string("\0\x1f\x7f", 3)), "\\u0000\\u001f\\u007f");
  EXPECT_EQ(JsonEscape("\b\f\n\r\t"), "\\b\\f\\n\\r\\t");
}

TEST(LoggingTest, TextLineHasTimeLevelAndMessage) {
  const std::string line = LogLine("text", "hello there");
  EXPECT_TRUE(std::regex_match(
      line, std::regex(R"(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] \[info\] hello there\n)")))
      << line;
}

TEST(LoggingTest, ConfigureLoggingSetsTheDefaultLoggersLevel) {
  ConfigureLogging("warn", "json");
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::warn);
  ConfigureLogging("off", "text");
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::off);
  ConfigureLogging("info", "text");
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::info);
}

TEST(LoggingTest, ConfigureLoggingRejectsUnknownNames) {
  EXPECT_THROW(ConfigureLogging("verbose", "text"), std::invalid_argument);
  EXPECT_THROW(ConfigureLogging("info", "xml"), std::invalid_argument);
}

}  // namespace
}  // namespace convserve::server
