// The client library's request builder (op name + TF arguments + tensors ->
// ConvRequest) and status-code names, without a server: every op's message,
// both forms of explicit padding, filters by id, the epilogue, and what it
// refuses.
#include "client/request_builder.h"

#include <string>
#include <vector>

#include "client/status_code_name.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/support/status_code_enum.h"
#include "gtest/gtest.h"

namespace convserve::client {
namespace {

using ::testing::HasSubstr;

// The request written as `text` (text format).
v1::ConvRequest Expected(const std::string& text) {
  v1::ConvRequest request;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &request)) << text;
  return request;
}

MATCHER_P(EqualsProto, expected, "") {
  std::string diff;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  if (differencer.Compare(expected, arg)) return true;
  *result_listener << diff;
  return false;
}

class RequestBuilderTest : public ::testing::Test {
 protected:
  // A [1, 1, 1, 1] input of 2.0f and a [1, 1, 1, 1] filter of 1.0f.
  RequestTensors Tensors() const {
    return {.input = Tensor::Of<float>({1, 1, 1, 1}, {2.0f}),
            .filter = Tensor::Of<float>({1, 1, 1, 1}, {1.0f})};
  }
  // The text of Tensors() in a request.
  static constexpr char kOperands[] = R"pb(
    input {
      dtype: DATA_TYPE_FLOAT32
      shape: [ 1, 1, 1, 1 ]
      data: "\000\000\000@"
    }
    filter {
      tensor {
        dtype: DATA_TYPE_FLOAT32
        shape: [ 1, 1, 1, 1 ]
        data: "\000\000\200?"
      }
    }
  )pb";
};

TEST_F(RequestBuilderTest, Conv2DTakesTensorFlowsArguments) {
  absl::StatusOr<v1::ConvRequest> request = BuildRequest(
      "conv2d",
      {.strides = {1, 2, 2, 1}, .padding = "SAME", .data_format = "NHWC", .dilations = {1}},
      Tensors());
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(*request, EqualsProto(Expected(std::string(kOperands) + R"pb(
    conv2d {
      strides: [ 1, 2, 2, 1 ]
      padding: PADDING_SAME
      data_format: "NHWC"
      dilations: 1
    }
  )pb")));
}

TEST_F(RequestBuilderTest, ReducedPrecisionIsAnOptInOfTheRequest) {
  absl::StatusOr<v1::ConvRequest> plain = BuildRequest("conv2d", {.padding = "VALID"}, Tensors());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->allow_reduced_precision());
  absl::StatusOr<v1::ConvRequest> reduced = BuildRequest(
      "conv2d", {.padding = "VALID"}, Tensors(), {.allow_reduced_precision = true, .backend = ""});
  ASSERT_TRUE(reduced.ok()) << reduced.status();
  EXPECT_THAT(*reduced, EqualsProto(Expected(std::string(kOperands) + R"pb(
    conv2d { padding: PADDING_VALID }
    allow_reduced_precision: true
  )pb")));
}

TEST_F(RequestBuilderTest, BackendIsAnOptionOfTheRequest) {
  absl::StatusOr<v1::ConvRequest> request =
      BuildRequest("conv2d", {.padding = "VALID"}, Tensors(),
                   {.allow_reduced_precision = false, .backend = "cuda"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(*request, EqualsProto(Expected(std::string(kOperands) + R"pb(
    conv2d { padding: PADDING_VALID }
    backend: "cuda"
  )pb")));
}

TEST_F(RequestBuilderTest, ExplicitPaddingAsPairsOrAsTheRawOpsList) {
  absl::StatusOr<v1::ConvRequest> pairs = BuildRequest(
      "depthwise_conv2d",
      {.padding = std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {1, 2}, {3, 4}, {0, 0}}},
      Tensors());
  ASSERT_TRUE(pairs.ok()) << pairs.status();
  EXPECT_THAT(*pairs, EqualsProto(Expected(std::string(kOperands) + R"pb(
    depthwise_conv2d {
      padding: PADDING_EXPLICIT
      explicit_paddings: [ 0, 0, 1, 2, 3, 4, 0, 0 ]
    }
  )pb")));

  absl::StatusOr<v1::ConvRequest> raw = BuildRequest(
      "conv2d", {.padding = "EXPLICIT", .explicit_paddings = {0, 0, 1, 2, 3, 4, 0, 0}}, Tensors());
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(*raw, EqualsProto(Expected(std::string(kOperands) + R"pb(
    conv2d {
      padding: PADDING_EXPLICIT
      explicit_paddings: [ 0, 0, 1, 2, 3, 4, 0, 0 ]
    }
  )pb")));
}

TEST_F(RequestBuilderTest, EveryOtherOp) {
  struct Case {
    std::string op;
    OpArgs args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"convolution", {.padding = "VALID"}, "convolution { padding: PADDING_VALID }"},
      {"conv1d",
       {.strides = {2}, .padding = "SAME", .data_format = "NWC"},
       R"pb(conv1d { stride: 2 padding: PADDING_SAME data_format: "NWC" })pb"},
      {"conv3d",
       {.strides = {1}, .padding = "VALID"},
       "conv3d { strides: 1 padding: PADDING_VALID }"},
      {"atrous_conv2d",
       {.padding = "SAME", .rate = 2},
       "atrous_conv2d { rate: 2 padding: PADDING_SAME }"},
      {"conv2d_transpose",
       {.strides = {2}, .padding = "SAME", .output_shape = {1, 2, 2, 1}},
       "conv2d_transpose { output_shape: [ 1, 2, 2, 1 ] strides: 2 padding: PADDING_SAME }"},
      // TF 2's explicit padding pairs and spatial-only output_shape.
      {"conv2d_transpose",
       {.padding = std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {1, 2}, {0, 1}, {0, 0}},
        .output_shape = {2, 2}},
       "conv2d_transpose { output_shape: [ 2, 2 ] padding: PADDING_EXPLICIT "
       "explicit_paddings: [ 0, 0, 1, 2, 0, 1, 0, 0 ] }"},
      {"conv_transpose",
       {.padding = "EXPLICIT",
        .explicit_paddings = {0, 0, 1, 1, 0, 0, 0, 0},
        .output_shape = {1, 2, 2, 1}},
       "conv_transpose { output_shape: [ 1, 2, 2, 1 ] padding: PADDING_EXPLICIT "
       "explicit_paddings: [ 0, 0, 1, 1, 0, 0, 0, 0 ] }"},
      {"conv1d_transpose",
       {.strides = {2}, .padding = "SAME", .data_format = "NCW", .output_shape = {1, 1, 4}},
       R"pb(conv1d_transpose {
              output_shape: [ 1, 1, 4 ]
              strides: 2
              padding: PADDING_SAME
              data_format: "NCW"
            })pb"},
      {"conv3d_transpose",
       {.padding = "VALID", .output_shape = {1, 1, 1, 1, 1}},
       "conv3d_transpose { output_shape: [ 1, 1, 1, 1, 1 ] padding: PADDING_VALID }"},
      {"conv_transpose",
       {.padding = "VALID", .dilations = {1}, .output_shape = {1, 1, 1, 1}},
       "conv_transpose { output_shape: [ 1, 1, 1, 1 ] padding: PADDING_VALID dilations: 1 }"},
      // An unknown padding name is left for the server to refuse.
      {"conv2d", {.padding = "same"}, "conv2d {}"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<v1::ConvRequest> request = BuildRequest(c.op, c.args, Tensors());
    ASSERT_TRUE(request.ok()) << c.op << ": " << request.status();
    EXPECT_THAT(*request, EqualsProto(Expected(std::string(kOperands) + c.expected))) << c.op;
  }
}

TEST_F(RequestBuilderTest, SeparableFiltersByIdAndTheEpilogue) {
  RequestTensors tensors = Tensors();
  tensors.filter = std::string("depthwise-id");
  tensors.pointwise_filter = Tensor::Of<float>({1, 1, 1, 1}, {3.0f});
  tensors.epilogue = {.bias = Tensor::Of<float>({1}, {0.5f}), .activation = v1::ACTIVATION_RELU};
  absl::StatusOr<v1::ConvRequest> request =
      BuildRequest("separable_conv2d", {.padding = "SAME"}, std::move(tensors));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(*request, EqualsProto(Expected(R"pb(
    separable_conv2d { padding: PADDING_SAME }
    input {
      dtype: DATA_TYPE_FLOAT32
      shape: [ 1, 1, 1, 1 ]
      data: "\000\000\000@"
    }
    filter { filter_id: "depthwise-id" }
    pointwise_filter {
      tensor {
        dtype: DATA_TYPE_FLOAT32
        shape: [ 1, 1, 1, 1 ]
        data: "\000\000@@"
      }
    }
    bias { tensor { dtype: DATA_TYPE_FLOAT32 shape: 1 data: "\000\000\000?" } }
    activation: ACTIVATION_RELU
  )pb")));
}

TEST_F(RequestBuilderTest, RefusesWhatTheWireCannotSay) {
  const std::vector<std::pair<int64_t, int64_t>> pairs = {{0, 0}, {1, 1}, {1, 1}, {0, 0}};
  struct Case {
    std::string op;
    OpArgs args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"conv4d", {}, "unknown op \"conv4d\""},
      {"conv1d", {.output_shape = {1, 2, 1}}, "conv1d takes no output_shape"},
      {"atrous_conv2d", {.strides = {1}}, "atrous_conv2d takes no strides"},
      {"atrous_conv2d", {.data_format = "NHWC"}, "atrous_conv2d takes no data_format"},
      {"conv2d", {.rate = 2}, "conv2d takes no rate"},
      {"conv3d", {.padding = pairs}, "conv3d takes no explicit padding pairs"},
      {"conv3d_transpose", {.explicit_paddings = {0, 0}}, "takes no explicit_paddings"},
      {"conv1d_transpose", {.padding = pairs}, "conv1d_transpose takes no explicit padding pairs"},
      {"conv2d", {.padding = pairs, .explicit_paddings = {0, 0}}, "both as pairs"},
      {"separable_conv2d", {}, "separable_conv2d needs a pointwise filter"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<v1::ConvRequest> request = BuildRequest(c.op, c.args, Tensors());
    EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument) << c.op;
    EXPECT_THAT(request.status().message(), HasSubstr(c.message)) << c.op;
  }
  RequestTensors tensors = Tensors();
  tensors.pointwise_filter = std::string("id");
  EXPECT_THAT(BuildRequest("conv2d", {}, std::move(tensors)).status().message(),
              HasSubstr("conv2d takes no pointwise filter"));
}

TEST(StatusCodeNameTest, NamesEveryGrpcCode) {
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::OK), "OK");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::INVALID_ARGUMENT), "INVALID_ARGUMENT");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::UNAVAILABLE), "UNAVAILABLE");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::UNAUTHENTICATED), "UNAUTHENTICATED");
  EXPECT_EQ(StatusCodeName(-1), "UNKNOWN_CODE");
  EXPECT_EQ(StatusCodeName(17), "UNKNOWN_CODE");
}

}  // namespace
}  // namespace convserve::client
