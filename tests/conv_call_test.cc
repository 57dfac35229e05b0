// The request pipeline without a network: reading a request once, the job it
// builds, and the metrics it records for every outcome.
#include "server/conv_call.h"

#include <optional>

#include "core/reference/reference_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/conv_service.h"
#include "service_test_util.h"

namespace convserve::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace service_test;  // NOLINT: the shared test helpers

// conv2d 1x3x3x1 of ones * 2x2x1x1 of ones, VALID: four 4s.
v1::ConvRequest OnesRequest() {
  v1::ConvRequest request;
  request.set_id("r1");
  request.mutable_conv2d()->set_padding(v1::PADDING_VALID);
  *request.mutable_input() =
      MakeTensor(DataType::kFloat32, {1, 3, 3, 1}, std::vector<double>(9, 1));
  *request.mutable_filter()->mutable_tensor() =
      MakeTensor(DataType::kFloat32, {2, 2, 1, 1}, std::vector<double>(4, 1));
  return request;
}

class ConvCallTest : public ::testing::Test {
 protected:
  ConvCallTest() : filters_(1 << 20), pipeline_(config_, &filters_, &metrics_) {}

  // The number after `convserve_requests_total{...code="<code>"}`, or "absent".
  std::string Count(const std::string& code) const {
    const std::string text = metrics_.Render();
    const std::string key =
        "convserve_requests_total{op=\"conv2d\",dtype=\"float\",code=\"" + code + "\"} ";
    const size_t at = text.find(key);
    if (at == std::string::npos) return "absent";
    return text.substr(at + key.size(), text.find('\n', at) - at - key.size());
  }

  ConvPipeline::Finish Capture() {
    return [this](const absl::Status& status) { finished_ = status; };
  }

  ServerConfig config_;
  FilterStore filters_;
  Metrics metrics_;
  ConvPipeline pipeline_;
  std::optional<absl::Status> finished_;
};

TEST(RequestLabels, ReadOnceFromTheRequest) {
  const v1::ConvRequest request = OnesRequest();
  EXPECT_EQ(ReadLabels(request), (RequestLabels{"conv2d", "float", 9 * 4 + 4 * 4}));
  EXPECT_EQ(ReadLabels(v1::ConvRequest()), (RequestLabels{"unknown", "unknown", 0}));
}

TEST_F(ConvCallTest, BuildsAJobThatComputesIntoTheResponseAndRecordsIt) {
  const v1::ConvRequest request = OnesRequest();
  v1::ConvResponse response;
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(5);
  ConvPipeline::Controls controls;
  controls.deadline = deadline;
  absl::StatusOr<Job> job = pipeline_.Prepare(request, &response, controls, Capture());
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(response.id(), "r1");
  EXPECT_EQ(job->spec.result_shape, (Shape{1, 2, 2, 1}));
  EXPECT_EQ(job->bytes, 9 * 4 + 4 * 4 + 4 * 4);  // inputs and result
  EXPECT_EQ(job->deadline, deadline);
  EXPECT_TRUE(job->backend.empty());
  EXPECT_EQ(job->operands.filter.shape, (Shape{2, 2, 1, 1}));

  // What a worker does with it.
  ReferenceBackend backend;
  ASSERT_TRUE(backend.Run(job->spec, job->operands, job->output(job->spec)).ok());
  EXPECT_FALSE(finished_);
  JobReport report;
  report.queued = std::chrono::microseconds(7);
  report.compute = std::chrono::microseconds(9);
  report.backend = "reference";
  report.device = "cpu";
  job->done(absl::OkStatus(), report);
  ASSERT_TRUE(finished_);
  EXPECT_TRUE(finished_->ok());
  EXPECT_EQ(AsFloats(response.output()), std::vector<float>(4, 4.0f));
  EXPECT_EQ(response.timing().queue_us(), 7);
  EXPECT_EQ(response.timing().compute_us(), 9);
  EXPECT_EQ(response.timing().backend(), "reference");
  EXPECT_EQ(response.timing().device(), "cpu");
  EXPECT_EQ(Count("OK"), "1");
  EXPECT_THAT(metrics_.Render(), HasSubstr("convserve_device_requests_total{device=\"cpu\"} 1\n"));
}

TEST_F(ConvCallTest, ReducedPrecisionReachesTheSpecForFloat32Only) {
  for (const DataType dtype : {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16}) {
    for (const bool allow : {false, true}) {
      SCOPED_TRACE(::testing::Message() << TfTypeName(dtype) << " allow=" << allow);
      v1::ConvRequest request = OnesRequest();
      *request.mutable_input() = MakeTensor(dtype, {1, 3, 3, 1}, std::vector<double>(9, 1));
      *request.mutable_filter()->mutable_tensor() =
          MakeTensor(dtype, {2, 2, 1, 1}, std::vector<double>(4, 1));
      request.set_allow_reduced_precision(allow);
      v1::ConvResponse response;
      absl::StatusOr<Job> job = pipeline_.Prepare(request, &response, {}, Capture());
      ASSERT_TRUE(job.ok()) << job.status();
      EXPECT_EQ(job->spec.allow_reduced_precision, allow && dtype == DataType::kFloat32);
    }
  }
}

TEST_F(ConvCallTest, AFailedJobCountsOnNoDevice) {
  // The request outlives the job, as a call's does.
  const v1::ConvRequest request = OnesRequest();
  v1::ConvResponse response;
  absl::StatusOr<Job> job = pipeline_.Prepare(request, &response, {}, Capture());
  ASSERT_TRUE(job.ok());
  JobReport report;
  report.backend = "gpu";
  report.device = "cuda:0";
  job->done(absl::UnavailableError("the device was lost"), report);
  EXPECT_FALSE(response.has_timing());
  EXPECT_THAT(metrics_.Render(), Not(HasSubstr("device=\"cuda:0\"")));
}

TEST(AddGpuInfosTest, EachGpuWithItsPoolsState) {
  const BackendEntry gpu_backend{.name = "cuda", .per_device = true};
  auto device = [&](int ordinal, bool selected) {
    ListedDevice listed{.entry = &gpu_backend, .selected = selected};
    listed.info.id = "cuda:" + std::to_string(ordinal);
    listed.info.ordinal = ordinal;
    listed.info.name = "GPU " + std::to_string(ordinal);
    listed.info.memory_bytes = int64_t{80} << 30;
    listed.info.compute_capability = "9.0";
    listed.info.driver_version = "13.0";
    listed.info.runtime_version = "12.8";
    listed.info.cudnn_version = "9.19.0";
    return listed;
  };
  const std::vector<ListedDevice> gpus = {device(0, true), device(1, true), device(2, false)};
  const std::vector<Scheduler::PoolStatus> pools = {
      {.backend = "cuda", .device_id = "cuda:0", .workers = 1},
      {.backend = "cuda",
       .device_id = "cuda:1",
       .workers = 1,
       .in_service = false,
       .out_of_service_reason = "the device was lost"},
      {.backend = "onednn", .device_id = "cpu", .workers = 2}};
  v1::ServerInfo info;
  AddGpuInfos(gpus, pools, &info);
  ASSERT_EQ(info.gpus_size(), 3);
  const v1::GpuInfo& first = info.gpus(0);
  EXPECT_EQ(first.id(), "cuda:0");
  EXPECT_EQ(first.ordinal(), 0);
  EXPECT_EQ(first.name(), "GPU 0");
  EXPECT_EQ(first.memory_bytes(), int64_t{80} << 30);
  EXPECT_EQ(first.compute_capability(), "9.0");
  EXPECT_EQ(first.driver_version(), "13.0");
  EXPECT_EQ(first.runtime_version(), "12.8");
  EXPECT_EQ(first.cudnn_version(), "9.19.0");
  EXPECT_TRUE(first.in_service());
  EXPECT_EQ(first.out_of_service_reason(), "");
  EXPECT_FALSE(info.gpus(1).in_service());
  EXPECT_EQ(info.gpus(1).out_of_service_reason(), "the device was lost");
  EXPECT_FALSE(info.gpus(2).in_service());
  EXPECT_EQ(info.gpus(2).out_of_service_reason(), "not selected by --cuda-devices");
}

TEST_F(ConvCallTest, AnInvalidRequestIsRecordedAndReturnedWithoutFinishing) {
  v1::ConvRequest request = OnesRequest();
  request.mutable_conv2d()->add_strides(0);
  v1::ConvResponse response;
  absl::StatusOr<Job> job = pipeline_.Prepare(request, &response, {}, Capture());
  EXPECT_TRUE(absl::IsInvalidArgument(job.status())) << job.status();
  EXPECT_FALSE(finished_);
  EXPECT_EQ(Count("INVALID_ARGUMENT"), "1");
}

TEST_F(ConvCallTest, ARequestOverThePerRequestLimitIsExhausted) {
  config_.max_request_bytes = 64;  // the ones request holds 68
  ConvPipeline pipeline(config_, &filters_, &metrics_);
  const v1::ConvRequest request = OnesRequest();
  v1::ConvResponse response;
  absl::StatusOr<Job> job = pipeline.Prepare(request, &response, {}, Capture());
  EXPECT_TRUE(absl::IsResourceExhausted(job.status())) << job.status();
  EXPECT_THAT(job.status().message(), HasSubstr("max_request_mb"));
  EXPECT_EQ(Count("RESOURCE_EXHAUSTED"), "1");
}

TEST_F(ConvCallTest, ARefusedJobFinishesWithTheRefusalAndNoOutput) {
  const v1::ConvRequest request = OnesRequest();
  v1::ConvResponse response;
  absl::StatusOr<Job> job = pipeline_.Prepare(request, &response, {}, Capture());
  ASSERT_TRUE(job.ok());
  job->done(absl::ResourceExhaustedError("queue full"), {});
  ASSERT_TRUE(finished_);
  EXPECT_TRUE(absl::IsResourceExhausted(*finished_));
  EXPECT_FALSE(response.has_output());
  EXPECT_FALSE(response.has_timing());
  EXPECT_EQ(Count("RESOURCE_EXHAUSTED"), "1");
  EXPECT_EQ(Count("OK"), "absent");
}

TEST_F(ConvCallTest, ControlsReachTheJob) {
  v1::ConvResponse response;
  ConvPipeline::Controls controls;
  controls.cancelled = [] { return absl::CancelledError("gone"); };
  const v1::ConvRequest request = OnesRequest();
  absl::StatusOr<Job> job = pipeline_.Prepare(request, &response, controls, Capture());
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(job->cancelled);
  EXPECT_TRUE(absl::IsCancelled(job->cancelled()));
  EXPECT_EQ(job->deadline, std::chrono::system_clock::time_point::max());
}

TEST_F(ConvCallTest, RefuseRecordsAndFinishesAnUnreadRequest) {
  pipeline_.Refuse(OnesRequest(), absl::UnavailableError("draining"), "alice", std::nullopt,
                   Capture());
  ASSERT_TRUE(finished_);
  EXPECT_TRUE(absl::IsUnavailable(*finished_));
  EXPECT_EQ(Count("UNAVAILABLE"), "1");
  EXPECT_THAT(metrics_.Render(), Not(HasSubstr("code=\"OK\"")));
  EXPECT_THAT(metrics_.Render(), HasSubstr("convserve_principal_requests_total{principal=\"alice\","
                                           "code=\"UNAVAILABLE\"} 1"));
}

// The status page lists failed calls with the message the caller got, from
// every path a call can fail on; successes are not listed.
TEST_F(ConvCallTest, EveryFailureIsKeptForTheStatusPage) {
  v1::ConvRequest invalid = OnesRequest();
  invalid.mutable_conv2d()->add_strides(0);
  v1::ConvResponse response;
  EXPECT_FALSE(pipeline_.Prepare(invalid, &response, {}, Capture()).ok());

  const v1::ConvRequest request = OnesRequest();
  absl::StatusOr<Job> refused = pipeline_.Prepare(request, &response, {}, Capture());
  ASSERT_TRUE(refused.ok());
  refused->done(absl::ResourceExhaustedError("queue full"), {});
  absl::StatusOr<Job> ran = pipeline_.Prepare(request, &response, {}, Capture());
  ASSERT_TRUE(ran.ok());
  ran->done(absl::OkStatus(), {});
  pipeline_.Refuse(OnesRequest(), absl::UnavailableError("draining"), "alice", std::nullopt,
                   Capture());

  const Metrics::StatusSnapshot status = metrics_.ReadStatus();
  EXPECT_EQ(status.requests, 4u);
  EXPECT_EQ(status.failed, 3u);
  ASSERT_EQ(status.recent_errors.size(), 3u);
  EXPECT_EQ(status.recent_errors[0].op, "conv2d");
  EXPECT_EQ(status.recent_errors[0].dtype, "float");
  EXPECT_EQ(status.recent_errors[0].code, "INVALID_ARGUMENT");
  EXPECT_THAT(status.recent_errors[0].message, HasSubstr("conv2d.strides"));
  EXPECT_EQ(status.recent_errors[1].code, "RESOURCE_EXHAUSTED");
  EXPECT_EQ(status.recent_errors[1].message, "queue full");
  EXPECT_EQ(status.recent_errors[2].code, "UNAVAILABLE");
  EXPECT_EQ(status.recent_errors[2].message, "draining");
}

}  // namespace
}  // namespace convserve::server
