// The C++ client library against an in-process server: every op method, its
// TF-style arguments, registered filters, the fused epilogue, errors and
// streaming.
#include "client/conv_client.h"

#include <numeric>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"

namespace convserve::client {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

std::vector<float> Iota(int64_t n, float start = 1) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

class ConvClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerConfig config;
    config.address = "127.0.0.1:0";
    config.backend = "reference";  // exact sums for the literal expectations
    config.cuda_devices = "none";
    auto server = server::StartServer(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ClientOptions options;
    options.timeout = std::chrono::seconds(60);
    client_ = std::make_unique<ConvClient>(absl::StrCat("127.0.0.1:", server_->port()), options);
  }

  // 1x3x3x1 of 1..9 and a 2x2x1x1 filter of ones.
  const Tensor x_ = Tensor::Of<float>({1, 3, 3, 1}, Iota(9));
  const Tensor ones_ = Tensor::Of<float>({2, 2, 1, 1}, std::vector<float>(4, 1));
  std::unique_ptr<server::RunningServer> server_;
  std::unique_ptr<ConvClient> client_;
};

TEST_F(ConvClientTest, Conv2DMirrorsTensorFlowsArguments) {
  absl::StatusOr<Tensor> valid = client_->Conv2D(x_, ones_, {1, 1, 1, 1}, "VALID");
  ASSERT_TRUE(valid.ok()) << valid.status();
  EXPECT_THAT(valid->shape, ElementsAre(1, 2, 2, 1));
  EXPECT_THAT(valid->Values<float>(), ElementsAre(12, 16, 24, 28));

  // The README's example: 5x5 of 1..25, 3x3 ones, stride 2, SAME.
  const Tensor x5 = Tensor::Of<float>({1, 5, 5, 1}, Iota(25));
  const Tensor ones3 = Tensor::Of<float>({3, 3, 1, 1}, std::vector<float>(9, 1));
  absl::StatusOr<Tensor> same = client_->Conv2D(x5, ones3, {2}, "SAME");
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_THAT(same->Values<float>(), ElementsAre(16, 33, 28, 69, 117, 87, 76, 123, 88));

  // Explicit padding pairs in NHWC order: one row of zeros on top only.
  absl::StatusOr<Tensor> padded = client_->Conv2D(
      x_, ones_, {1}, std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {1, 0}, {0, 0}, {0, 0}});
  ASSERT_TRUE(padded.ok()) << padded.status();
  EXPECT_THAT(padded->shape, ElementsAre(1, 3, 2, 1));
  EXPECT_THAT(padded->Values<float>(), ElementsAre(3, 5, 12, 16, 24, 28));

  // NCHW with a batch-and-channel-first strides list.
  absl::StatusOr<Tensor> nchw = client_->Conv2D(Tensor::Of<float>({1, 1, 3, 3}, Iota(9)), ones_,
                                                {1, 1, 1, 1}, "VALID", "NCHW");
  ASSERT_TRUE(nchw.ok()) << nchw.status();
  EXPECT_THAT(nchw->shape, ElementsAre(1, 1, 2, 2));
  EXPECT_THAT(nchw->Values<float>(), ElementsAre(12, 16, 24, 28));
}

TEST_F(ConvClientTest, EveryOtherOp) {
  // conv1d: [1, 4, 1] 1..4 with a [2, 1, 1] filter of ones, VALID: 3, 5, 7.
  auto c1 = client_->Conv1D(Tensor::Of<float>({1, 4, 1}, Iota(4)),
                            Tensor::Of<float>({2, 1, 1}, {1, 1}), {1}, "VALID");
  ASSERT_TRUE(c1.ok()) << c1.status();
  EXPECT_THAT(c1->Values<float>(), ElementsAre(3, 5, 7));

  // convolution picks 1-D from the filter's rank.
  auto conv = client_->Convolution(Tensor::Of<float>({1, 4, 1}, Iota(4)),
                                   Tensor::Of<float>({2, 1, 1}, {1, -1}));
  ASSERT_TRUE(conv.ok()) << conv.status();
  EXPECT_THAT(conv->Values<float>(), ElementsAre(-1, -1, -1));

  // conv3d: 2x2x2 of 1..8, a 2x2x2 filter of ones: the sum, 36.
  auto c3 =
      client_->Conv3D(Tensor::Of<float>({1, 2, 2, 2, 1}, Iota(8)),
                      Tensor::Of<float>({2, 2, 2, 1, 1}, std::vector<float>(8, 1)), {1}, "VALID");
  ASSERT_TRUE(c3.ok()) << c3.status();
  EXPECT_THAT(c3->Values<float>(), ElementsAre(36));

  // depthwise with multiplier 2: channel k*2+q = input k times filter q.
  auto dw =
      client_->DepthwiseConv2D(Tensor::Of<float>({1, 1, 1, 2}, {3, 5}),
                               Tensor::Of<float>({1, 1, 2, 2}, {1, 10, 100, 1000}), {1}, "VALID");
  ASSERT_TRUE(dw.ok()) << dw.status();
  EXPECT_THAT(dw->Values<float>(), ElementsAre(3, 30, 500, 5000));

  // separable: the depthwise result above, then summed by a 1x1 filter of ones.
  auto sep = client_->SeparableConv2D(Tensor::Of<float>({1, 1, 1, 2}, {3, 5}),
                                      Tensor::Of<float>({1, 1, 2, 2}, {1, 10, 100, 1000}),
                                      Tensor::Of<float>({1, 1, 4, 1}, {1, 1, 1, 1}), {1}, "VALID");
  ASSERT_TRUE(sep.ok()) << sep.status();
  EXPECT_THAT(sep->Values<float>(), ElementsAre(5533));

  // atrous rate 2 on 3x3: the four corners under a 2x2 filter of ones.
  auto atrous = client_->AtrousConv2D(x_, ones_, 2, "VALID");
  ASSERT_TRUE(atrous.ok()) << atrous.status();
  EXPECT_THAT(atrous->Values<float>(), ElementsAre(1 + 3 + 7 + 9));

  // conv2d_transpose: stride 2 spreads each input over a 2x2 block.
  auto t2 = client_->Conv2DTranspose(Tensor::Of<float>({1, 1, 2, 1}, {1, 2}), ones_, {1, 2, 4, 1},
                                     {2}, "VALID");
  ASSERT_TRUE(t2.ok()) << t2.status();
  EXPECT_THAT(t2->Values<float>(), ElementsAre(1, 1, 2, 2, 1, 1, 2, 2));

  // TF 2's forms: output_shape (H, W) and explicit pads, here 1 before the
  // width. dy[j] lands on x[2j + k - 1]: (1 at k = 1; 2 at k = 0, 1), per row.
  auto t2e = client_->Conv2DTranspose(
      Tensor::Of<float>({1, 1, 2, 1}, {1, 2}), ones_, {2, 3}, {2},
      PaddingArg(std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {0, 0}, {1, 0}, {0, 0}}));
  ASSERT_TRUE(t2e.ok()) << t2e.status();
  EXPECT_THAT(t2e->shape, ElementsAre(1, 2, 3, 1));
  EXPECT_THAT(t2e->Values<float>(), ElementsAre(1, 2, 2, 1, 2, 2));

  auto t3 = client_->Conv3DTranspose(Tensor::Of<float>({1, 1, 1, 1, 1}, {2}),
                                     Tensor::Of<float>({1, 1, 2, 1, 1}, {1, 3}), {1, 1, 1, 2, 1},
                                     {1}, "VALID");
  ASSERT_TRUE(t3.ok()) << t3.status();
  EXPECT_THAT(t3->Values<float>(), ElementsAre(2, 6));

  auto t1 = client_->ConvTranspose(Tensor::Of<float>({1, 2, 1}, {1, 2}),
                                   Tensor::Of<float>({2, 1, 1}, {1, 10}), {1, 3, 1}, {1}, "VALID");
  ASSERT_TRUE(t1.ok()) << t1.status();
  EXPECT_THAT(t1->Values<float>(), ElementsAre(1, 12, 20));

  auto t1d = client_->Conv1DTranspose(Tensor::Of<float>({1, 1, 2}, {1, 2}),
                                      Tensor::Of<float>({2, 1, 1}, {1, 10}), {1, 1, 3}, {1},
                                      "VALID", "NCW");
  ASSERT_TRUE(t1d.ok()) << t1d.status();
  EXPECT_THAT(t1d->Values<float>(), ElementsAre(1, 12, 20));
}

TEST_F(ConvClientTest, RegisteredFiltersAndTheEpilogue) {
  absl::StatusOr<std::string> id = client_->RegisterFilter(ones_);
  ASSERT_TRUE(id.ok()) << id.status();
  Epilogue epilogue{Tensor::Of<float>({1}, {-20}), v1::ACTIVATION_RELU};
  auto out = client_->Conv2D(x_, *id, {1}, "VALID", "NHWC", {}, epilogue);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(out->Values<float>(), ElementsAre(0, 0, 4, 8));

  auto int32 = client_->Conv2D(Tensor::Of<int32_t>({1, 3, 3, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9}),
                               Tensor::Of<int32_t>({2, 2, 1, 1}, {1, 1, 1, 1}), {1}, "VALID");
  ASSERT_TRUE(int32.ok()) << int32.status();
  EXPECT_THAT(int32->Values<int32_t>(), ElementsAre(12, 16, 24, 28));
}

TEST_F(ConvClientTest, ErrorsCarryTheStatusAndTensorFlowsMessage) {
  auto bad = client_->Conv2D(x_, ones_, {2, 1, 1, 1}, "VALID");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("does not yet support strides in the batch and depth dimensions"));
  auto unknown = client_->Conv2D(x_, std::string("no-such-id"), {1}, "VALID");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ConvClientTest, ConvManyReturnsRepliesInRequestOrder) {
  std::vector<v1::ConvRequest> requests;
  for (int i = 0; i < 40; ++i) {
    v1::ConvRequest request;
    request.mutable_conv2d()->set_padding(i % 10 == 9 ? v1::PADDING_UNSPECIFIED
                                                      : v1::PADDING_VALID);
    const Tensor input = Tensor::Of<float>({1, 3, 3, 1}, Iota(9, static_cast<float>(i)));
    request.mutable_input()->set_dtype(input.dtype);
    request.mutable_input()->mutable_shape()->Assign(input.shape.begin(), input.shape.end());
    request.mutable_input()->set_data(input.data);
    request.mutable_filter()->mutable_tensor()->set_dtype(ones_.dtype);
    request.mutable_filter()->mutable_tensor()->mutable_shape()->Assign(ones_.shape.begin(),
                                                                        ones_.shape.end());
    request.mutable_filter()->mutable_tensor()->set_data(ones_.data);
    requests.push_back(std::move(request));
  }
  auto replies = client_->ConvMany(requests, 4);
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 40u);
  for (int i = 0; i < 40; ++i) {
    const v1::ConvResponse& reply = (*replies)[i];
    if (i % 10 == 9) {
      EXPECT_EQ(reply.error().code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
      continue;
    }
    const Tensor out{reply.output().dtype(), {}, reply.output().data()};
    // 2x2 windows of i..i+8 laid out 3x3: 4i + 8, 4i + 12, 4i + 20, 4i + 24.
    EXPECT_THAT(out.Values<float>(),
                ElementsAreArray({4.0f * i + 8, 4.0f * i + 12, 4.0f * i + 20, 4.0f * i + 24}))
        << i;
  }
}

TEST_F(ConvClientTest, ServerInfoAndAnUnreachableServer) {
  auto info = client_->GetServerInfo();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->ops_size(), 11);

  ClientOptions options;
  options.timeout = std::chrono::seconds(5);
  ConvClient nobody("127.0.0.1:1", options);
  EXPECT_EQ(nobody.GetServerInfo().status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace convserve::client
