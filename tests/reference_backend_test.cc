// The reference backend on small hand-computed cases for every op, and on the
// identities that tie the ops together (layouts, groups, adjointness of the
// transposed convolution, dilation as zero insertion, batch handling) and the
// fused bias + activation epilogue.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace convserve {
namespace {

using test::Elements;
using test::Iota;
using test::Offset;
using test::RandomGridTensor;
using test::RandomNormalTensor;
using test::RunOp;
using test::Tensor;
using test::ToChannelsFirst;
using test::TryRun;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

Conv2DParams Conv2D(Padding padding, std::vector<int64_t> strides = {},
                    std::vector<int64_t> dilations = {}, std::string data_format = "") {
  Conv2DParams p;
  p.padding = padding;
  p.strides = std::move(strides);
  p.dilations = std::move(dilations);
  p.data_format = std::move(data_format);
  return p;
}

Tensor<float> Ones(Shape shape) {
  const int64_t n = Elements(shape);
  return {std::move(shape), std::vector<float>(static_cast<size_t>(n), 1.0f)};
}

// ---------------------------------------------------------------------------
// Hand-computed values, op by op.

TEST(ReferenceConv2D, ValidTwoByTwoOnesSumsWindows) {
  // 1 2 3
  // 4 5 6   (*) [[1, 1], [1, 1]]  ->  12 16
  // 7 8 9                             24 28
  const Tensor<float> y =
      RunOp(Conv2D(Padding::kValid), Iota<float>({1, 3, 3, 1}), Ones({2, 2, 1, 1}));
  EXPECT_EQ(y.shape, (Shape{1, 2, 2, 1}));
  EXPECT_THAT(y.values, ElementsAre(12, 16, 24, 28));
}

TEST(ReferenceConv2D, SameTwoByTwoPadsOnlyBottomAndRight) {
  // pad_total = 1 in each dimension: 0 before, 1 after.
  const Tensor<float> y =
      RunOp(Conv2D(Padding::kSame), Iota<float>({1, 3, 3, 1}), Ones({2, 2, 1, 1}));
  EXPECT_EQ(y.shape, (Shape{1, 3, 3, 1}));
  EXPECT_THAT(y.values, ElementsAre(12, 16, 9, 24, 28, 15, 15, 17, 9));
}

TEST(ReferenceConv2D, SameCornersSumFourTaps) {
  const Tensor<float> y =
      RunOp(Conv2D(Padding::kSame), Iota<float>({1, 3, 3, 1}), Ones({3, 3, 1, 1}));
  EXPECT_EQ(y.shape, (Shape{1, 3, 3, 1}));
  // Corners: 4 taps (1+2+4+5, ...), edges: 6 taps, centre: all 9.
  EXPECT_THAT(y.values, ElementsAre(12, 21, 16, 27, 45, 33, 24, 39, 28));
}

TEST(ReferenceConv2D, StrideTwoWithWeightedFilter) {
  // x[r][c] = 4r + c + 1; w = [[1, 2], [3, 4]]: y = 10 * x[2i][2j] + 2 + 12 + 20.
  const Tensor<float> y = RunOp(Conv2D(Padding::kValid, {1, 2, 2, 1}), Iota<float>({1, 4, 4, 1}),
                                Tensor<float>{{2, 2, 1, 1}, {1, 2, 3, 4}});
  EXPECT_EQ(y.shape, (Shape{1, 2, 2, 1}));
  EXPECT_THAT(y.values, ElementsAre(44, 64, 124, 144));
}

TEST(ReferenceConv2D, ChannelsMixThroughTheFilterMatrix) {
  // Two pixels of 2 channels, a 1x1 filter [[1, 2, 3], [4, 5, 6]] (in x out).
  const Tensor<float> y = RunOp(Conv2D(Padding::kValid), Tensor<float>{{1, 1, 2, 2}, {1, 2, 3, 4}},
                                Tensor<float>{{1, 1, 2, 3}, {1, 2, 3, 4, 5, 6}});
  EXPECT_EQ(y.shape, (Shape{1, 1, 2, 3}));
  EXPECT_THAT(y.values, ElementsAre(9, 12, 15, 19, 26, 33));
}

TEST(ReferenceConv2D, DilatedFilterSkipsPixels) {
  // 1x5 row 1..5, filter [1, 10] with dilation 2: y[j] = x[j] + 10 x[j + 2].
  const Tensor<float> y = RunOp(Conv2D(Padding::kValid, {}, {1, 1, 2, 1}),
                                Iota<float>({1, 1, 5, 1}), Tensor<float>{{1, 2, 1, 1}, {1, 10}});
  EXPECT_EQ(y.shape, (Shape{1, 1, 3, 1}));
  EXPECT_THAT(y.values, ElementsAre(31, 42, 53));
}

TEST(ReferenceConv2D, ExplicitPaddingIsUsedAsGiven) {
  // Row 1..3 padded 2 before and 1 after: 0 0 1 2 3 0; filter [1, 1, 1].
  Conv2DParams p = Conv2D(Padding::kExplicit);
  p.explicit_paddings = {0, 0, 0, 0, 2, 1, 0, 0};
  const Tensor<float> y = RunOp(p, Iota<float>({1, 1, 3, 1}), Ones({1, 3, 1, 1}));
  EXPECT_EQ(y.shape, (Shape{1, 1, 4, 1}));
  EXPECT_THAT(y.values, ElementsAre(1, 3, 6, 5));
}

TEST(ReferenceConvolution, OneDimensional) {
  ConvolutionParams p;
  p.padding = Padding::kValid;
  const Tensor<float> x = Iota<float>({1, 5, 1});
  const Tensor<float> w{{3, 1, 1}, {1, 2, 3}};
  Tensor<float> y = RunOp(p, x, w);  // x[i] + 2 x[i + 1] + 3 x[i + 2]
  EXPECT_EQ(y.shape, (Shape{1, 3, 1}));
  EXPECT_THAT(y.values, ElementsAre(14, 20, 26));
  p.padding = Padding::kSame;  // one zero on each side
  y = RunOp(p, x, w);
  EXPECT_EQ(y.shape, (Shape{1, 5, 1}));
  EXPECT_THAT(y.values, ElementsAre(8, 14, 20, 26, 14));
}

TEST(ReferenceConvolution, TwoDimensional) {
  ConvolutionParams p;
  p.padding = Padding::kValid;
  const Tensor<float> y = RunOp(p, Iota<float>({1, 3, 3, 1}), Ones({2, 2, 1, 1}));
  EXPECT_EQ(y.shape, (Shape{1, 2, 2, 1}));
  EXPECT_THAT(y.values, ElementsAre(12, 16, 24, 28));
}

TEST(ReferenceConvolution, ThreeDimensional) {
  // x[d][h][w] = 4d + 2h + w + 1 on 2x2x2; a 2x2x2 box of ones.
  ConvolutionParams p;
  p.padding = Padding::kValid;
  const Tensor<float> x = Iota<float>({1, 2, 2, 2, 1});
  Tensor<float> y = RunOp(p, x, Ones({2, 2, 2, 1, 1}));
  EXPECT_EQ(y.shape, (Shape{1, 1, 1, 1, 1}));
  EXPECT_THAT(y.values, ElementsAre(36));
  p.padding = Padding::kSame;  // 0 before, 1 after in each dimension
  y = RunOp(p, x, Ones({2, 2, 2, 1, 1}));
  EXPECT_EQ(y.shape, (Shape{1, 2, 2, 2, 1}));
  EXPECT_THAT(y.values, ElementsAre(36, 20, 22, 12, 26, 14, 15, 8));
}

TEST(ReferenceConv1D, StrideAndChannelsFirst) {
  Conv1DParams p;
  p.padding = Padding::kValid;
  p.stride = {2};
  // Row 1..6, filter [1, 1], stride 2: 1+2, 3+4, 5+6.
  Tensor<float> y = RunOp(p, Iota<float>({1, 6, 1}), Ones({2, 1, 1}));
  EXPECT_EQ(y.shape, (Shape{1, 3, 1}));
  EXPECT_THAT(y.values, ElementsAre(3, 7, 11));

  // NCW, 2 channels [1..4] and [5..8], filter [[1, -1]] per tap (in 2 -> out 1):
  // y[j] = x0[j] + x0[j+1] - x1[j] - x1[j+1] = -8 for every j.
  p.stride = {1};
  p.data_format = "NCW";
  y = RunOp(p, Iota<float>({1, 2, 4}), Tensor<float>{{2, 2, 1}, {1, -1, 1, -1}});
  EXPECT_EQ(y.shape, (Shape{1, 1, 3}));
  EXPECT_THAT(y.values, ElementsAre(-8, -8, -8));
}

TEST(ReferenceConv3D, TwoOutputChannelsAndStride) {
  // 1x2x2x4x1 input 1..16, filter 1x1x2 with out 0 = [1, 1] and out 1 = [1, -1],
  // stride 2 along width: pairs (1,2), (3,4), (5,6), ...
  Conv3DParams p;
  p.padding = Padding::kValid;
  p.strides = {1, 1, 1, 2, 1};
  const Tensor<float> y =
      RunOp(p, Iota<float>({1, 2, 2, 4, 1}), Tensor<float>{{1, 1, 2, 1, 2}, {1, 1, 1, -1}});
  EXPECT_EQ(y.shape, (Shape{1, 2, 2, 2, 2}));
  EXPECT_THAT(y.values, ElementsAre(3, -1, 7, -1, 11, -1, 15, -1, 19, -1, 23, -1, 27, -1, 31, -1));
}

TEST(ReferenceDepthwise, MultiplierTwo) {
  // H=1, W=3, channel 0 = 1 2 3, channel 1 = 10 20 30; 1x2 filters
  // (k=0,q=0) [1, 1], (k=0,q=1) [1, -1], (k=1,q=0) [2, 0], (k=1,q=1) [0, 3].
  DepthwiseConv2DParams p;
  p.padding = Padding::kValid;
  const Tensor<float> x{{1, 1, 3, 2}, {1, 10, 2, 20, 3, 30}};
  const Tensor<float> w{{1, 2, 2, 2}, {1, 1, 2, 0, 1, -1, 0, 3}};
  const Tensor<float> y = RunOp(p, x, w);
  EXPECT_EQ(y.shape, (Shape{1, 1, 2, 4}));  // channel k * 2 + q
  EXPECT_THAT(y.values, ElementsAre(3, -1, 20, 60, 5, -1, 40, 90));
}

TEST(ReferenceSeparable, DepthwiseThenPointwise) {
  // The depthwise step of MultiplierTwo, then 1x1 filters [1, 1, 1, 1] and [1, 0, 0, -1].
  SeparableConv2DParams p;
  p.padding = Padding::kValid;
  const Tensor<float> x{{1, 1, 3, 2}, {1, 10, 2, 20, 3, 30}};
  const Tensor<float> dw{{1, 2, 2, 2}, {1, 1, 2, 0, 1, -1, 0, 3}};
  const Tensor<float> pw{{1, 1, 4, 2}, {1, 1, 1, 0, 1, 0, 1, -1}};
  const Tensor<float> y = RunOp(p, x, dw, {.pointwise = pw});
  EXPECT_EQ(y.shape, (Shape{1, 1, 2, 2}));
  EXPECT_THAT(y.values, ElementsAre(82, -57, 134, -85));
}

TEST(ReferenceSeparable, GroupedPointwise) {
  // Depthwise outputs (3, -1, 20, 60) and (5, -1, 40, 90) as above; a pointwise
  // filter of in-depth 2 makes 2 groups: out 0 reads channels 0-1 with (1, 2),
  // out 1 reads channels 2-3 with (1, 1).
  SeparableConv2DParams p;
  p.padding = Padding::kValid;
  const Tensor<float> x{{1, 1, 3, 2}, {1, 10, 2, 20, 3, 30}};
  const Tensor<float> dw{{1, 2, 2, 2}, {1, 1, 2, 0, 1, -1, 0, 3}};
  const Tensor<float> pw{{1, 1, 2, 2}, {1, 1, 2, 1}};
  const Tensor<float> y = RunOp(p, x, dw, {.pointwise = pw});
  EXPECT_EQ(y.shape, (Shape{1, 1, 2, 2}));
  EXPECT_THAT(y.values, ElementsAre(1, 80, 3, 130));
}

TEST(ReferenceAtrous, RateTwoSamplesEveryOtherPixel) {
  // x[r][c] = 5r + c + 1 on 5x5; 2x2 ones at rate 2:
  // y = x[i][j] + x[i][j+2] + x[i+2][j] + x[i+2][j+2] = 4 x[i][j] + 24.
  AtrousConv2DParams p;
  p.rate = 2;
  p.padding = Padding::kValid;
  const Tensor<float> y = RunOp(p, Iota<float>({1, 5, 5, 1}), Ones({2, 2, 1, 1}));
  EXPECT_EQ(y.shape, (Shape{1, 3, 3, 1}));
  EXPECT_THAT(y.values, ElementsAre(28, 32, 36, 48, 52, 56, 68, 72, 76));
}

TEST(ReferenceConv2DTranspose, StrideTwoPastesScaledFilters) {
  // Each dy value pastes dy * [[1, 2], [3, 4]] into its own 2x2 block.
  ConvTransposeParams p;
  p.rank = 2;
  p.output_shape = {1, 4, 4, 1};
  p.strides = {1, 2, 2, 1};
  p.padding = Padding::kValid;
  const Tensor<float> y = RunOp(p, Tensor<float>{{1, 2, 2, 1}, {1, 2, 3, 4}},
                                Tensor<float>{{2, 2, 1, 1}, {1, 2, 3, 4}});
  EXPECT_EQ(y.shape, (Shape{1, 4, 4, 1}));
  EXPECT_THAT(y.values, ElementsAre(1, 2, 2, 4,  //
                                    3, 4, 6, 8,  //
                                    3, 6, 4, 8,  //
                                    9, 12, 12, 16));
}

TEST(ReferenceConv2DTranspose, StrideOneOverlapsAdd) {
  ConvTransposeParams p;
  p.rank = 2;
  p.output_shape = {1, 3, 3, 1};
  p.padding = Padding::kValid;
  const Tensor<float> y = RunOp(p, Tensor<float>{{1, 2, 2, 1}, {1, 2, 3, 4}}, Ones({2, 2, 1, 1}));
  EXPECT_EQ(y.shape, (Shape{1, 3, 3, 1}));
  EXPECT_THAT(y.values, ElementsAre(1, 3, 2, 4, 10, 6, 3, 7, 4));
}

TEST(ReferenceConv2DTranspose, SameStrideTwo) {
  // Forward SAME, in 4, k 3, s 2: out 2, pad_total 1 -> 0 before, 1 after.
  // So dy[i] reaches x[2i], x[2i+1], x[2i+2] with taps 0, 1, 2 (x[4] is cut).
  ConvTransposeParams p;
  p.rank = 2;
  p.output_shape = {1, 1, 4, 1};
  p.strides = {1, 2};
  p.padding = Padding::kSame;
  const Tensor<float> y =
      RunOp(p, Tensor<float>{{1, 1, 2, 1}, {1, 10}}, Tensor<float>{{1, 3, 1, 1}, {1, 2, 3}});
  EXPECT_EQ(y.shape, (Shape{1, 1, 4, 1}));
  EXPECT_THAT(y.values, ElementsAre(1, 2, 13, 20));
}

TEST(ReferenceConv2DTranspose, ChannelsAreMixedByTheFilter) {
  // One dy pixel with channels (1, 2); filter [1, 1, C_out=3, O'=2].
  ConvTransposeParams p;
  p.rank = 2;
  p.output_shape = {1, 1, 1, 3};
  p.padding = Padding::kValid;
  const Tensor<float> y = RunOp(p, Tensor<float>{{1, 1, 1, 2}, {1, 2}},
                                Tensor<float>{{1, 1, 3, 2}, {1, 10, 2, 20, 3, 30}});
  EXPECT_EQ(y.shape, (Shape{1, 1, 1, 3}));
  EXPECT_THAT(y.values, ElementsAre(21, 42, 63));
}

TEST(ReferenceConv3DTranspose, StrideTwoPastesScaledFilter) {
  // One dy value 2 (batch 2: 2 and -1), filter 2x2x2 with C_out = 2: x = dy * w.
  ConvTransposeParams p;
  p.rank = 3;
  p.output_shape = {2, 2, 2, 2, 2};
  p.strides = {2, 2, 2};
  p.padding = Padding::kValid;
  const Tensor<float> w = Iota<float>({2, 2, 2, 2, 1});
  const Tensor<float> y = RunOp(p, Tensor<float>{{2, 1, 1, 1, 1}, {2, -1}}, w);
  EXPECT_EQ(y.shape, (Shape{2, 2, 2, 2, 2}));
  std::vector<float> expected;
  for (int i = 1; i <= 16; ++i) expected.push_back(2.0f * static_cast<float>(i));
  for (int i = 1; i <= 16; ++i) expected.push_back(-1.0f * static_cast<float>(i));
  EXPECT_THAT(y.values, ElementsAreArray(expected));
}

TEST(ReferenceConvTranspose, OneDimensionalWithTrailingPosition) {
  // dx[2i + k] += dy[i] * w[k] with dy = (1, 2), w = (1, 2, 3).
  ConvTransposeParams p;
  p.output_shape = {1, 5, 1};
  p.strides = {2};
  p.padding = Padding::kValid;
  const Tensor<float> dy{{1, 2, 1}, {1, 2}};
  const Tensor<float> w{{3, 1, 1}, {1, 2, 3}};
  Tensor<float> y = RunOp(p, dy, w);
  EXPECT_EQ(y.shape, (Shape{1, 5, 1}));
  EXPECT_THAT(y.values, ElementsAre(1, 2, 5, 4, 6));
  // output_shape 6 is legal too ((2 - 1) * 2 + 3 + 1): the last position gets nothing.
  p.output_shape = {1, 6, 1};
  y = RunOp(p, dy, w);
  EXPECT_EQ(y.shape, (Shape{1, 6, 1}));
  EXPECT_THAT(y.values, ElementsAre(1, 2, 5, 4, 6, 0));
}

TEST(ReferenceConvTranspose, DilatedOneDimensional) {
  // Dilation 2, stride 1, VALID: forward out = 5 - 4 = 1; dx[2k] = dy[0] * w[k].
  ConvTransposeParams p;
  p.output_shape = {1, 5, 1};
  p.dilations = {2};
  p.padding = Padding::kValid;
  const Tensor<float> y =
      RunOp(p, Tensor<float>{{1, 1, 1}, {3}}, Tensor<float>{{3, 1, 1}, {1, 2, 3}});
  EXPECT_EQ(y.shape, (Shape{1, 5, 1}));
  EXPECT_THAT(y.values, ElementsAre(3, 0, 6, 0, 9));
}

TEST(ReferenceConv2DTranspose, ExplicitPaddingDropsWhatFallsInThePads) {
  // The forward conv2d of x [1, 1, 5, 1] with pads (1, 1) in height, (1, 2)
  // in width, a 1x3 filter w = (1, 2, 3) and strides (1, 2) gives dy of
  // height 1 + 1 + 1 = 3 and width (5 + 1 + 2 - 3 + 2) / 2 = 3. Transposed,
  // dy[r][i] * w[k] lands on x[r - 1][2i + k - 1]; only dy row 1 reaches x:
  //   i = 0: x[0] += 1 * 2, x[1] += 1 * 3          (k = 0 falls in the pad)
  //   i = 1: x[1] += 10 * 1, x[2] += 10 * 2, x[3] += 10 * 3
  //   i = 2: x[3] += 100 * 1, x[4] += 100 * 2     (k = 2 falls in the pad)
  ConvTransposeParams p;
  p.rank = 2;
  p.output_shape = {1, 1, 5, 1};
  p.strides = {1, 2};
  p.padding = Padding::kExplicit;
  p.explicit_paddings = {0, 0, 1, 1, 1, 2, 0, 0};
  const Tensor<float> dy{{1, 3, 3, 1}, {7, 7, 7, 1, 10, 100, 5, 5, 5}};
  const Tensor<float> w{{1, 3, 1, 1}, {1, 2, 3}};
  Tensor<float> y = RunOp(p, dy, w);
  EXPECT_EQ(y.shape, (Shape{1, 1, 5, 1}));
  EXPECT_THAT(y.values, ElementsAre(2, 13, 20, 130, 200));
  // The spatial-only output_shape (H, W) gives the same result.
  p.output_shape = {1, 5};
  y = RunOp(p, dy, w);
  EXPECT_EQ(y.shape, (Shape{1, 1, 5, 1}));
  EXPECT_THAT(y.values, ElementsAre(2, 13, 20, 130, 200));
}

TEST(ReferenceConv1DTranspose, SameStrideTwoInBothLayouts) {
  // Forward SAME of width 6, k 3, s 2: out 3, pad_total (3 - 1) * 2 + 3 - 6
  // = 1 -> 0 before, 1 after. dy[i] * w[k] lands on x[2i + k]:
  //   channel 0, w = (1, 2, 3):  (1, 2, 3 + 10, 20, 30 + 100, 200), 300 cut
  //   channel 1, w = (-1, 0, 1): (-1, 0, 1 - 10, 0, 10 - 100, 0), 100 cut
  ConvTransposeParams p;
  p.rank = 1;
  p.output_shape = {1, 6, 2};
  p.strides = {2};
  p.padding = Padding::kSame;
  const Tensor<float> w{{3, 2, 1}, {1, -1, 2, 0, 3, 1}};
  Tensor<float> y = RunOp(p, Tensor<float>{{1, 3, 1}, {1, 10, 100}}, w);
  EXPECT_EQ(y.shape, (Shape{1, 6, 2}));
  EXPECT_THAT(y.values, ElementsAre(1, -1, 2, 0, 13, -9, 20, 0, 130, -90, 200, 0));
  p.output_shape = {1, 2, 6};
  p.data_format = "NCW";
  y = RunOp(p, Tensor<float>{{1, 1, 3}, {1, 10, 100}}, w);
  EXPECT_EQ(y.shape, (Shape{1, 2, 6}));
  EXPECT_THAT(y.values, ElementsAre(1, 2, 13, 20, 130, 200, -1, 0, -9, 0, -90, 0));
}

TEST(ReferenceConv1DTranspose, WidthOnlyOutputShapeOfOne) {
  // output_shape (1) is read as height 1, width 1. Forward SAME of width 1,
  // k 3, s 2: out 1, pad_total 2 -> 1 before: x[0] = dy[0] * w[1] = 5 * 2.
  ConvTransposeParams p;
  p.rank = 1;
  p.output_shape = {1};
  p.strides = {2};
  p.padding = Padding::kSame;
  const Tensor<float> y =
      RunOp(p, Tensor<float>{{1, 1, 1}, {5}}, Tensor<float>{{3, 1, 1}, {1, 2, 3}});
  EXPECT_EQ(y.shape, (Shape{1, 1, 1}));
  EXPECT_THAT(y.values, ElementsAre(10));
}

// ---------------------------------------------------------------------------
// Channels-first layouts: the NC.. result is the transpose of the NHWC result
// on the transposed input (the filter keeps its layout).

template <typename P>
void ExpectChannelsFirstIsTransposed(P channels_last, P channels_first, const Tensor<float>& x,
                                     const Tensor<float>& w,
                                     const test::Extras<float>& extras = {}) {
  const Tensor<float> last = RunOp(channels_last, x, w, extras);
  const Tensor<float> first = RunOp(channels_first, ToChannelsFirst(x), w, extras);
  ASSERT_FALSE(last.values.empty());
  const Tensor<float> expected = ToChannelsFirst(last);
  EXPECT_EQ(first.shape, expected.shape);
  EXPECT_EQ(first.values, expected.values);
}

TEST(ReferenceLayout, ChannelsFirstEqualsTransposedChannelsLast) {
  std::mt19937 rng(21);
  {
    const Tensor<float> x = RandomGridTensor<float>({2, 9, 3}, rng);
    const Tensor<float> w = RandomGridTensor<float>({3, 3, 4}, rng);
    Conv1DParams last;
    last.padding = Padding::kSame;
    last.stride = {2};
    Conv1DParams first = last;
    first.data_format = "NCW";
    ExpectChannelsFirstIsTransposed(last, first, x, w);
    ConvolutionParams clast;
    clast.padding = Padding::kValid;
    clast.dilations = {2};
    ConvolutionParams cfirst = clast;
    cfirst.data_format = "NCW";
    ExpectChannelsFirstIsTransposed(clast, cfirst, x, w);
  }
  {
    const Tensor<float> x = RandomGridTensor<float>({2, 7, 6, 4}, rng);
    const Tensor<float> w = RandomGridTensor<float>({3, 2, 4, 5}, rng);
    ExpectChannelsFirstIsTransposed(Conv2D(Padding::kSame, {1, 2, 3, 1}),
                                    Conv2D(Padding::kSame, {1, 1, 2, 3}, {}, "NCHW"), x, w);
    ExpectChannelsFirstIsTransposed(Conv2D(Padding::kValid, {}, {1, 2, 1, 1}),
                                    Conv2D(Padding::kValid, {}, {1, 1, 2, 1}, "NCHW"), x, w);
    Conv2DParams elast = Conv2D(Padding::kExplicit);
    elast.explicit_paddings = {0, 0, 1, 2, 0, 3, 0, 0};
    Conv2DParams efirst = Conv2D(Padding::kExplicit, {}, {}, "NCHW");
    efirst.explicit_paddings = {0, 0, 0, 0, 1, 2, 0, 3};
    ExpectChannelsFirstIsTransposed(elast, efirst, x, w);
    // Grouped: filter in-depth 2 of 4 channels.
    const Tensor<float> wg = RandomGridTensor<float>({2, 2, 2, 6}, rng);
    ExpectChannelsFirstIsTransposed(Conv2D(Padding::kSame), Conv2D(Padding::kSame, {}, {}, "NCHW"),
                                    x, wg);
  }
  {
    const Tensor<float> x = RandomGridTensor<float>({2, 6, 7, 3}, rng);
    const Tensor<float> dw = RandomGridTensor<float>({3, 3, 3, 2}, rng);
    const Tensor<float> pw = RandomGridTensor<float>({1, 1, 6, 4}, rng);
    DepthwiseConv2DParams dlast;
    dlast.padding = Padding::kSame;
    dlast.strides = {2, 2};
    DepthwiseConv2DParams dfirst = dlast;
    dfirst.data_format = "NCHW";
    ExpectChannelsFirstIsTransposed(dlast, dfirst, x, dw);
    SeparableConv2DParams slast;
    slast.padding = Padding::kValid;
    slast.dilations = {2, 2};
    SeparableConv2DParams sfirst = slast;
    sfirst.data_format = "NCHW";
    ExpectChannelsFirstIsTransposed(slast, sfirst, x, dw, {.pointwise = pw});
  }
  {
    const Tensor<float> x = RandomGridTensor<float>({2, 4, 5, 6, 3}, rng);
    const Tensor<float> w = RandomGridTensor<float>({2, 3, 2, 3, 2}, rng);
    Conv3DParams last;
    last.padding = Padding::kSame;
    last.strides = {2, 1, 3};
    Conv3DParams first = last;
    first.data_format = "NCDHW";
    ExpectChannelsFirstIsTransposed(last, first, x, w);
  }
  {
    // Transposed: input dy [2, 3, 4, 2] -> output_shape [2, 6, 7, 3] (NHWC).
    const Tensor<float> dy = RandomGridTensor<float>({2, 3, 4, 2}, rng);
    const Tensor<float> w = RandomGridTensor<float>({3, 3, 3, 2}, rng);
    ConvTransposeParams last;
    last.rank = 2;
    last.output_shape = {2, 6, 7, 3};
    last.strides = {2, 2};
    last.padding = Padding::kSame;
    ConvTransposeParams first = last;
    first.data_format = "NCHW";
    first.output_shape = {2, 3, 6, 7};
    ExpectChannelsFirstIsTransposed(last, first, dy, w);
  }
  {
    const Tensor<float> dy = RandomGridTensor<float>({1, 2, 3, 2, 2}, rng);
    const Tensor<float> w = RandomGridTensor<float>({2, 2, 3, 3, 2}, rng);
    ConvTransposeParams last;
    last.rank = 3;
    last.output_shape = {1, 4, 6, 6, 3};
    last.strides = {2, 2, 3};
    last.padding = Padding::kValid;
    ConvTransposeParams first = last;
    first.data_format = "NCDHW";
    first.output_shape = {1, 3, 4, 6, 6};
    ExpectChannelsFirstIsTransposed(last, first, dy, w);
  }
}

// ---------------------------------------------------------------------------
// Grouped convolution: group g reads channels [g*I, (g+1)*I) and writes
// [g*O/G, (g+1)*O/G), so the result is the per-group convolutions concatenated.

// Channels [begin, begin + count) of a channels-last tensor.
Tensor<float> SliceChannels(const Tensor<float>& t, int64_t begin, int64_t count) {
  const int64_t channels = t.shape.back();
  Tensor<float> s{t.shape, {}};
  s.shape.back() = count;
  for (int64_t i = 0; i < Elements(t.shape) / channels; ++i)
    for (int64_t c = begin; c < begin + count; ++c) s.values.push_back(t.values[i * channels + c]);
  return s;
}

// Output channels [begin, begin + count) of a filter (its last dimension).
Tensor<float> SliceFilterOut(const Tensor<float>& w, int64_t begin, int64_t count) {
  return SliceChannels(w, begin, count);
}

template <typename P>
void ExpectGroupsAreIndependent(const P& params, const Tensor<float>& x, const Tensor<float>& w) {
  const int64_t in = x.shape.back(), group_in = w.shape[w.shape.size() - 2];
  const int64_t out = w.shape.back(), groups = in / group_in, group_out = out / groups;
  const Tensor<float> y = RunOp(params, x, w);
  ASSERT_FALSE(y.values.empty());
  for (int64_t g = 0; g < groups; ++g) {
    SCOPED_TRACE(g);
    const Tensor<float> part = RunOp(params, SliceChannels(x, g * group_in, group_in),
                                     SliceFilterOut(w, g * group_out, group_out));
    const Tensor<float> expected = SliceChannels(y, g * group_out, group_out);
    EXPECT_EQ(part.shape, expected.shape);
    EXPECT_EQ(part.values, expected.values);
  }
}

TEST(ReferenceGrouped, EqualsPerGroupConvolutions) {
  std::mt19937 rng(31);
  // conv2d, 6 channels in 3 groups of 2, 6 outputs (2 per group).
  ExpectGroupsAreIndependent(Conv2D(Padding::kSame, {1, 2, 2, 1}),
                             RandomGridTensor<float>({2, 5, 6, 6}, rng),
                             RandomGridTensor<float>({3, 3, 2, 6}, rng));
  // 2 groups of 3 with 4 outputs each.
  ExpectGroupsAreIndependent(Conv2D(Padding::kValid, {}, {1, 2, 1, 1}),
                             RandomGridTensor<float>({1, 7, 5, 6}, rng),
                             RandomGridTensor<float>({2, 2, 3, 8}, rng));
  // conv1d and 3-D convolution.
  Conv1DParams p1;
  p1.padding = Padding::kSame;
  ExpectGroupsAreIndependent(p1, RandomGridTensor<float>({2, 8, 4}, rng),
                             RandomGridTensor<float>({3, 1, 8}, rng));
  ConvolutionParams p3;
  p3.padding = Padding::kSame;
  ExpectGroupsAreIndependent(p3, RandomGridTensor<float>({1, 3, 4, 5, 4}, rng),
                             RandomGridTensor<float>({2, 2, 2, 2, 4}, rng));
}

TEST(ReferenceGrouped, LiteralTwoGroups) {
  // One pixel, channels (1, 2, 3, 4), filter in-depth 2 -> 2 groups, 2 outputs:
  // out 0 reads channels 0-1 with (1, 10), out 1 reads channels 2-3 with (100, 1000).
  const Tensor<float> y = RunOp(Conv2D(Padding::kValid), Tensor<float>{{1, 1, 1, 4}, {1, 2, 3, 4}},
                                Tensor<float>{{1, 1, 2, 2}, {1, 100, 10, 1000}});
  EXPECT_EQ(y.shape, (Shape{1, 1, 1, 2}));
  EXPECT_THAT(y.values, ElementsAre(21, 4300));
}

TEST(ReferenceGrouped, TransposedEqualsPerGroupTransposes) {
  // conv2d_transpose with output channels 4 and filter in-depth 2: 2 groups,
  // dy channels 6 (3 per group).
  std::mt19937 rng(32);
  const Tensor<float> dy = RandomGridTensor<float>({2, 3, 3, 6}, rng);
  const Tensor<float> w = RandomGridTensor<float>({3, 3, 2, 6}, rng);
  ConvTransposeParams p;
  p.rank = 2;
  p.output_shape = {2, 6, 5, 4};
  p.strides = {2, 2};
  p.padding = Padding::kSame;
  const Tensor<float> dx = RunOp(p, dy, w);
  ASSERT_EQ(dx.shape, (Shape{2, 6, 5, 4}));
  ConvTransposeParams part = p;
  part.output_shape = {2, 6, 5, 2};
  for (int64_t g = 0; g < 2; ++g) {
    const Tensor<float> r = RunOp(part, SliceChannels(dy, 3 * g, 3), SliceFilterOut(w, 3 * g, 3));
    EXPECT_EQ(r.values, SliceChannels(dx, 2 * g, 2).values) << "group " << g;
  }
}

// ---------------------------------------------------------------------------
// The transposed convolution is the adjoint of the forward one:
// <conv(x, w), y> == <x, conv_transpose(y, w)>.

struct AdjointCase {
  Shape x_shape;  // forward input = transposed output_shape (channels last)
  Shape w_shape;
  int64_t stride;
  int64_t dilation;
  Padding padding;
};

void ExpectAdjoint(const AdjointCase& c, std::mt19937& rng) {
  const int n = static_cast<int>(c.x_shape.size()) - 2;
  SCOPED_TRACE(::testing::Message()
               << "x " << ShapeString(c.x_shape) << " w " << ShapeString(c.w_shape) << " stride "
               << c.stride << " dilation " << c.dilation << " "
               << (c.padding == Padding::kSame ? "SAME" : "VALID"));
  const Tensor<double> x = RandomNormalTensor<double>(c.x_shape, rng);
  const Tensor<double> w = RandomNormalTensor<double>(c.w_shape, rng);
  // tf.nn.convolution refuses strides with dilations; conv1d/2d/3d take both.
  OpParams fwd;
  if (n == 1) {
    Conv1DParams p;
    p.padding = c.padding;
    p.stride = {c.stride};
    p.dilations = {c.dilation};
    fwd = p;
  } else if (n == 2) {
    fwd = Conv2D(c.padding, {c.stride}, {c.dilation});
  } else {
    Conv3DParams p;
    p.padding = c.padding;
    p.strides = {c.stride};
    p.dilations = {c.dilation};
    fwd = p;
  }
  const Tensor<double> y = RunOp(fwd, x, w);
  ASSERT_FALSE(y.shape.empty());
  const Tensor<double> dy = RandomNormalTensor<double>(y.shape, rng);
  ConvTransposeParams transpose;
  transpose.output_shape = c.x_shape;
  transpose.strides = {c.stride};
  transpose.dilations = {c.dilation};
  transpose.padding = c.padding;
  const Tensor<double> dx = RunOp(transpose, dy, w);
  ASSERT_EQ(dx.shape, c.x_shape);
  const double lhs = test::Dot(y.values, dy.values);
  const double rhs = test::Dot(x.values, dx.values);
  EXPECT_NEAR(lhs, rhs, 1e-9 * (1.0 + std::abs(lhs)));
}

TEST(ReferenceTranspose, IsTheAdjointOfTheForwardConvolution) {
  std::mt19937 rng(41);
  int cases = 0;
  for (Padding padding : {Padding::kSame, Padding::kValid}) {
    for (int64_t stride = 1; stride <= 3; ++stride) {
      for (int64_t dilation = 1; dilation <= 2; ++dilation) {
        // 2-D: sizes chosen so that VALID leaves 0, 1 or 2 trailing positions.
        for (int64_t h : {7, 8, 9}) {
          ExpectAdjoint({{2, h, h + 3, 3}, {3, 2, 3, 2}, stride, dilation, padding}, rng);
          ++cases;
        }
        ExpectAdjoint({{1, 5, 4, 2}, {1, 1, 2, 3}, stride, dilation, padding}, rng);  // 1x1 filter
        ExpectAdjoint({{1, 6, 6, 4}, {2, 3, 2, 6}, stride, dilation, padding}, rng);  // grouped
        ExpectAdjoint({{3, 10, 2}, {4, 2, 3}, stride, dilation, padding}, rng);       // 1-D
        ExpectAdjoint({{1, 5, 6, 7, 2}, {2, 3, 2, 2, 2}, stride, dilation, padding}, rng);  // 3-D
        cases += 4;
      }
    }
  }
  EXPECT_EQ(cases, 2 * 3 * 2 * 7);
}

// ---------------------------------------------------------------------------
// Identities between ops.

TEST(ReferenceAtrous, EqualsConv2DWithZeroInsertedFilter) {
  std::mt19937 rng(51);
  const Tensor<float> x = RandomGridTensor<float>({2, 11, 10, 3}, rng);
  const Tensor<float> w = RandomGridTensor<float>({3, 2, 3, 2}, rng);
  for (int64_t rate : {1, 2, 3}) {
    // Upsampled filter: w at (rate * di, rate * dj), zeros between.
    const int64_t eh = (3 - 1) * rate + 1, ew = (2 - 1) * rate + 1;
    Tensor<float> up{{eh, ew, 3, 2}, std::vector<float>(static_cast<size_t>(eh * ew * 6), 0.0f)};
    for (int64_t di = 0; di < 3; ++di)
      for (int64_t dj = 0; dj < 2; ++dj)
        for (int64_t q = 0; q < 3; ++q)
          for (int64_t k = 0; k < 2; ++k)
            up.values[Offset(up.shape, {rate * di, rate * dj, q, k})] =
                w.values[Offset(w.shape, {di, dj, q, k})];
    for (Padding padding : {Padding::kSame, Padding::kValid}) {
      SCOPED_TRACE(::testing::Message() << "rate " << rate);
      AtrousConv2DParams p;
      p.rate = rate;
      p.padding = padding;
      const Tensor<float> atrous = RunOp(p, x, w);
      const Tensor<float> plain = RunOp(Conv2D(padding), x, up);
      EXPECT_EQ(atrous.shape, plain.shape);
      EXPECT_EQ(atrous.values, plain.values);
    }
  }
}

TEST(ReferenceConv1D, EqualsConv2DWithHeightOne) {
  std::mt19937 rng(52);
  const Tensor<float> x = RandomGridTensor<float>({3, 12, 2}, rng);
  const Tensor<float> w = RandomGridTensor<float>({4, 2, 3}, rng);
  for (Padding padding : {Padding::kSame, Padding::kValid}) {
    for (int64_t stride : {1, 2, 3}) {
      Conv1DParams p;
      p.padding = padding;
      p.stride = {stride};
      const Tensor<float> y1 = RunOp(p, x, w);
      const Tensor<float> y2 =
          RunOp(Conv2D(padding, {1, 1, stride, 1}), Tensor<float>{{3, 1, 12, 2}, x.values},
                Tensor<float>{{1, 4, 2, 3}, w.values});
      ASSERT_EQ(y2.shape.size(), 4u);
      EXPECT_EQ(y1.shape, (Shape{3, y2.shape[2], 3}));
      EXPECT_EQ(y1.values, y2.values);
    }
  }
}

TEST(ReferenceBatch, ExtraLeadingDimsAreBatch) {
  std::mt19937 rng(53);
  const Tensor<float> x = RandomGridTensor<float>({2, 3, 5, 4, 2}, rng);
  const Tensor<float> w = RandomGridTensor<float>({3, 3, 2, 4}, rng);
  const Tensor<float> y = RunOp(Conv2D(Padding::kSame, {1, 2, 1, 1}), x, w);
  EXPECT_EQ(y.shape, (Shape{2, 3, 3, 4, 4}));
  const Tensor<float> flat =
      RunOp(Conv2D(Padding::kSame, {1, 2, 1, 1}), Tensor<float>{{6, 5, 4, 2}, x.values}, w);
  EXPECT_EQ(flat.shape, (Shape{6, 3, 4, 4}));
  EXPECT_EQ(y.values, flat.values);

  // Channels first with extra batch dims: [2, 3, C, H, W].
  const Tensor<float> first = RunOp(
      Conv2D(Padding::kSame, {1, 1, 2, 1}, {}, "NCHW"),
      Tensor<float>{{2, 3, 2, 5, 4}, ToChannelsFirst(Tensor<float>{{6, 5, 4, 2}, x.values}).values},
      w);
  EXPECT_EQ(first.shape, (Shape{2, 3, 4, 3, 4}));
  EXPECT_EQ(first.values, ToChannelsFirst(flat).values);

  // conv3d takes rank >= 5 the same way.
  Conv3DParams p3;
  p3.padding = Padding::kValid;
  const Tensor<float> x3 = RandomGridTensor<float>({2, 2, 3, 3, 3, 1}, rng);
  const Tensor<float> w3 = RandomGridTensor<float>({2, 2, 2, 1, 2}, rng);
  const Tensor<float> y3 = RunOp(p3, x3, w3);
  EXPECT_EQ(y3.shape, (Shape{2, 2, 2, 2, 2, 2}));
  EXPECT_EQ(y3.values, RunOp(p3, Tensor<float>{{4, 3, 3, 3, 1}, x3.values}, w3).values);
}

TEST(ReferenceBatch, Conv1DExtraLeadingDims) {
  std::mt19937 rng(55);
  const Tensor<float> x = RandomGridTensor<float>({2, 3, 7, 2}, rng);
  const Tensor<float> w = RandomGridTensor<float>({3, 2, 4}, rng);
  Conv1DParams p;
  p.padding = Padding::kSame;
  p.stride = {2};
  const Tensor<float> y = RunOp(p, x, w);
  EXPECT_EQ(y.shape, (Shape{2, 3, 4, 4}));
  const Tensor<float> flat = RunOp(p, Tensor<float>{{6, 7, 2}, x.values}, w);
  EXPECT_EQ(flat.shape, (Shape{6, 4, 4}));
  EXPECT_EQ(y.values, flat.values);
  // NCW with extra batch dims.
  p.data_format = "NCW";
  const Tensor<float> first = RunOp(
      p, Tensor<float>{{2, 3, 2, 7}, ToChannelsFirst(Tensor<float>{{6, 7, 2}, x.values}).values},
      w);
  EXPECT_EQ(first.shape, (Shape{2, 3, 4, 4}));
  EXPECT_EQ(first.values, ToChannelsFirst(flat).values);
}

TEST(ReferenceBatch, EmptyBatchGivesEmptyResult) {
  const Tensor<float> y =
      RunOp(Conv2D(Padding::kSame), Tensor<float>{{0, 4, 4, 2}, {}}, Ones({3, 3, 2, 5}));
  EXPECT_EQ(y.shape, (Shape{0, 4, 4, 5}));
  EXPECT_TRUE(y.values.empty());
  // Also channels first, with a bias and an activation.
  const Tensor<float> z = RunOp(
      Conv2D(Padding::kValid, {}, {}, "NCHW"), Tensor<float>{{0, 2, 4, 4}, {}}, Ones({3, 3, 2, 5}),
      {.bias = std::vector<float>(5, 1.0f), .activation = Activation::kRelu});
  EXPECT_EQ(z.shape, (Shape{0, 5, 2, 2}));
  EXPECT_TRUE(z.values.empty());
  ConvTransposeParams t;
  t.rank = 2;
  t.output_shape = {0, 4, 4, 2};
  t.padding = Padding::kSame;
  const Tensor<float> dx = RunOp(t, Tensor<float>{{0, 4, 4, 5}, {}}, Ones({3, 3, 2, 5}));
  EXPECT_EQ(dx.shape, (Shape{0, 4, 4, 2}));
  EXPECT_TRUE(dx.values.empty());
}

// Found by fuzz_conv_request: an empty result whose other dimensions are huge
// (a valid shape: its product is 0) must return at once. The loops over its
// rows used to run 2^63 times, hanging the worker, and the layout strides of
// such tensors overflowed int64.
TEST(ReferenceBatch, EmptyTensorsWithHugeDimensionsReturnAtOnce) {
  constexpr int64_t kHuge = std::numeric_limits<int64_t>::max() - 1;
  Conv2DParams explicit_pads = Conv2D(Padding::kExplicit);
  explicit_pads.explicit_paddings = {0, 0, 0, 0, 0, 0, 0, 0};
  const Tensor<float> y =
      RunOp(explicit_pads, Tensor<float>{{1, kHuge, 0, 1}, {}}, Ones({1, 1, 1, 1}));
  EXPECT_EQ(y.shape, (Shape{1, kHuge, 0, 1}));
  EXPECT_TRUE(y.values.empty());
  // An empty batch with two huge spatial dimensions, forward and transposed.
  const Tensor<float> z =
      RunOp(Conv2D(Padding::kSame), Tensor<float>{{0, kHuge, kHuge, 2}, {}}, Ones({1, 1, 2, 3}));
  EXPECT_EQ(z.shape, (Shape{0, kHuge, kHuge, 3}));
  ConvTransposeParams t;
  t.rank = 2;
  t.output_shape = {0, kHuge, kHuge, 2};
  t.padding = Padding::kSame;
  const Tensor<float> dx = RunOp(t, Tensor<float>{{0, kHuge, kHuge, 3}, {}}, Ones({1, 1, 2, 3}));
  EXPECT_EQ(dx.shape, (Shape{0, kHuge, kHuge, 2}));
  // 3-D, the empty dimension first: every stride after it overflowed.
  Conv3DParams p3;
  p3.padding = Padding::kValid;
  const Tensor<float> v =
      RunOp(p3, Tensor<float>{{1, 0, kHuge, kHuge, 1}, {}}, Ones({1, 1, 1, 1, 1}));
  EXPECT_EQ(v.shape, (Shape{1, 0, kHuge, kHuge, 1}));
}

// An empty input under explicit padding gives a result of zeros (then the
// epilogue), without reading the input.
TEST(ReferenceBatch, EmptyInputWithPaddingGivesZeros) {
  Conv2DParams p = Conv2D(Padding::kExplicit);
  p.explicit_paddings = {0, 0, 1, 1, 2, 0, 0, 0};
  const Tensor<float> y = RunOp(p, Tensor<float>{{1, 0, 0, 1}, {}}, Ones({1, 1, 1, 2}),
                                {.bias = std::vector<float>{1.0f, -1.0f}});
  EXPECT_EQ(y.shape, (Shape{1, 2, 2, 2}));
  EXPECT_THAT(y.values, ElementsAre(1, -1, 1, -1, 1, -1, 1, -1));
}

TEST(ReferenceBatch, ValidFilterLargerThanInputGivesEmptyOutput) {
  const Tensor<float> y =
      RunOp(Conv2D(Padding::kValid), Iota<float>({1, 3, 3, 1}), Ones({4, 4, 1, 1}));
  EXPECT_EQ(y.shape, (Shape{1, 0, 0, 1}));
  EXPECT_TRUE(y.values.empty());
  // Only one dimension too small.
  const Tensor<float> z =
      RunOp(Conv2D(Padding::kValid), Iota<float>({2, 3, 5, 1}), Ones({4, 2, 1, 3}));
  EXPECT_EQ(z.shape, (Shape{2, 0, 4, 3}));
  EXPECT_TRUE(z.values.empty());
  // Much larger: a negative size is an error, not an empty result.
  EXPECT_FALSE(TryRun(Conv2D(Padding::kValid), Iota<float>({1, 3, 3, 1}), Ones({9, 1, 1, 1})).ok());
}

TEST(ReferenceBatch, BatchElementsAreIndependent) {
  // Two images in one batch give the results of two single-image runs.
  std::mt19937 rng(54);
  const Tensor<float> x = RandomGridTensor<float>({2, 5, 5, 3}, rng);
  const Tensor<float> w = RandomGridTensor<float>({3, 3, 3, 2}, rng);
  const Tensor<float> both = RunOp(Conv2D(Padding::kSame), x, w);
  std::vector<float> concat;
  for (int b = 0; b < 2; ++b) {
    const std::vector<float> one(x.values.begin() + b * 75, x.values.begin() + (b + 1) * 75);
    const Tensor<float> y = RunOp(Conv2D(Padding::kSame), Tensor<float>{{1, 5, 5, 3}, one}, w);
    concat.insert(concat.end(), y.values.begin(), y.values.end());
  }
  EXPECT_EQ(both.values, concat);
}

// ---------------------------------------------------------------------------
// Fused bias and activation. A 1x1 identity filter passes the input through, so
// the epilogue sees: x + bias.

// Pre-activation values -1.5, 0, 0.5, 1, 3.5, 7.5 (input - 0.5 + bias 0.5 per channel).
template <typename T>
Tensor<T> RunEpilogue(Activation activation) {
  // 3 pixels x 2 channels; bias (0.5, -0.5).
  const Tensor<T> x{{1, 1, 3, 2},
                    {static_cast<T>(-2.0), static_cast<T>(0.5), static_cast<T>(0.0),
                     static_cast<T>(1.5), static_cast<T>(3.0), static_cast<T>(8.0)}};
  const Tensor<T> w{{1, 1, 2, 2},
                    {static_cast<T>(1), static_cast<T>(0), static_cast<T>(0), static_cast<T>(1)}};
  return RunOp(Conv2D(Padding::kValid), x, w,
               {.bias = std::vector<T>{static_cast<T>(0.5), static_cast<T>(-0.5)},
                .activation = activation});
}

TEST(ReferenceEpilogue, BiasOnly) {
  EXPECT_THAT(RunEpilogue<float>(Activation::kNone).values,
              ElementsAre(-1.5f, 0.0f, 0.5f, 1.0f, 3.5f, 7.5f));
}

TEST(ReferenceEpilogue, Relu) {
  EXPECT_THAT(RunEpilogue<float>(Activation::kRelu).values,
              ElementsAre(0.0f, 0.0f, 0.5f, 1.0f, 3.5f, 7.5f));
}

TEST(ReferenceEpilogue, Relu6) {
  EXPECT_THAT(RunEpilogue<float>(Activation::kRelu6).values,
              ElementsAre(0.0f, 0.0f, 0.5f, 1.0f, 3.5f, 6.0f));
}

TEST(ReferenceEpilogue, Elu) {
  // exp(-1.5) - 1 = -0.77686983985157021...
  const Tensor<float> y = RunEpilogue<float>(Activation::kElu);
  ASSERT_EQ(y.values.size(), 6u);
  EXPECT_FLOAT_EQ(y.values[0], -0.77686983985157021f);
  EXPECT_THAT(std::vector<float>(y.values.begin() + 1, y.values.end()),
              ElementsAre(0.0f, 0.5f, 1.0f, 3.5f, 7.5f));
  const Tensor<double> d = RunEpilogue<double>(Activation::kElu);
  ASSERT_EQ(d.values.size(), 6u);
  EXPECT_DOUBLE_EQ(d.values[0], -0.77686983985157021);
}

TEST(ReferenceEpilogue, LeakyReluAlphaPointTwo) {
  const Tensor<float> y = RunEpilogue<float>(Activation::kLeakyRelu);
  ASSERT_EQ(y.values.size(), 6u);
  EXPECT_FLOAT_EQ(y.values[0], -0.3f);
  EXPECT_THAT(std::vector<float>(y.values.begin() + 1, y.values.end()),
              ElementsAre(0.0f, 0.5f, 1.0f, 3.5f, 7.5f));
}

TEST(ReferenceEpilogue, Sigmoid) {
  const Tensor<float> y = RunEpilogue<float>(Activation::kSigmoid);
  const double expected[] = {0.18242552380635635, 0.5,
                             0.62245933120185459, 0.7310585786300049,
                             0.97068776924864364, 0.99944722136307640};
  ASSERT_EQ(y.values.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(y.values[i], static_cast<float>(expected[i])) << i;
  const Tensor<double> d = RunEpilogue<double>(Activation::kSigmoid);
  ASSERT_EQ(d.values.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_DOUBLE_EQ(d.values[i], expected[i]) << i;
}

TEST(ReferenceEpilogue, Tanh) {
  const Tensor<float> y = RunEpilogue<float>(Activation::kTanh);
  const double expected[] = {-0.90514825364486640, 0.0,
                             0.46211715726000974,  0.7615941559557649,
                             0.9981778976111987,   0.9999993881955461};
  ASSERT_EQ(y.values.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(y.values[i], static_cast<float>(expected[i])) << i;
  const Tensor<double> d = RunEpilogue<double>(Activation::kTanh);
  ASSERT_EQ(d.values.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_DOUBLE_EQ(d.values[i], expected[i]) << i;
}

TEST(ReferenceEpilogue, ActivationWithoutBias) {
  const Tensor<float> y =
      RunOp(Conv2D(Padding::kValid), Tensor<float>{{1, 1, 4, 1}, {-3, -1, 2, 9}},
            Ones({1, 1, 1, 1}), {.activation = Activation::kRelu6});
  EXPECT_THAT(y.values, ElementsAre(0, 0, 2, 6));
}

TEST(ReferenceEpilogue, ChannelsFirstBiasFollowsTheChannelDimension) {
  // NCHW [2, 2, 2, 2]: 1x1 identity filter, bias (10, 100). Every value of
  // channel c gets bias[c], whatever its position.
  const Tensor<float> x = Iota<float>({2, 2, 2, 2});
  const Tensor<float> y =
      RunOp(Conv2D(Padding::kValid, {}, {}, "NCHW"), x, Tensor<float>{{1, 1, 2, 2}, {1, 0, 0, 1}},
            {.bias = std::vector<float>{10, 100}});
  EXPECT_EQ(y.shape, (Shape{2, 2, 2, 2}));
  EXPECT_THAT(y.values, ElementsAre(11, 12, 13, 14, 105, 106, 107, 108,  //
                                    19, 20, 21, 22, 113, 114, 115, 116));
  // Channels first 1-D and 3-D, and a channels-first transposed result.
  Conv1DParams p1;
  p1.padding = Padding::kValid;
  p1.data_format = "NCW";
  const Tensor<float> y1 = RunOp(p1, Iota<float>({1, 2, 3}), Tensor<float>{{1, 2, 2}, {1, 0, 0, 1}},
                                 {.bias = std::vector<float>{10, 100}});
  EXPECT_THAT(y1.values, ElementsAre(11, 12, 13, 104, 105, 106));
  Conv3DParams p3;
  p3.padding = Padding::kValid;
  p3.data_format = "NCDHW";
  const Tensor<float> y3 =
      RunOp(p3, Iota<float>({1, 2, 1, 1, 2}), Tensor<float>{{1, 1, 1, 2, 3}, {1, 0, 1, 0, 1, 1}},
            {.bias = std::vector<float>{10, 100, 1000}});
  // out 0 = c0, out 1 = c1, out 2 = c0 + c1 with c0 = (1, 2), c1 = (3, 4).
  EXPECT_THAT(y3.values, ElementsAre(11, 12, 103, 104, 1004, 1006));
  ConvTransposeParams t;
  t.rank = 2;
  t.output_shape = {1, 2, 1, 2};
  t.data_format = "NCHW";
  t.padding = Padding::kValid;
  const Tensor<float> dx =
      RunOp(t, Tensor<float>{{1, 1, 1, 2}, {5, 6}}, Tensor<float>{{1, 1, 2, 1}, {1, 2}},
            {.bias = std::vector<float>{-1, -2}});
  EXPECT_EQ(dx.shape, (Shape{1, 2, 1, 2}));
  EXPECT_THAT(dx.values, ElementsAre(4, 5, 8, 10));
}

TEST(ReferenceEpilogue, BiasCountsResultChannelsOfSeparableAndTranspose) {
  // Separable: bias over the pointwise outputs (2), not the depthwise ones (4).
  SeparableConv2DParams p;
  p.padding = Padding::kValid;
  const Tensor<float> x{{1, 1, 3, 2}, {1, 10, 2, 20, 3, 30}};
  const Tensor<float> dw{{1, 2, 2, 2}, {1, 1, 2, 0, 1, -1, 0, 3}};
  const Tensor<float> pw{{1, 1, 4, 2}, {1, 1, 1, 0, 1, 0, 1, -1}};
  const Tensor<float> y =
      RunOp(p, x, dw,
            {.pointwise = pw, .bias = std::vector<float>{1, 100}, .activation = Activation::kRelu});
  EXPECT_THAT(y.values, ElementsAre(83, 43, 135, 15));
  // Transposed NHWC: bias over output_shape's channels.
  ConvTransposeParams t;
  t.rank = 2;
  t.output_shape = {1, 1, 1, 3};
  t.padding = Padding::kValid;
  const Tensor<float> dx = RunOp(
      t, Tensor<float>{{1, 1, 1, 2}, {1, 2}}, Tensor<float>{{1, 1, 3, 2}, {1, 10, 2, 20, 3, 30}},
      {.bias = std::vector<float>{-21, 0, 1}, .activation = Activation::kRelu});
  EXPECT_THAT(dx.values, ElementsAre(0, 42, 64));
}

TEST(ReferenceEpilogue, Int32ReluAndRelu6) {
  const Tensor<int32_t> x{{1, 1, 4, 1}, {-5, 0, 4, 20}};
  const Tensor<int32_t> w{{1, 1, 1, 1}, {1}};
  EXPECT_THAT(RunOp(Conv2D(Padding::kValid), x, w,
                    {.bias = std::vector<int32_t>{1}, .activation = Activation::kRelu})
                  .values,
              ElementsAre(0, 1, 5, 21));
  EXPECT_THAT(RunOp(Conv2D(Padding::kValid), x, w,
                    {.bias = std::vector<int32_t>{1}, .activation = Activation::kRelu6})
                  .values,
              ElementsAre(0, 1, 5, 6));
}

TEST(ReferenceEpilogue, Int32BiasWraps) {
  constexpr int32_t kMax = std::numeric_limits<int32_t>::max();
  constexpr int32_t kMin = std::numeric_limits<int32_t>::min();
  const Tensor<int32_t> x{{1, 1, 2, 1}, {kMax, kMin}};
  const Tensor<int32_t> w{{1, 1, 1, 1}, {1}};
  EXPECT_THAT(RunOp(Conv2D(Padding::kValid), x, w, {.bias = std::vector<int32_t>{1}}).values,
              ElementsAre(kMin, kMin + 1));
  EXPECT_THAT(RunOp(Conv2D(Padding::kValid), x, w, {.bias = std::vector<int32_t>{-1}}).values,
              ElementsAre(kMax - 1, kMax));
  EXPECT_THAT(RunOp(Conv2D(Padding::kValid), x, w,
                    {.bias = std::vector<int32_t>{1}, .activation = Activation::kRelu})
                  .values,
              ElementsAre(0, 0));
}

}  // namespace
}  // namespace convserve
