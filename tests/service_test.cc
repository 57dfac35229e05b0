// In-process service tests: a real server on a loopback port, called through
// the generated stub.
#include <limits>
#include <map>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "convserve/v1/convserve.grpc.pb.h"
#include "core/element_types.h"
#include "core/onednn/onednn_backend.h"
#include "core/reference/reference_backend.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "server/wire.h"
#include "tests/service_test_util.h"

namespace convserve::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace service_test;  // NOLINT: the shared test helpers

// Tests of the service layer run on the reference backend, so that results
// can be compared byte for byte; OneDnnServiceTest covers the default backend.
class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(ReferenceConfig()); }

  static ServerConfig ReferenceConfig() {
    ServerConfig config;
    config.backend = "reference";
    config.workers = 2;
    config.cuda_devices = "none";  // the CPU pools, GPUs or not
    return config;
  }

  void Start(ServerConfig config) {
    config.address = "127.0.0.1:0";
    server_.reset();
    auto server = StartServer(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::ConvService::NewStub(LoopbackChannel(server_->port()));
  }

  grpc::Status Call(const v1::ConvRequest& request, v1::ConvResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return stub_->Conv(&context, request, response);
  }

  // Sends `request`, expects success and the in-process reference's bytes.
  void ExpectMatchesInProcess(const v1::ConvRequest& request) {
    v1::ConvResponse response;
    grpc::Status status = Call(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    const v1::Tensor expected = ComputeInProcess(request);
    EXPECT_EQ(response.id(), request.id());
    EXPECT_EQ(response.output().dtype(), expected.dtype());
    EXPECT_THAT(response.output().shape(), ::testing::ElementsAreArray(expected.shape()));
    EXPECT_EQ(response.output().data(), expected.data());
    EXPECT_EQ(response.timing().backend(), "reference");
  }

  // Expects `request` to fail with `code` and a message starting with `prefix`,
  // then checks that the server still answers a valid request.
  void ExpectError(const v1::ConvRequest& request, grpc::StatusCode code,
                   const std::string& prefix) {
    v1::ConvResponse response;
    grpc::Status status = Call(request, &response);
    EXPECT_EQ(status.error_code(), code) << status.error_message();
    EXPECT_THAT(status.error_message(), StartsWith(prefix));
    ExpectMatchesInProcess(ValidConv2D());
  }

  static v1::ConvRequest ValidConv2D() {
    v1::ConvRequest request;
    request.set_id("valid");
    request.mutable_conv2d()->set_padding(v1::PADDING_VALID);
    *request.mutable_input() =
        MakeTensor(DataType::kFloat32, {1, 3, 3, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    *request.mutable_filter()->mutable_tensor() =
        MakeTensor(DataType::kFloat32, {2, 2, 1, 1}, {1, 1, 1, 1});
    return request;
  }

  std::unique_ptr<RunningServer> server_;
  std::unique_ptr<v1::ConvService::Stub> stub_;
  std::mt19937 rng_{42};
};

TEST_F(ServiceTest, Conv2DHandComputed) {
  v1::ConvResponse response;
  ASSERT_TRUE(Call(ValidConv2D(), &response).ok());
  EXPECT_THAT(response.output().shape(), ::testing::ElementsAre(1, 2, 2, 1));
  EXPECT_THAT(AsFloats(response.output()), ::testing::ElementsAre(12, 16, 24, 28));
  EXPECT_EQ(response.id(), "valid");
}

// One request per op, with random operands, in both channel orders where the op has them.
struct OpCase {
  std::string name;
  std::function<void(v1::ConvRequest*)> set_op;
  Shape input, filter, pointwise;
};

std::vector<OpCase> AllOps() {
  return {
      {"convolution",
       [](v1::ConvRequest* r) {
         auto* op = r->mutable_convolution();
         op->set_padding(v1::PADDING_SAME);
         op->add_dilations(2);
       },
       {2, 7, 6, 4},
       {3, 3, 2, 6},
       {}},
      {"conv1d",
       [](v1::ConvRequest* r) {
         auto* op = r->mutable_conv1d();
         op->set_padding(v1::PADDING_SAME);
         op->add_stride(2);
       },
       {2, 9, 3},
       {3, 3, 5},
       {}},
      {"conv2d",
       [](v1::ConvRequest* r) {
         auto* op = r->mutable_conv2d();
         op->set_padding(v1::PADDING_EXPLICIT);
         for (int64_t p : {0, 0, 1, 2, 0, 1, 0, 0}) op->add_explicit_paddings(p);
         op->add_strides(2);
       },
       {1, 6, 5, 3},
       {3, 2, 3, 4},
       {}},
      {"conv3d",
       [](v1::ConvRequest* r) {
         auto* op = r->mutable_conv3d();
         op->set_padding(v1::PADDING_VALID);
         for (int64_t s : {1, 2, 1}) op->add_strides(s);
       },
       {1, 4, 5, 4, 2},
       {2, 2, 2, 2, 3},
       {}},
      {"depthwise_conv2d",
       [](v1::ConvRequest* r) {
         auto* op = r->mutable_depthwise_conv2d();
         op->set_padding(v1::PADDING_SAME);
         op->add_strides(2);
       },
       {1, 5, 5, 3},
       {3, 3, 3, 2},
       {}},
      {"separable_conv2d",
       [](v1::ConvRequest* r) {
         auto* op = r->mutable_separable_conv2d();
         op->set_padding(v1::PADDING_VALID);
         op->add_dilations(2);
       },
       {1, 6, 6, 2},
       {2, 2, 2, 2},
       {1, 1, 4, 3}},
      {"atrous_conv2d",
       [](v1::ConvRequest* r) {
         auto* op = r->mutable_atrous_conv2d();
         op->set_padding(v1::PADDING_SAME);
         op->set_rate(2);
       },
       {1, 6, 6, 2},
       {3, 3, 2, 2},
       {}},
      {"conv2d_transpose",
       [](v1::ConvRequest* r) {
         auto* op = r->mutable_conv2d_transpose();
         op->set_padding(v1::PADDING_SAME);
         for (int64_t d : {1, 6, 5, 2}) op->add_output_shape(d);
         op->add_strides(2);
       },
       {1, 3, 3, 4},
       {3, 3, 2, 4},
       {}},
      {"conv3d_transpose",
       [](v1::ConvRequest* r) {
         auto* op = r->mutable_conv3d_transpose();
         op->set_padding(v1::PADDING_VALID);
         for (int64_t d : {1, 5, 4, 4, 2}) op->add_output_shape(d);
         op->add_strides(2);
       },
       {1, 2, 1, 1, 3},
       {2, 3, 3, 2, 3},
       {}},
      {"conv_transpose",
       [](v1::ConvRequest* r) {
         auto* op = r->mutable_conv_transpose();
         op->set_padding(v1::PADDING_SAME);
         for (int64_t d : {2, 8, 3}) op->add_output_shape(d);
         op->add_strides(2);
       },
       {2, 4, 2},
       {3, 3, 2},
       {}},
      {"conv1d_transpose",
       [](v1::ConvRequest* r) {
         auto* op = r->mutable_conv1d_transpose();
         op->set_padding(v1::PADDING_SAME);
         op->set_data_format("NCW");
         for (int64_t d : {2, 3, 9}) op->add_output_shape(d);
         op->add_strides(2);
       },
       {2, 4, 5},
       {3, 3, 4},
       {}},
      // TF 2's forms: explicit paddings and a spatial-only output_shape (H, W).
      {"conv2d_transpose_explicit_spatial_only",
       [](v1::ConvRequest* r) {
         auto* op = r->mutable_conv2d_transpose();
         op->set_padding(v1::PADDING_EXPLICIT);
         for (int64_t p : {0, 0, 1, 2, 0, 1, 0, 0}) op->add_explicit_paddings(p);
         for (int64_t d : {7, 5}) op->add_output_shape(d);
         for (int64_t s : {2, 1}) op->add_strides(s);
       },
       {2, 4, 5, 3},
       {3, 2, 2, 3},
       {}},
      {"conv_transpose_2d_explicit",
       [](v1::ConvRequest* r) {
         auto* op = r->mutable_conv_transpose();
         op->set_padding(v1::PADDING_EXPLICIT);
         op->set_data_format("NCHW");
         for (int64_t p : {0, 0, 0, 0, 1, 0, 0, 1}) op->add_explicit_paddings(p);
         for (int64_t d : {1, 2, 5, 5}) op->add_output_shape(d);
       },
       {1, 3, 4, 4},
       {3, 3, 2, 3},
       {}},
  };
}

v1::ConvRequest MakeRequest(const OpCase& c, DataType dtype, std::mt19937& rng) {
  v1::ConvRequest request;
  request.set_id(c.name);
  c.set_op(&request);
  *request.mutable_input() = RandomTensor(dtype, c.input, rng);
  *request.mutable_filter()->mutable_tensor() = RandomTensor(dtype, c.filter, rng);
  if (!c.pointwise.empty()) {
    *request.mutable_pointwise_filter()->mutable_tensor() = RandomTensor(dtype, c.pointwise, rng);
  }
  return request;
}

TEST_F(ServiceTest, EveryOpMatchesTheInProcessReference) {
  for (const OpCase& c : AllOps()) {
    SCOPED_TRACE(c.name);
    ExpectMatchesInProcess(MakeRequest(c, DataType::kFloat32, rng_));
  }
}

TEST_F(ServiceTest, EveryDtypeOfConv2D) {
  for (DataType dtype : kAllDataTypes) {
    SCOPED_TRACE(TfTypeName(dtype));
    ExpectMatchesInProcess(MakeRequest(AllOps()[2], dtype, rng_));
  }
}

TEST_F(ServiceTest, EveryDtypeOfConv3DTransposeButInt32) {
  for (DataType dtype : {DataType::kFloat64, DataType::kFloat16, DataType::kBFloat16}) {
    SCOPED_TRACE(TfTypeName(dtype));
    ExpectMatchesInProcess(MakeRequest(AllOps()[8], dtype, rng_));
  }
  ExpectError(MakeRequest(AllOps()[8], DataType::kInt32, rng_), grpc::StatusCode::INVALID_ARGUMENT,
              "Value for attr 'T' of int32");
}

TEST_F(ServiceTest, ChannelsFirstLayouts) {
  v1::ConvRequest request = MakeRequest(AllOps()[2], DataType::kFloat32, rng_);
  request.mutable_conv2d()->set_data_format("NCHW");
  request.mutable_conv2d()->clear_explicit_paddings();
  for (int64_t p : {0, 0, 0, 0, 1, 2, 0, 1}) request.mutable_conv2d()->add_explicit_paddings(p);
  ExpectMatchesInProcess(request);
  v1::ConvRequest transpose = MakeRequest(AllOps()[9], DataType::kFloat32, rng_);
  transpose.mutable_conv_transpose()->set_data_format("NCW");
  transpose.mutable_conv_transpose()->clear_output_shape();
  for (int64_t d : {2, 3, 8}) transpose.mutable_conv_transpose()->add_output_shape(d);
  *transpose.mutable_input() = RandomTensor(DataType::kFloat32, {2, 2, 4}, rng_);
  ExpectMatchesInProcess(transpose);
}

TEST_F(ServiceTest, FusedBiasAndActivation) {
  v1::ConvRequest request = ValidConv2D();
  *request.mutable_bias()->mutable_tensor() = MakeTensor(DataType::kFloat32, {1}, {-20});
  request.set_activation(v1::ACTIVATION_RELU);
  v1::ConvResponse response;
  ASSERT_TRUE(Call(request, &response).ok());
  EXPECT_THAT(AsFloats(response.output()), ::testing::ElementsAre(0, 0, 4, 8));
}

TEST_F(ServiceTest, InvalidArgumentCarriesTensorFlowsMessageAndField) {
  v1::ConvRequest request = ValidConv2D();
  for (int64_t s : {2, 1, 1, 1}) request.mutable_conv2d()->add_strides(s);
  v1::ConvResponse response;
  grpc::Status status = Call(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "Current implementation does not yet support strides in the batch and depth "
            "dimensions. (field: conv2d.strides)");
}

TEST_F(ServiceTest, MalformedRequestsAreInvalidArgument) {
  v1::ConvRequest no_op = ValidConv2D();
  no_op.clear_op();
  ExpectError(no_op, grpc::StatusCode::INVALID_ARGUMENT, "the request names no op");

  v1::ConvRequest no_input = ValidConv2D();
  no_input.clear_input();
  ExpectError(no_input, grpc::StatusCode::INVALID_ARGUMENT, "input is required");

  v1::ConvRequest no_filter = ValidConv2D();
  no_filter.clear_filter();
  ExpectError(no_filter, grpc::StatusCode::INVALID_ARGUMENT, "filter is required");

  v1::ConvRequest no_dtype = ValidConv2D();
  no_dtype.mutable_input()->set_dtype(v1::DATA_TYPE_UNSPECIFIED);
  ExpectError(no_dtype, grpc::StatusCode::INVALID_ARGUMENT, "unsupported data type");

  v1::ConvRequest short_data = ValidConv2D();
  short_data.mutable_input()->mutable_data()->pop_back();
  ExpectError(short_data, grpc::StatusCode::INVALID_ARGUMENT, "tensor data has 35 bytes");

  v1::ConvRequest negative_dim = ValidConv2D();
  negative_dim.mutable_input()->set_shape(1, -3);
  ExpectError(negative_dim, grpc::StatusCode::INVALID_ARGUMENT, "Dimension -3 must be >= 0");

  v1::ConvRequest huge_dims = ValidConv2D();
  huge_dims.mutable_input()->set_shape(1, int64_t{1} << 40);
  huge_dims.mutable_input()->set_shape(2, int64_t{1} << 40);
  ExpectError(huge_dims, grpc::StatusCode::INVALID_ARGUMENT, "Shape [1,1099511627776");

  v1::ConvRequest no_padding = ValidConv2D();
  no_padding.mutable_conv2d()->set_padding(v1::PADDING_UNSPECIFIED);
  ExpectError(no_padding, grpc::StatusCode::INVALID_ARGUMENT, "padding must be");

  v1::ConvRequest stray_pointwise = ValidConv2D();
  *stray_pointwise.mutable_pointwise_filter() = stray_pointwise.filter();
  ExpectError(stray_pointwise, grpc::StatusCode::INVALID_ARGUMENT,
              "pointwise_filter is only used by separable_conv2d");

  v1::ConvRequest bad_activation = ValidConv2D();
  bad_activation.set_activation(static_cast<v1::Activation>(99));
  ExpectError(bad_activation, grpc::StatusCode::INVALID_ARGUMENT, "unknown activation 99");
}

TEST_F(ServiceTest, UnknownFilterIdIsNotFound) {
  v1::ConvRequest request = ValidConv2D();
  request.mutable_filter()->set_filter_id("no-such-filter");
  ExpectError(request, grpc::StatusCode::NOT_FOUND, "no filter is registered under id");
}

TEST_F(ServiceTest, OutputOverTheCapIsResourceExhausted) {
  ServerConfig config = ReferenceConfig();
  config.limits.max_output_elements = 3;
  Start(config);
  v1::ConvRequest request = ValidConv2D();  // 4 output elements
  v1::ConvResponse response;
  grpc::Status status = Call(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("max_output_elements of 3"));
}

TEST_F(ServiceTest, MessagesLargerThanGrpcsDefaultAreAccepted) {
  // 8 MiB of input, twice gRPC's 4 MiB default.
  v1::ConvRequest request;
  request.mutable_conv2d()->set_padding(v1::PADDING_VALID);
  *request.mutable_input() = RandomTensor(DataType::kFloat32, {1, 512, 512, 8}, rng_);
  *request.mutable_filter()->mutable_tensor() =
      RandomTensor(DataType::kFloat32, {1, 1, 8, 1}, rng_);
  ExpectMatchesInProcess(request);
}

TEST_F(ServiceTest, EmptyBatchGivesAnEmptyResult) {
  v1::ConvRequest request = ValidConv2D();
  *request.mutable_input() = MakeTensor(DataType::kFloat32, {0, 3, 3, 1}, {});
  v1::ConvResponse response;
  ASSERT_TRUE(Call(request, &response).ok());
  EXPECT_THAT(response.output().shape(), ::testing::ElementsAre(0, 2, 2, 1));
  EXPECT_TRUE(response.output().data().empty());
}

// Found by fuzz_conv_request: requests whose result is empty while its other
// dimensions are huge (valid shapes: their products are 0), with the result
// shape each must get. The reference backend looped 2^63 times over the rows
// of the first (hanging its worker), and the element counts of the second
// overflowed int64 (undefined behaviour, in routing and in the backend).
std::vector<std::pair<v1::ConvRequest, std::vector<int64_t>>> EmptyResultsWithHugeDimensions() {
  constexpr int64_t kHuge = std::numeric_limits<int64_t>::max() - 1;
  std::vector<std::pair<v1::ConvRequest, std::vector<int64_t>>> cases;
  v1::ConvRequest rows;
  rows.mutable_conv2d()->set_padding(v1::PADDING_EXPLICIT);
  for (int i = 0; i < 8; ++i) rows.mutable_conv2d()->add_explicit_paddings(0);
  *rows.mutable_input() = MakeTensor(DataType::kFloat32, {1, kHuge, 0, 1}, {});
  *rows.mutable_filter()->mutable_tensor() = MakeTensor(DataType::kFloat32, {1, 1, 1, 1}, {1});
  cases.push_back({rows, {1, kHuge, 0, 1}});
  v1::ConvRequest batch;
  batch.mutable_conv2d()->set_padding(v1::PADDING_VALID);
  batch.mutable_conv2d()->set_data_format("NCHW");
  *batch.mutable_input() = MakeTensor(DataType::kFloat32, {0, 3, (int64_t{1} << 62) + 1, 4}, {});
  *batch.mutable_filter()->mutable_tensor() =
      MakeTensor(DataType::kFloat32, {3, 2, 3, 3}, std::vector<double>(54, 1.0));
  cases.push_back({batch, {0, 3, (int64_t{1} << 62) - 1, 3}});
  return cases;
}

TEST_F(ServiceTest, EmptyResultsWithHugeDimensionsAnswerAtOnce) {
  for (const auto& [request, shape] : EmptyResultsWithHugeDimensions()) {
    v1::ConvResponse response;
    const grpc::Status status = Call(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_THAT(response.output().shape(), ::testing::ElementsAreArray(shape));
    EXPECT_TRUE(response.output().data().empty());
  }
}

TEST_F(ServiceTest, ConcurrentCallsAllGetTheirOwnAnswer) {
  std::vector<std::thread> clients;
  std::atomic<int> correct{0};
  constexpr int kThreads = 4, kCalls = 25;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < kCalls; ++i) {
        v1::ConvRequest request = MakeRequest(AllOps()[i % 10], DataType::kFloat32, rng);
        request.set_id(absl::StrCat(t, "/", i));
        v1::ConvResponse response;
        if (Call(request, &response).ok() && response.id() == request.id() &&
            response.output().data() == ComputeInProcess(request).data()) {
          ++correct;
        }
      }
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(correct.load(), kThreads * kCalls);
}

// With dynamic batching on, concurrent requests of every op that share a
// filter are computed together; each reply still has exactly its own bytes.
TEST_F(ServiceTest, WithBatchingConcurrentCallsOfEveryOpGetTheirOwnBytes) {
  ServerConfig config = ReferenceConfig();
  config.workers = 1;
  config.batch_max_size = 8;
  config.batch_max_delay = std::chrono::microseconds(2000);
  Start(config);
  std::vector<std::thread> clients;
  std::atomic<int> correct{0};
  constexpr int kThreads = 6, kCalls = 20;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937 inputs(100 + t);
      const std::vector<OpCase> ops = AllOps();
      for (int i = 0; i < kCalls; ++i) {
        // Call i of every thread: the same op and filter, its own input.
        const OpCase& c = ops[i % ops.size()];
        std::mt19937 shared(i);
        v1::ConvRequest request = MakeRequest(c, DataType::kFloat32, shared);
        *request.mutable_input() = RandomTensor(DataType::kFloat32, c.input, inputs);
        request.set_id(absl::StrCat(t, "/", i));
        v1::ConvResponse response;
        if (Call(request, &response).ok() && response.id() == request.id() &&
            response.output().data() == ComputeInProcess(request).data() &&
            response.timing().backend() == "reference") {
          ++correct;
        }
      }
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(correct.load(), kThreads * kCalls);
}

TEST_F(ServiceTest, RepliesSayWhichDeviceComputedThem) {
  v1::ConvResponse response;
  ASSERT_TRUE(Call(MakeRequest(AllOps()[2], DataType::kFloat32, rng_), &response).ok());
  EXPECT_EQ(response.timing().backend(), "reference");
  EXPECT_EQ(response.timing().device(), "cpu");
  // Allowing reduced precision changes nothing on the CPU: float32 in full.
  v1::ConvRequest request = MakeRequest(AllOps()[2], DataType::kFloat32, rng_);
  const std::string exact = ComputeInProcess(request).data();
  request.set_allow_reduced_precision(true);
  ASSERT_TRUE(Call(request, &response).ok());
  EXPECT_EQ(response.output().data(), exact);
}

TEST_F(ServiceTest, GpusAskedForByOrdinalMustBeUsable) {
  ServerConfig config = ReferenceConfig();
  config.address = "127.0.0.1:0";
  config.cuda_devices = "99";
  auto server = StartServer(config);
  ASSERT_FALSE(server.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(server.status())) << server.status();
  EXPECT_THAT(server.status().message(), HasSubstr("--cuda-devices 99: "));
}

TEST_F(ServiceTest, AllGpusStartsWhateverTheMachineHas) {
  ServerConfig config = ReferenceConfig();
  config.cuda_devices = "all";
  Start(config);
  grpc::ClientContext context;
  v1::ServerInfo info;
  ASSERT_TRUE(stub_->GetServerInfo(&context, v1::GetServerInfoRequest(), &info).ok());
  // One pool per GPU ahead of the reference pool (none without GPUs).
  for (const v1::GpuInfo& gpu : info.gpus()) EXPECT_THAT(gpu.id(), StartsWith("cuda:"));
  EXPECT_EQ(info.backends_size(), info.gpus_size() + 1);
  EXPECT_EQ(info.backends(info.backends_size() - 1).name(), "reference");
  ExpectMatchesInProcess(
      MakeRequest(AllOps()[2], DataType::kInt32, rng_));  // no GPU computes int32
}

TEST_F(ServiceTest, ServerInfoListsOpsDtypesAndLimits) {
  grpc::ClientContext context;
  v1::ServerInfo info;
  ASSERT_TRUE(stub_->GetServerInfo(&context, v1::GetServerInfoRequest(), &info).ok());
  EXPECT_EQ(info.version(), CONVSERVE_VERSION);
  EXPECT_THAT(info.ops(), ::testing::ElementsAre(
                              "convolution", "conv1d", "conv2d", "conv3d", "depthwise_conv2d",
                              "separable_conv2d", "atrous_conv2d", "conv2d_transpose",
                              "conv3d_transpose", "conv_transpose", "conv1d_transpose"));
  EXPECT_EQ(info.dtypes_size(), 5);
  ASSERT_EQ(info.backends_size(), 1);
  EXPECT_EQ(info.backends(0).name(), "reference");
  EXPECT_EQ(info.gpus_size(), 0) << "told to use none";
  EXPECT_EQ(info.limits().workers(), 2);
  EXPECT_EQ(info.limits().max_message_bytes(), int64_t{256} << 20);
  EXPECT_EQ(info.limits().max_output_elements(), int64_t{1} << 28);
}

TEST_F(ServiceTest, EchoRepliesWithTheBytesAskedForAndRefusesBadSizes) {
  auto echo = v1::EchoService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", server_->port()), grpc::InsecureChannelCredentials()));
  for (int64_t bytes : {int64_t{0}, int64_t{1000}, int64_t{-1}, int64_t{256} << 20}) {
    grpc::ClientContext context;
    v1::EchoRequest request;
    request.set_payload(std::string(100, 'x'));
    request.set_reply_bytes(bytes);
    v1::EchoResponse response;
    grpc::Status status = echo->Echo(&context, request, &response);
    if (bytes >= 0 && bytes <= 1000) {
      ASSERT_TRUE(status.ok()) << status.error_message();
      EXPECT_EQ(response.payload().size(), static_cast<size_t>(bytes));
    } else {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bytes;
    }
  }
}

TEST_F(ServiceTest, ConvStreamAnswersEveryRequestByIdAndGoesOnAfterErrors) {
  grpc::ClientContext context;
  auto stream = stub_->ConvStream(&context);
  std::map<std::string, v1::ConvRequest> sent;
  for (int i = 0; i < 20; ++i) {
    v1::ConvRequest request = MakeRequest(AllOps()[i % 10], DataType::kFloat32, rng_);
    request.set_id(absl::StrCat("r", i));
    if (i % 7 == 3) request.mutable_input()->mutable_data()->pop_back();  // malformed
    sent[request.id()] = request;
    ASSERT_TRUE(stream->Write(request));
  }
  stream->WritesDone();
  v1::ConvResponse response;
  int replies = 0;
  while (stream->Read(&response)) {
    ++replies;
    const v1::ConvRequest& request = sent.at(response.id());
    const int i = std::stoi(response.id().substr(1));
    if (i % 7 == 3) {
      EXPECT_EQ(response.error().code(), grpc::StatusCode::INVALID_ARGUMENT);
      EXPECT_THAT(response.error().message(), HasSubstr("(field: input.data)"));
    } else {
      EXPECT_FALSE(response.has_error()) << response.error().message();
      EXPECT_EQ(response.output().data(), ComputeInProcess(request).data());
    }
  }
  EXPECT_EQ(replies, 20);
  EXPECT_TRUE(stream->Finish().ok());
}

grpc::Status Register(v1::ConvService::Stub* stub, const v1::Tensor& filter, std::string* id) {
  grpc::ClientContext context;
  v1::RegisterFilterRequest request;
  *request.mutable_filter() = filter;
  v1::RegisterFilterResponse response;
  grpc::Status status = stub->RegisterFilter(&context, request, &response);
  *id = response.filter_id();
  return status;
}

TEST_F(ServiceTest, RegisteredFiltersAreContentAddressed) {
  const v1::ConvRequest inline_request = ValidConv2D();
  std::string id, same_id, other_id;
  ASSERT_TRUE(Register(stub_.get(), inline_request.filter().tensor(), &id).ok());
  EXPECT_THAT(id, ::testing::MatchesRegex("[0-9a-f]{64}"));
  ASSERT_TRUE(Register(stub_.get(), inline_request.filter().tensor(), &same_id).ok());
  EXPECT_EQ(same_id, id);
  v1::Tensor other = inline_request.filter().tensor();
  other.set_shape(0, 1);
  other.set_shape(1, 4);  // same bytes, another shape: another filter
  ASSERT_TRUE(Register(stub_.get(), other, &other_id).ok());
  EXPECT_NE(other_id, id);

  v1::ConvRequest by_id = inline_request;
  by_id.mutable_filter()->set_filter_id(id);
  v1::ConvResponse inline_response, id_response;
  ASSERT_TRUE(Call(inline_request, &inline_response).ok());
  ASSERT_TRUE(Call(by_id, &id_response).ok());
  EXPECT_EQ(id_response.output().data(), inline_response.output().data());
}

TEST_F(ServiceTest, RegisterFilterValidatesAndRespectsTheBudget) {
  std::string id;
  v1::Tensor bad = ValidConv2D().filter().tensor();
  bad.mutable_data()->pop_back();
  grpc::Status status = Register(stub_.get(), bad, &id);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("(field: filter.data)"));

  // Room for the first filter, not for a second one.
  const v1::Tensor first = ValidConv2D().filter().tensor();
  const v1::Tensor second = MakeTensor(DataType::kFloat32, {2, 2, 1, 1}, {1, 2, 3, 4});
  ServerConfig config = ReferenceConfig();
  config.filter_store_bytes = FilterStore::Charge(first) + FilterStore::Charge(second) - 1;
  Start(config);
  EXPECT_TRUE(Register(stub_.get(), first, &id).ok());
  EXPECT_EQ(Register(stub_.get(), second, &id).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

// Found by fuzz_register_filter: the store counted only a filter's data, so
// filters without elements (any shape with a 0) and long shapes were stored
// for free, and registering distinct ones grew the server's memory without
// bound. Every entry now counts its data, its shape and kEntryBytes.
TEST(FilterStoreBudget, EmptyFiltersAndLongShapesCountAgainstTheBudget) {
  constexpr int64_t kBudget = 4096;
  FilterStore store(kBudget);
  int registered = 0;
  for (int64_t i = 1; i <= 1000; ++i) {
    v1::Tensor empty;
    empty.set_dtype(v1::DATA_TYPE_FLOAT32);
    empty.add_shape(0);
    empty.add_shape(i);  // distinct tensors, no data
    absl::StatusOr<std::string> id = store.Register(empty);
    if (!id.ok()) {
      EXPECT_EQ(id.status().code(), absl::StatusCode::kResourceExhausted) << id.status();
      break;
    }
    ++registered;
  }
  EXPECT_EQ(registered, kBudget / (2 * 8 + FilterStore::kEntryBytes));
  EXPECT_LE(store.bytes(), kBudget);

  // Four data bytes under a shape of 1,000 ones: the shape is what costs.
  FilterStore other(kBudget);
  v1::Tensor long_shape;
  long_shape.set_dtype(v1::DATA_TYPE_FLOAT32);
  for (int i = 0; i < 1000; ++i) long_shape.add_shape(1);
  long_shape.set_data(std::string(4, '\0'));
  EXPECT_EQ(FilterStore::Charge(long_shape), 4 + 8000 + FilterStore::kEntryBytes);
  EXPECT_EQ(other.Register(long_shape).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(other.entries(), 0);
}

// The default backend through the service: every op, compared with the
// reference within float32 rounding.
class OneDnnServiceTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServerConfig config;
    config.workers = 2;
    config.cuda_devices = "none";
    Start(config);
  }
};

TEST_F(OneDnnServiceTest, EveryOpMatchesTheReferenceWithinRounding) {
  for (const OpCase& c : AllOps()) {
    SCOPED_TRACE(c.name);
    const v1::ConvRequest request = MakeRequest(c, DataType::kFloat32, rng_);
    v1::ConvResponse response;
    grpc::Status status = Call(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.timing().backend(), "onednn");
    const std::vector<float> got = AsFloats(response.output());
    const std::vector<float> expected = AsFloats(ComputeInProcess(request));
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], expected[i], 1e-5 * (1 + std::abs(expected[i]))) << i;
    }
  }
}

TEST_F(OneDnnServiceTest, Float64AndInt32RunOnTheReference) {
  for (DataType dtype : {DataType::kFloat64, DataType::kInt32}) {
    v1::ConvResponse response;
    const v1::ConvRequest request = MakeRequest(AllOps()[2], dtype, rng_);
    ASSERT_TRUE(Call(request, &response).ok());
    EXPECT_EQ(response.timing().backend(), "reference");
    EXPECT_EQ(response.output().data(), ComputeInProcess(request).data());
  }
}

TEST_F(OneDnnServiceTest, StridesAndDilationsOneDnnCannotTakeRunOnTheReference) {
  // TensorFlow computes these; oneDNN refuses to build primitives for them.
  for (const auto& [stride, dilation] : std::vector<std::pair<int64_t, int64_t>>{
           {3'000'000'000, 1}, {int64_t{1} << 62, 1}, {1, 100'000'000}, {1, 2'147'483'647}}) {
    SCOPED_TRACE(absl::StrCat("stride ", stride, " dilation ", dilation));
    v1::ConvRequest request;
    v1::Conv2D* conv = request.mutable_conv2d();
    conv->add_strides(stride);
    conv->add_dilations(dilation);
    conv->set_padding(v1::PADDING_SAME);
    *request.mutable_input() = RandomTensor(DataType::kFloat32, {1, 5, 5, 2}, rng_);
    *request.mutable_filter()->mutable_tensor() =
        RandomTensor(DataType::kFloat32, {3, 3, 2, 3}, rng_);
    v1::ConvResponse response;
    grpc::Status status = Call(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.timing().backend(), "reference");
    EXPECT_EQ(response.output().data(), ComputeInProcess(request).data());
  }
}

TEST_F(OneDnnServiceTest, WithoutAFallbackPoolWhatOneDnnCannotComputeIsUnimplemented) {
  ServerConfig config;
  config.workers = 2;
  config.fallback_workers = 0;
  Start(config);
  v1::ConvResponse response;
  grpc::Status status = Call(MakeRequest(AllOps()[2], DataType::kFloat64, rng_), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_THAT(status.error_message(), HasSubstr("double"));
  EXPECT_THAT(status.error_message(), HasSubstr("pools: onednn"));
  // The server carries on with what it computes.
  ASSERT_TRUE(Call(MakeRequest(AllOps()[2], DataType::kFloat32, rng_), &response).ok());
  EXPECT_EQ(response.timing().backend(), "onednn");

  grpc::ClientContext context;
  v1::ServerInfo info;
  ASSERT_TRUE(stub_->GetServerInfo(&context, v1::GetServerInfoRequest(), &info).ok());
  ASSERT_EQ(info.backends_size(), 1);
  EXPECT_EQ(info.backends(0).name(), "onednn");
  EXPECT_EQ(info.limits().workers(), 2);
}

// The reply says which arithmetic ran: float32 unless the request opts in
// and the CPU multiplies bfloat16 (then "bfloat16"); a server that forbids
// the opt-in computes float32 and says so.
TEST_F(OneDnnServiceTest, TimingSaysWhichPrecisionRan) {
  v1::ConvRequest request = MakeRequest(AllOps()[2], DataType::kFloat32, rng_);
  v1::ConvResponse strict, reduced;
  ASSERT_TRUE(Call(request, &strict).ok());
  EXPECT_EQ(strict.timing().precision(), "float32");
  request.set_allow_reduced_precision(true);
  ASSERT_TRUE(Call(request, &reduced).ok());
  const std::string isa = OneDnnBackend::Isa();
  const bool bf16_hardware = isa == "avx512_core_bf16" || isa == "avx512_core_amx";
  EXPECT_EQ(reduced.timing().precision(), bf16_hardware ? "bfloat16" : "float32") << isa;

  ServerConfig config;
  config.cuda_devices = "none";
  config.allow_reduced_precision = false;
  Start(config);
  v1::ConvResponse forbidden;
  ASSERT_TRUE(Call(request, &forbidden).ok());
  EXPECT_EQ(forbidden.timing().precision(), "float32");
  EXPECT_EQ(forbidden.output().data(), strict.output().data());
}

TEST_F(OneDnnServiceTest, EmptyResultsWithHugeDimensionsAnswerAtOnce) {
  for (const auto& [request, shape] : EmptyResultsWithHugeDimensions()) {
    v1::ConvResponse response;
    const grpc::Status status = Call(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_THAT(response.output().shape(), ::testing::ElementsAreArray(shape));
    EXPECT_EQ(response.timing().backend(), "reference");
  }
}

TEST_F(OneDnnServiceTest, ServerInfoListsOneDnnFirst) {
  grpc::ClientContext context;
  v1::ServerInfo info;
  ASSERT_TRUE(stub_->GetServerInfo(&context, v1::GetServerInfoRequest(), &info).ok());
  ASSERT_EQ(info.backends_size(), 2);
  EXPECT_EQ(info.backends(0).name(), "onednn");
  EXPECT_THAT(info.backends(0).version(), StartsWith("2."));
  EXPECT_THAT(
      info.backends(0).dtypes(),
      ::testing::ElementsAre(v1::DATA_TYPE_FLOAT32, v1::DATA_TYPE_FLOAT16, v1::DATA_TYPE_BFLOAT16));
  EXPECT_EQ(info.backends(1).name(), "reference");
}

}  // namespace
}  // namespace convserve::server
