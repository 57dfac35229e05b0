// MakeSpec: validation of every op with TensorFlow's rules and its
// canonicalisation into one ConvSpec (TF_SEMANTICS.md sections 1, 2 and 4).
#include "core/make_spec.h"

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/spec_test_util.h"

// The op parameter structs are built with designated initializers naming only
// the fields a test sets; the rest keep their (empty) defaults on purpose.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace convserve {
namespace {

using namespace ::convserve::spec_test;  // NOLINT: the shared test helpers
using ::testing::ElementsAre;

// ---------------------------------------------------------------- helpers

OperandInfo SeparableOperands(Shape input, Shape depthwise, Shape pointwise) {
  OperandInfo operands = Operands(std::move(input), std::move(depthwise));
  operands.pointwise_filter = Tensor(std::move(pointwise));
  return operands;
}

OperandInfo WithBias(OperandInfo operands, Shape bias, DataType dtype = DataType::kFloat32) {
  operands.bias = Tensor(std::move(bias), dtype);
  return operands;
}

OperandInfo WithActivation(OperandInfo operands, Activation activation) {
  operands.activation = activation;
  return operands;
}

absl::StatusOr<ConvSpec> Make(const OpParams& params, const OperandInfo& operands,
                              int64_t max_output_elements = SpecLimits{}.max_output_elements) {
  SpecLimits limits;
  limits.max_output_elements = max_output_elements;
  return MakeSpec(params, operands, limits);
}

// ================================================================ conv2d

TEST(Conv2D, NhwcSameStrided) {
  // H: ceil(6/2) = 3, pad (3-1)*2 + 3 - 6 = 1 -> 0/1.
  // W: ceil(7/2) = 4, pad (4-1)*2 + 3 - 7 = 2 -> 1/1.
  ASSERT_SPEC(spec, Make(Conv2DParams{.strides = {1, 2, 2, 1}, .padding = Padding::kSame},
                         Operands({2, 6, 7, 3}, {3, 3, 3, 8})));
  EXPECT_EQ(spec.dtype, DataType::kFloat32);
  EXPECT_TRUE(spec.channels_last);
  EXPECT_FALSE(spec.transposed);
  EXPECT_EQ(spec.rank, 2);
  EXPECT_EQ(spec.batch, 2);
  EXPECT_EQ(spec.in_channels, 3);
  EXPECT_EQ(spec.out_channels, 8);
  EXPECT_EQ(spec.groups, 1);
  EXPECT_THAT(spec.input_spatial, ElementsAre(6, 7, 1));
  EXPECT_THAT(spec.filter_spatial, ElementsAre(3, 3, 1));
  EXPECT_THAT(spec.output_spatial, ElementsAre(3, 4, 1));
  EXPECT_THAT(spec.strides, ElementsAre(2, 2, 1));
  EXPECT_THAT(spec.dilations, ElementsAre(1, 1, 1));
  EXPECT_THAT(spec.pad_before, ElementsAre(0, 1, 0));
  EXPECT_THAT(spec.pad_after, ElementsAre(1, 1, 0));
  EXPECT_EQ(spec.pointwise_out_channels, 0);
  EXPECT_EQ(spec.pointwise_groups, 1);
  EXPECT_FALSE(spec.has_bias);
  EXPECT_EQ(spec.activation, Activation::kNone);
  EXPECT_THAT(spec.result_shape, ElementsAre(2, 3, 4, 8));
  EXPECT_EQ(spec.ResultChannels(), 8);
  EXPECT_EQ(spec.InputElements(), 2 * 6 * 7 * 3);
  EXPECT_EQ(spec.FilterElements(), 3 * 3 * 3 * 8);
  EXPECT_EQ(spec.OutputElements(), 2 * 3 * 4 * 8);
}

TEST(Conv2D, StridesAndDilationsOneNAndNPlus2FormsAgree) {
  const OperandInfo operands = Operands({1, 9, 9, 2}, {3, 3, 2, 4});
  ASSERT_SPEC(one, Make(Conv2DParams{.strides = {2}, .padding = Padding::kSame}, operands));
  ASSERT_SPEC(n, Make(Conv2DParams{.strides = {2, 2}, .padding = Padding::kSame}, operands));
  ASSERT_SPEC(full,
              Make(Conv2DParams{.strides = {1, 2, 2, 1}, .padding = Padding::kSame}, operands));
  EXPECT_EQ(one, n);
  EXPECT_EQ(one, full);
  EXPECT_THAT(one.strides, ElementsAre(2, 2, 1));

  ASSERT_SPEC(d1, Make(Conv2DParams{.padding = Padding::kValid, .dilations = {2}}, operands));
  ASSERT_SPEC(d2, Make(Conv2DParams{.padding = Padding::kValid, .dilations = {2, 2}}, operands));
  ASSERT_SPEC(d4,
              Make(Conv2DParams{.padding = Padding::kValid, .dilations = {1, 2, 2, 1}}, operands));
  EXPECT_EQ(d1, d2);
  EXPECT_EQ(d1, d4);
  EXPECT_THAT(d1.dilations, ElementsAre(2, 2, 1));
  EXPECT_THAT(d1.output_spatial, ElementsAre(5, 5, 1));  // eff 5: 9 - 5 + 1
}

TEST(Conv2D, EmptyStridesAndDilationsMeanOnes) {
  ASSERT_SPEC(spec,
              Make(Conv2DParams{.padding = Padding::kValid}, Operands({1, 5, 5, 1}, {3, 3, 1, 1})));
  EXPECT_THAT(spec.strides, ElementsAre(1, 1, 1));
  EXPECT_THAT(spec.dilations, ElementsAre(1, 1, 1));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 3, 3, 1));
}

TEST(Conv2D, PerDimensionStridesValid) {
  // H: (10 - 3 + 2) / 2 = 4; W: (12 - 5 + 3) / 3 = 3.
  ASSERT_SPEC(spec, Make(Conv2DParams{.strides = {2, 3}, .padding = Padding::kValid},
                         Operands({1, 10, 12, 1}, {3, 5, 1, 1})));
  EXPECT_THAT(spec.strides, ElementsAre(2, 3, 1));
  EXPECT_THAT(spec.output_spatial, ElementsAre(4, 3, 1));
  EXPECT_THAT(spec.pad_before, ElementsAre(0, 0, 0));
  EXPECT_THAT(spec.pad_after, ElementsAre(0, 0, 0));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 4, 3, 1));
}

TEST(Conv2D, NchwStridesInDataFormatOrder) {
  ASSERT_SPEC(
      spec,
      Make(Conv2DParams{.strides = {1, 1, 2, 3}, .padding = Padding::kValid, .data_format = "NCHW"},
           Operands({1, 6, 10, 12}, {3, 5, 6, 4})));
  EXPECT_FALSE(spec.channels_last);
  EXPECT_EQ(spec.in_channels, 6);
  EXPECT_EQ(spec.out_channels, 4);
  EXPECT_THAT(spec.input_spatial, ElementsAre(10, 12, 1));
  EXPECT_THAT(spec.strides, ElementsAre(2, 3, 1));
  EXPECT_THAT(spec.output_spatial, ElementsAre(4, 3, 1));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 4, 4, 3));
}

TEST(Conv2D, NchwDilationsInDataFormatOrder) {
  // H: eff 5 -> 9 - 5 + 1 = 5; W: 9 - 3 + 1 = 7.
  ASSERT_SPEC(spec, Make(Conv2DParams{.padding = Padding::kValid,
                                      .data_format = "NCHW",
                                      .dilations = {1, 1, 2, 1}},
                         Operands({1, 2, 9, 9}, {3, 3, 2, 1})));
  EXPECT_THAT(spec.dilations, ElementsAre(2, 1, 1));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 1, 5, 7));
}

TEST(Conv2D, PerDimensionDilations) {
  // H: eff 5 -> 5; W: eff 7 -> 3.
  ASSERT_SPEC(spec, Make(Conv2DParams{.padding = Padding::kValid, .dilations = {2, 3}},
                         Operands({1, 9, 9, 1}, {3, 3, 1, 1})));
  EXPECT_THAT(spec.dilations, ElementsAre(2, 3, 1));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 5, 3, 1));
}

TEST(Conv2D, SameWithDilationPadsTheDilatedFilter) {
  // eff 5, pad 4 -> 2/2 in both dims.
  ASSERT_SPEC(spec, Make(Conv2DParams{.padding = Padding::kSame, .dilations = {2}},
                         Operands({1, 8, 8, 1}, {3, 3, 1, 1})));
  EXPECT_THAT(spec.pad_before, ElementsAre(2, 2, 0));
  EXPECT_THAT(spec.pad_after, ElementsAre(2, 2, 0));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 8, 8, 1));
}

TEST(Conv2D, ExplicitPaddingNhwc) {
  // H: 5 + 1 + 2 - 3 + 1 = 6; W: 5 + 3 + 4 - 3 + 1 = 10.
  ASSERT_SPEC(spec, Make(Conv2DParams{.padding = Padding::kExplicit,
                                      .explicit_paddings = {0, 0, 1, 2, 3, 4, 0, 0}},
                         Operands({1, 5, 5, 1}, {3, 3, 1, 1})));
  EXPECT_THAT(spec.pad_before, ElementsAre(1, 3, 0));
  EXPECT_THAT(spec.pad_after, ElementsAre(2, 4, 0));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 6, 10, 1));
}

TEST(Conv2D, ExplicitPaddingNchwInDataFormatOrder) {
  ASSERT_SPEC(spec, Make(Conv2DParams{.padding = Padding::kExplicit,
                                      .explicit_paddings = {0, 0, 0, 0, 1, 2, 3, 4},
                                      .data_format = "NCHW"},
                         Operands({1, 1, 5, 5}, {3, 3, 1, 1})));
  EXPECT_THAT(spec.pad_before, ElementsAre(1, 3, 0));
  EXPECT_THAT(spec.pad_after, ElementsAre(2, 4, 0));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 1, 6, 10));
}

TEST(Conv2D, ExplicitPaddingWithStride) {
  // (7 + 1 + 1 - 3 + 2) / 2 = 4.
  ASSERT_SPEC(spec, Make(Conv2DParams{.strides = {2},
                                      .padding = Padding::kExplicit,
                                      .explicit_paddings = {0, 0, 1, 1, 1, 1, 0, 0}},
                         Operands({1, 7, 7, 1}, {3, 3, 1, 1})));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 4, 4, 1));
}

TEST(Conv2D, ValidFilterSlightlyLargerThanInputGivesEmptyOutput) {
  ASSERT_SPEC(spec, Make(Conv2DParams{.padding = Padding::kValid},
                         Operands({1, 20, 20, 1}, {21, 1, 1, 1})));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 0, 20, 1));
  EXPECT_EQ(spec.OutputElements(), 0);
}

TEST(Conv2D, NegativeOutputSizeIsAnError) {
  EXPECT_TRUE(InvalidField(
      Make(Conv2DParams{.padding = Padding::kValid}, Operands({1, 3, 3, 1}, {9, 1, 1, 1})),
      "Computed output size would be negative: -5 [input_size: 3, "
      "effective_filter_size: 9, stride: 1]",
      "conv2d.input.shape"));
}

TEST(Conv2D, GroupedConvolution) {
  ASSERT_SPEC(spec,
              Make(Conv2DParams{.padding = Padding::kValid}, Operands({1, 4, 4, 6}, {3, 3, 2, 9})));
  EXPECT_EQ(spec.groups, 3);
  EXPECT_EQ(spec.in_channels, 6);
  EXPECT_EQ(spec.out_channels, 9);
  EXPECT_EQ(spec.FilterElements(), 3 * 3 * 2 * 9);
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 2, 2, 9));
}

TEST(Conv2D, GroupedConvolutionOneChannelPerGroup) {
  ASSERT_SPEC(spec, Make(Conv2DParams{.padding = Padding::kSame, .data_format = "NCHW"},
                         Operands({2, 4, 3, 3}, {1, 1, 1, 8})));
  EXPECT_EQ(spec.groups, 4);
  EXPECT_THAT(spec.result_shape, ElementsAre(2, 8, 3, 3));
}

TEST(Conv2D, ExtraLeadingBatchDimsAreFlattened) {
  ASSERT_SPEC(
      spec, Make(Conv2DParams{.padding = Padding::kSame}, Operands({2, 3, 5, 5, 1}, {3, 3, 1, 2})));
  EXPECT_EQ(spec.batch, 6);
  EXPECT_THAT(spec.input_spatial, ElementsAre(5, 5, 1));
  EXPECT_THAT(spec.result_shape, ElementsAre(2, 3, 5, 5, 2));

  ASSERT_SPEC(nchw, Make(Conv2DParams{.padding = Padding::kValid, .data_format = "NCHW"},
                         Operands({2, 3, 4, 1, 5, 5}, {3, 3, 1, 2})));
  EXPECT_EQ(nchw.batch, 24);
  EXPECT_EQ(nchw.in_channels, 1);
  EXPECT_THAT(nchw.result_shape, ElementsAre(2, 3, 4, 2, 3, 3));
}

TEST(Conv2D, EmptyBatchIsAllowed) {
  ASSERT_SPEC(spec,
              Make(Conv2DParams{.padding = Padding::kSame}, Operands({0, 5, 5, 3}, {3, 3, 3, 8})));
  EXPECT_EQ(spec.batch, 0);
  EXPECT_THAT(spec.result_shape, ElementsAre(0, 5, 5, 8));

  ASSERT_SPEC(flattened, Make(Conv2DParams{.padding = Padding::kSame},
                              Operands({2, 0, 5, 5, 3}, {3, 3, 3, 8})));
  EXPECT_EQ(flattened.batch, 0);
  EXPECT_THAT(flattened.result_shape, ElementsAre(2, 0, 5, 5, 8));
}

TEST(Conv2D, EmptySpatialInputWithSame) {
  ASSERT_SPEC(spec,
              Make(Conv2DParams{.padding = Padding::kSame}, Operands({1, 0, 5, 1}, {3, 3, 1, 1})));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 0, 5, 1));
}

TEST(Conv2D, StridesAndDilationsTogetherAreAccepted) {
  // Only tf.nn.convolution and its wrappers refuse the combination.
  ASSERT_SPEC(spec, Make(Conv2DParams{.strides = {2}, .padding = Padding::kValid, .dilations = {2}},
                         Operands({1, 9, 9, 1}, {2, 2, 1, 1})));
  // eff 3: (9 - 3 + 2) / 2 = 4.
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 4, 4, 1));
}

TEST(Conv2D, DtypeIsCarried) {
  for (DataType dtype : kAllDataTypes) {
    ASSERT_SPEC(spec, Make(Conv2DParams{.padding = Padding::kSame},
                           Operands({1, 3, 3, 1}, {1, 1, 1, 1}, dtype)));
    EXPECT_EQ(spec.dtype, dtype);
  }
}

// ================================================================ conv1d

TEST(Conv1D, NwcUsesDummyHeightOfOne) {
  // W: ceil(10/2) = 5, pad (5-1)*2 + 3 - 10 = 1 -> 0/1.
  ASSERT_SPEC(spec, Make(Conv1DParams{.stride = {2}, .padding = Padding::kSame},
                         Operands({2, 10, 3}, {3, 3, 4})));
  EXPECT_EQ(spec.rank, 2);
  EXPECT_TRUE(spec.channels_last);
  EXPECT_EQ(spec.batch, 2);
  EXPECT_EQ(spec.in_channels, 3);
  EXPECT_EQ(spec.out_channels, 4);
  EXPECT_THAT(spec.input_spatial, ElementsAre(1, 10, 1));
  EXPECT_THAT(spec.filter_spatial, ElementsAre(1, 3, 1));
  EXPECT_THAT(spec.output_spatial, ElementsAre(1, 5, 1));
  EXPECT_THAT(spec.strides, ElementsAre(1, 2, 1));
  EXPECT_THAT(spec.dilations, ElementsAre(1, 1, 1));
  EXPECT_THAT(spec.pad_before, ElementsAre(0, 0, 0));
  EXPECT_THAT(spec.pad_after, ElementsAre(0, 1, 0));
  EXPECT_THAT(spec.result_shape, ElementsAre(2, 5, 4));
}

TEST(Conv1D, NcwFormat) {
  ASSERT_SPEC(spec,
              Make(Conv1DParams{.stride = {2}, .padding = Padding::kSame, .data_format = "NCW"},
                   Operands({2, 3, 10}, {3, 3, 4})));
  EXPECT_FALSE(spec.channels_last);
  EXPECT_THAT(spec.input_spatial, ElementsAre(1, 10, 1));
  EXPECT_THAT(spec.result_shape, ElementsAre(2, 4, 5));
}

TEST(Conv1D, StrideForms) {
  const OperandInfo nwc = Operands({1, 10, 2}, {3, 2, 2});
  ASSERT_SPEC(one, Make(Conv1DParams{.stride = {3}, .padding = Padding::kValid}, nwc));
  ASSERT_SPEC(full, Make(Conv1DParams{.stride = {1, 3, 1}, .padding = Padding::kValid}, nwc));
  EXPECT_EQ(one, full);
  EXPECT_THAT(one.result_shape, ElementsAre(1, 3, 2));  // (10 - 3 + 3) / 3

  const OperandInfo ncw = Operands({1, 2, 10}, {3, 2, 2});
  ASSERT_SPEC(
      ncw_full,
      Make(Conv1DParams{.stride = {1, 1, 3}, .padding = Padding::kValid, .data_format = "NCW"},
           ncw));
  EXPECT_THAT(ncw_full.strides, ElementsAre(1, 3, 1));
  EXPECT_THAT(ncw_full.result_shape, ElementsAre(1, 2, 3));
}

TEST(Conv1D, Dilations) {
  // eff 5: 10 - 5 + 1 = 6.
  ASSERT_SPEC(spec, Make(Conv1DParams{.padding = Padding::kValid, .dilations = {1, 2, 1}},
                         Operands({1, 10, 1}, {3, 1, 1})));
  EXPECT_THAT(spec.dilations, ElementsAre(1, 2, 1));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 6, 1));
}

TEST(Conv1D, AcceptsLegacy2DFormatNames) {
  ASSERT_SPEC(nwc,
              Make(Conv1DParams{.stride = {2}, .padding = Padding::kSame, .data_format = "NWC"},
                   Operands({2, 10, 3}, {3, 3, 4})));
  ASSERT_SPEC(nhwc,
              Make(Conv1DParams{.stride = {2}, .padding = Padding::kSame, .data_format = "NHWC"},
                   Operands({2, 10, 3}, {3, 3, 4})));
  EXPECT_EQ(nwc, nhwc);

  ASSERT_SPEC(ncw,
              Make(Conv1DParams{.stride = {2}, .padding = Padding::kSame, .data_format = "NCW"},
                   Operands({2, 3, 10}, {3, 3, 4})));
  ASSERT_SPEC(nchw,
              Make(Conv1DParams{.stride = {2}, .padding = Padding::kSame, .data_format = "NCHW"},
                   Operands({2, 3, 10}, {3, 3, 4})));
  EXPECT_EQ(ncw, nchw);
  EXPECT_FALSE(nchw.channels_last);
}

TEST(Conv1D, ExtraLeadingBatchDimsAreFlattened) {
  ASSERT_SPEC(spec, Make(Conv1DParams{.stride = {2}, .padding = Padding::kSame},
                         Operands({2, 3, 10, 3}, {3, 3, 4})));
  EXPECT_EQ(spec.batch, 6);
  EXPECT_THAT(spec.input_spatial, ElementsAre(1, 10, 1));
  EXPECT_THAT(spec.result_shape, ElementsAre(2, 3, 5, 4));
}

TEST(Conv1D, Grouped) {
  ASSERT_SPEC(spec, Make(Conv1DParams{.padding = Padding::kValid}, Operands({1, 5, 4}, {1, 2, 6})));
  EXPECT_EQ(spec.groups, 2);
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 5, 6));
}

TEST(Conv1D, EmptyBatch) {
  ASSERT_SPEC(spec, Make(Conv1DParams{.padding = Padding::kValid}, Operands({0, 5, 4}, {2, 4, 6})));
  EXPECT_EQ(spec.batch, 0);
  EXPECT_THAT(spec.result_shape, ElementsAre(0, 4, 6));
}

// ================================================================ conv3d

TEST(Conv3D, NdhwcSameStrided) {
  // D: ceil(4/1) = 4, pad 3 + 2 - 4 = 1 -> 0/1.
  // H: ceil(6/2) = 3, pad 4 + 3 - 6 = 1 -> 0/1.
  // W: ceil(7/3) = 3, pad 6 + 3 - 7 = 2 -> 1/1.
  ASSERT_SPEC(spec, Make(Conv3DParams{.strides = {1, 2, 3}, .padding = Padding::kSame},
                         Operands({1, 4, 6, 7, 2}, {2, 3, 3, 2, 5})));
  EXPECT_EQ(spec.rank, 3);
  EXPECT_TRUE(spec.channels_last);
  EXPECT_EQ(spec.in_channels, 2);
  EXPECT_EQ(spec.out_channels, 5);
  EXPECT_THAT(spec.input_spatial, ElementsAre(4, 6, 7));
  EXPECT_THAT(spec.filter_spatial, ElementsAre(2, 3, 3));
  EXPECT_THAT(spec.output_spatial, ElementsAre(4, 3, 3));
  EXPECT_THAT(spec.strides, ElementsAre(1, 2, 3));
  EXPECT_THAT(spec.pad_before, ElementsAre(0, 0, 1));
  EXPECT_THAT(spec.pad_after, ElementsAre(1, 1, 1));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 4, 3, 3, 5));
}

TEST(Conv3D, NPlus2StridesInDataFormatOrder) {
  const OperandInfo ndhwc = Operands({1, 4, 6, 7, 2}, {2, 3, 3, 2, 5});
  ASSERT_SPEC(n, Make(Conv3DParams{.strides = {1, 2, 3}, .padding = Padding::kSame}, ndhwc));
  ASSERT_SPEC(full,
              Make(Conv3DParams{.strides = {1, 1, 2, 3, 1}, .padding = Padding::kSame}, ndhwc));
  EXPECT_EQ(n, full);

  ASSERT_SPEC(ncdhw, Make(Conv3DParams{.strides = {1, 1, 1, 2, 3},
                                       .padding = Padding::kSame,
                                       .data_format = "NCDHW"},
                          Operands({1, 2, 4, 6, 7}, {2, 3, 3, 2, 5})));
  EXPECT_FALSE(ncdhw.channels_last);
  EXPECT_THAT(ncdhw.strides, ElementsAre(1, 2, 3));
  EXPECT_THAT(ncdhw.result_shape, ElementsAre(1, 5, 4, 3, 3));
}

TEST(Conv3D, DilationsInDataFormatOrder) {
  // D: eff 5 -> 6 - 5 + 1 = 2.
  ASSERT_SPEC(spec, Make(Conv3DParams{.padding = Padding::kValid,
                                      .data_format = "NCDHW",
                                      .dilations = {1, 1, 2, 1, 1}},
                         Operands({1, 1, 6, 6, 6}, {3, 3, 3, 1, 1})));
  EXPECT_THAT(spec.dilations, ElementsAre(2, 1, 1));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 1, 2, 4, 4));
}

TEST(Conv3D, GroupedConvolutionIsAccepted) {
  ASSERT_SPEC(spec, Make(Conv3DParams{.padding = Padding::kValid},
                         Operands({1, 3, 3, 3, 4}, {1, 1, 1, 2, 6})));
  EXPECT_EQ(spec.groups, 2);
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 3, 3, 3, 6));
}

TEST(Conv3D, ExtraLeadingBatchDimsAreFlattened) {
  ASSERT_SPEC(spec, Make(Conv3DParams{.padding = Padding::kValid},
                         Operands({2, 3, 4, 4, 4, 1}, {2, 2, 2, 1, 1})));
  EXPECT_EQ(spec.batch, 6);
  EXPECT_THAT(spec.result_shape, ElementsAre(2, 3, 3, 3, 3, 1));
}

TEST(Conv3D, EmptyBatch) {
  ASSERT_SPEC(spec, Make(Conv3DParams{.padding = Padding::kSame},
                         Operands({0, 4, 4, 4, 1}, {2, 2, 2, 1, 1})));
  EXPECT_EQ(spec.batch, 0);
  EXPECT_THAT(spec.result_shape, ElementsAre(0, 4, 4, 4, 1));
}

TEST(Conv3D, Int32IsRejected) {
  EXPECT_TRUE(Invalid(Make(Conv3DParams{.padding = Padding::kSame},
                           Operands({1, 2, 2, 2, 1}, {1, 1, 1, 1, 1}, DataType::kInt32)),
                      "Value for attr 'T' of int32 is not in the list of allowed values: "
                      "half, bfloat16, float, double"));
}

TEST(Conv3D, ExplicitPaddingIsNotAnOption) {
  EXPECT_TRUE(Invalid(
      Make(Conv3DParams{.padding = Padding::kExplicit}, Operands({1, 2, 2, 2, 1}, {1, 1, 1, 1, 1})),
      "Value for attr 'padding' must be one of \"SAME\", \"VALID\"."));
}

// ================================================================ convolution

TEST(Convolution, SpatialRankComesFromFilterRank) {
  ASSERT_SPEC(one_d,
              Make(ConvolutionParams{.padding = Padding::kValid}, Operands({1, 10, 2}, {3, 2, 4})));
  EXPECT_EQ(one_d.rank, 2);
  EXPECT_THAT(one_d.input_spatial, ElementsAre(1, 10, 1));
  EXPECT_THAT(one_d.result_shape, ElementsAre(1, 8, 4));

  ASSERT_SPEC(two_d, Make(ConvolutionParams{.padding = Padding::kValid},
                          Operands({1, 10, 10, 2}, {3, 3, 2, 4})));
  EXPECT_EQ(two_d.rank, 2);
  EXPECT_THAT(two_d.result_shape, ElementsAre(1, 8, 8, 4));

  ASSERT_SPEC(three_d, Make(ConvolutionParams{.padding = Padding::kValid},
                            Operands({1, 5, 5, 5, 2}, {3, 3, 3, 2, 4})));
  EXPECT_EQ(three_d.rank, 3);
  EXPECT_THAT(three_d.result_shape, ElementsAre(1, 3, 3, 3, 4));
}

TEST(Convolution, SameSpecAsConv2DAndConv1D) {
  const OperandInfo operands = Operands({2, 9, 8, 3}, {3, 2, 3, 6});
  ASSERT_SPEC(conv,
              Make(ConvolutionParams{.strides = {2, 1}, .padding = Padding::kSame}, operands));
  ASSERT_SPEC(conv2d,
              Make(Conv2DParams{.strides = {1, 2, 1, 1}, .padding = Padding::kSame}, operands));
  EXPECT_EQ(conv, conv2d);

  const OperandInfo one_d = Operands({2, 3, 9}, {3, 3, 6});
  ASSERT_SPEC(
      conv_1d,
      Make(ConvolutionParams{.strides = {2}, .padding = Padding::kSame, .data_format = "NCW"},
           one_d));
  ASSERT_SPEC(
      conv1d,
      Make(Conv1DParams{.stride = {2}, .padding = Padding::kSame, .data_format = "NCW"}, one_d));
  EXPECT_EQ(conv_1d, conv1d);
  EXPECT_THAT(conv_1d.result_shape, ElementsAre(2, 6, 5));
}

TEST(Convolution, ExplicitPadding3D) {
  // D: 3 + 1 + 0 - 2 + 1 = 3; H: 3 + 0 + 2 - 2 + 1 = 4; W: 3 + 1 + 1 - 2 + 1 = 4.
  ASSERT_SPEC(spec, Make(ConvolutionParams{.padding = Padding::kExplicit,
                                           .explicit_paddings = {0, 0, 1, 0, 0, 2, 1, 1, 0, 0}},
                         Operands({1, 3, 3, 3, 1}, {2, 2, 2, 1, 1})));
  EXPECT_THAT(spec.pad_before, ElementsAre(1, 0, 1));
  EXPECT_THAT(spec.pad_after, ElementsAre(0, 2, 1));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 3, 4, 4, 1));
}

TEST(Convolution, ExplicitPadding1DUsesDummyHeight) {
  ASSERT_SPEC(spec, Make(ConvolutionParams{.padding = Padding::kExplicit,
                                           .explicit_paddings = {0, 0, 0, 0, 2, 1},
                                           .data_format = "NCW"},
                         Operands({1, 1, 5}, {3, 1, 1})));
  EXPECT_THAT(spec.pad_before, ElementsAre(0, 2, 0));
  EXPECT_THAT(spec.pad_after, ElementsAre(0, 1, 0));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 1, 6));
}

TEST(Convolution, ExtraLeadingBatchDimsAreFlattened) {
  ASSERT_SPEC(spec, Make(ConvolutionParams{.padding = Padding::kSame},
                         Operands({3, 2, 4, 4, 1}, {3, 3, 1, 1})));
  EXPECT_EQ(spec.batch, 6);
  EXPECT_THAT(spec.result_shape, ElementsAre(3, 2, 4, 4, 1));
}

TEST(Convolution, FilterRankOutOfRange) {
  EXPECT_TRUE(Invalid(Make(ConvolutionParams{.padding = Padding::kSame},
                           Operands({1, 2, 2, 2, 2, 1}, {1, 1, 1, 1, 1, 1})),
                      "filters must be of rank 3, 4 or 5 but was 6"));
  EXPECT_TRUE(Invalid(Make(ConvolutionParams{.padding = Padding::kSame}, Operands({1, 2}, {1, 1})),
                      "filters must be of rank 3, 4 or 5 but was 2"));
}

// ================================================================ depthwise_conv2d

TEST(DepthwiseConv2D, GroupsEqualChannelsAndOutputIsCTimesM) {
  // ceil(5/2) = 3, pad 2*2 + 3 - 5 = 2 -> 1/1.
  ASSERT_SPEC(spec, Make(DepthwiseConv2DParams{.strides = {1, 2, 2, 1}, .padding = Padding::kSame},
                         Operands({1, 5, 5, 3}, {3, 3, 3, 2})));
  EXPECT_EQ(spec.groups, 3);
  EXPECT_EQ(spec.in_channels, 3);
  EXPECT_EQ(spec.out_channels, 6);
  EXPECT_EQ(spec.FilterElements(), 3 * 3 * 3 * 2);
  EXPECT_THAT(spec.pad_before, ElementsAre(1, 1, 0));
  EXPECT_THAT(spec.pad_after, ElementsAre(1, 1, 0));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 3, 3, 6));
}

TEST(DepthwiseConv2D, SameAsGroupedConv2DWithOneInputChannelPerGroup) {
  ASSERT_SPEC(depthwise, Make(DepthwiseConv2DParams{.padding = Padding::kValid},
                              Operands({2, 6, 6, 4}, {3, 3, 4, 3})));
  ASSERT_SPEC(grouped, Make(Conv2DParams{.padding = Padding::kValid},
                            Operands({2, 6, 6, 4}, {3, 3, 1, 12})));
  EXPECT_EQ(depthwise, grouped);
}

TEST(DepthwiseConv2D, Nchw) {
  ASSERT_SPEC(spec, Make(DepthwiseConv2DParams{.strides = {1, 1, 2, 2},
                                               .padding = Padding::kSame,
                                               .data_format = "NCHW"},
                         Operands({1, 3, 5, 5}, {3, 3, 3, 2})));
  EXPECT_FALSE(spec.channels_last);
  EXPECT_EQ(spec.groups, 3);
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 6, 3, 3));
}

TEST(DepthwiseConv2D, DilationsAreTheRate) {
  ASSERT_SPEC(spec, Make(DepthwiseConv2DParams{.padding = Padding::kValid, .dilations = {2, 2}},
                         Operands({1, 7, 7, 2}, {3, 3, 2, 1})));
  EXPECT_THAT(spec.dilations, ElementsAre(2, 2, 1));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 3, 3, 2));
}

TEST(DepthwiseConv2D, ExplicitPadding) {
  ASSERT_SPEC(spec, Make(DepthwiseConv2DParams{.padding = Padding::kExplicit,
                                               .explicit_paddings = {0, 0, 1, 1, 0, 2, 0, 0}},
                         Operands({1, 4, 4, 2}, {3, 3, 2, 1})));
  EXPECT_THAT(spec.pad_before, ElementsAre(1, 0, 0));
  EXPECT_THAT(spec.pad_after, ElementsAre(1, 2, 0));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 4, 4, 2));
}

TEST(DepthwiseConv2D, EmptyBatch) {
  ASSERT_SPEC(spec, Make(DepthwiseConv2DParams{.padding = Padding::kSame},
                         Operands({0, 4, 4, 2}, {3, 3, 2, 2})));
  EXPECT_THAT(spec.result_shape, ElementsAre(0, 4, 4, 4));
}

TEST(DepthwiseConv2D, RejectsExtraBatchDims) {
  EXPECT_TRUE(InvalidField(Make(DepthwiseConv2DParams{.padding = Padding::kSame},
                                Operands({2, 1, 4, 4, 2}, {3, 3, 2, 2})),
                           "convolution input must be 4-dimensional: [2,1,4,4,2]",
                           "depthwise_conv2d.input.shape"));
}

// ================================================================ separable_conv2d

TEST(SeparableConv2D, PointwiseAfterDepthwise) {
  // Depthwise: (8 - 3 + 2) / 2 = 3, 3 * 2 = 6 channels; pointwise 6 -> 10.
  ASSERT_SPEC(spec, Make(SeparableConv2DParams{.strides = {1, 2, 2, 1}, .padding = Padding::kValid},
                         SeparableOperands({2, 8, 8, 3}, {3, 3, 3, 2}, {1, 1, 6, 10})));
  EXPECT_EQ(spec.groups, 3);
  EXPECT_EQ(spec.in_channels, 3);
  EXPECT_EQ(spec.out_channels, 6);
  EXPECT_EQ(spec.pointwise_out_channels, 10);
  EXPECT_EQ(spec.pointwise_groups, 1);
  EXPECT_EQ(spec.ResultChannels(), 10);
  EXPECT_THAT(spec.output_spatial, ElementsAre(3, 3, 1));
  EXPECT_THAT(spec.strides, ElementsAre(2, 2, 1));
  EXPECT_THAT(spec.result_shape, ElementsAre(2, 3, 3, 10));
}

TEST(SeparableConv2D, GroupedPointwise) {
  ASSERT_SPEC(spec, Make(SeparableConv2DParams{.padding = Padding::kSame},
                         SeparableOperands({1, 4, 4, 3}, {3, 3, 3, 2}, {1, 1, 3, 10})));
  EXPECT_EQ(spec.pointwise_groups, 2);
  EXPECT_EQ(spec.pointwise_out_channels, 10);
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 4, 4, 10));
}

TEST(SeparableConv2D, Nchw) {
  ASSERT_SPEC(spec, Make(SeparableConv2DParams{.strides = {1, 1, 2, 2},
                                               .padding = Padding::kValid,
                                               .data_format = "NCHW"},
                         SeparableOperands({2, 3, 8, 8}, {3, 3, 3, 2}, {1, 1, 6, 10})));
  EXPECT_FALSE(spec.channels_last);
  EXPECT_THAT(spec.result_shape, ElementsAre(2, 10, 3, 3));
}

TEST(SeparableConv2D, Dilations) {
  ASSERT_SPEC(spec, Make(SeparableConv2DParams{.padding = Padding::kSame, .dilations = {3}},
                         SeparableOperands({1, 6, 6, 1}, {2, 2, 1, 1}, {1, 1, 1, 1})));
  // eff 4, pad 3 -> 1/2.
  EXPECT_THAT(spec.pad_before, ElementsAre(1, 1, 0));
  EXPECT_THAT(spec.pad_after, ElementsAre(2, 2, 0));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 6, 6, 1));
}

TEST(SeparableConv2D, PointwiseErrors) {
  const SeparableConv2DParams params{.padding = Padding::kValid};
  EXPECT_TRUE(
      InvalidField(Make(params, SeparableOperands({1, 4, 4, 3}, {3, 3, 3, 2}, {1, 1, 4, 10})),
                   "input depth must be evenly divisible by filter depth: 6 vs 4",
                   "separable_conv2d.pointwise_filter.shape"));
  EXPECT_TRUE(
      InvalidField(Make(params, SeparableOperands({1, 4, 4, 3}, {3, 3, 3, 2}, {1, 1, 3, 5})),
                   "output depth must be evenly divisible by number of groups: 5 vs 2",
                   "separable_conv2d.pointwise_filter.shape"));
  EXPECT_TRUE(Invalid(Make(params, SeparableOperands({1, 4, 4, 3}, {3, 3, 3, 2}, {3, 3, 6, 10})),
                      "pointwise_filter must have shape [1, 1, in_channels * "
                      "channel_multiplier, out_channels] but has [3,3,6,10]"));
  EXPECT_TRUE(Invalid(Make(params, SeparableOperands({1, 4, 4, 3}, {3, 3, 3, 2}, {1, 1, 6})),
                      "pointwise_filter must have shape"));
  EXPECT_TRUE(
      InvalidField(Make(params, SeparableOperands({1, 4, 4, 3}, {3, 3, 3, 2}, {1, 1, 6, 0})),
                   "filter must not have zero elements (i.e. all dimensions must be "
                   "non-zero)",
                   "separable_conv2d.pointwise_filter.shape"));
  EXPECT_TRUE(Invalid(Make(params, Operands({1, 4, 4, 3}, {3, 3, 3, 2})),
                      "separable_conv2d needs a pointwise_filter"));

  OperandInfo double_pointwise = SeparableOperands({1, 4, 4, 3}, {3, 3, 3, 2}, {1, 1, 6, 1});
  double_pointwise.pointwise_filter->dtype = DataType::kFloat64;
  EXPECT_TRUE(InvalidField(Make(params, double_pointwise),
                           "cannot compute Conv2D as input #1(zero-based) was expected to be a "
                           "float tensor but is a double tensor",
                           "separable_conv2d.pointwise_filter"));
}

// ================================================================ atrous_conv2d

TEST(AtrousConv2D, DilationsEqualRateAndStrideOne) {
  // eff 5: SAME pad 4 -> 2/2.
  ASSERT_SPEC(spec, Make(AtrousConv2DParams{.rate = 2, .padding = Padding::kSame},
                         Operands({1, 10, 10, 2}, {3, 3, 2, 4})));
  EXPECT_THAT(spec.dilations, ElementsAre(2, 2, 1));
  EXPECT_THAT(spec.strides, ElementsAre(1, 1, 1));
  EXPECT_THAT(spec.pad_before, ElementsAre(2, 2, 0));
  EXPECT_THAT(spec.pad_after, ElementsAre(2, 2, 0));
  EXPECT_TRUE(spec.channels_last);
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 10, 10, 4));

  ASSERT_SPEC(valid, Make(AtrousConv2DParams{.rate = 2, .padding = Padding::kValid},
                          Operands({1, 10, 10, 2}, {3, 3, 2, 4})));
  EXPECT_THAT(valid.result_shape, ElementsAre(1, 6, 6, 4));
}

TEST(AtrousConv2D, SameSpecAsDilatedConv2D) {
  const OperandInfo operands = Operands({2, 11, 9, 2}, {3, 2, 2, 4});
  ASSERT_SPEC(atrous, Make(AtrousConv2DParams{.rate = 3, .padding = Padding::kSame}, operands));
  ASSERT_SPEC(conv2d, Make(Conv2DParams{.padding = Padding::kSame, .dilations = {3}}, operands));
  EXPECT_EQ(atrous, conv2d);

  ASSERT_SPEC(rate_one, Make(AtrousConv2DParams{.rate = 1, .padding = Padding::kValid}, operands));
  ASSERT_SPEC(plain, Make(Conv2DParams{.padding = Padding::kValid}, operands));
  EXPECT_EQ(rate_one, plain);
}

TEST(AtrousConv2D, RateBelowOne) {
  const OperandInfo operands = Operands({1, 5, 5, 1}, {3, 3, 1, 1});
  EXPECT_TRUE(InvalidField(Make(AtrousConv2DParams{.rate = 0, .padding = Padding::kSame}, operands),
                           "rate 0 cannot be less than one", "atrous_conv2d.rate"));
  EXPECT_TRUE(
      InvalidField(Make(AtrousConv2DParams{.rate = -3, .padding = Padding::kSame}, operands),
                   "rate -3 cannot be less than one", "atrous_conv2d.rate"));
}

TEST(AtrousConv2D, RejectsExplicitPaddingAndExtraBatchDims) {
  EXPECT_TRUE(Invalid(Make(AtrousConv2DParams{.rate = 2, .padding = Padding::kExplicit},
                           Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
                      "Value for attr 'padding' must be one of \"SAME\", \"VALID\"."));
  EXPECT_TRUE(Invalid(Make(AtrousConv2DParams{.rate = 2, .padding = Padding::kSame},
                           Operands({2, 1, 5, 5, 1}, {3, 3, 1, 1})),
                      "convolution input must be 4-dimensional: [2,1,5,5,1]"));
}

// ================================================================ transposed

TEST(ConvTranspose, Conv2DTransposeSpec) {
  // Forward from x [1,6,6,2]: ceil(6/2) = 3, pad 2*2 + 3 - 6 = 1 -> 0/1.
  ASSERT_SPEC(spec, Make(ConvTransposeParams{.rank = 2,
                                             .output_shape = {1, 6, 6, 2},
                                             .strides = {2},
                                             .padding = Padding::kSame},
                         Operands({1, 3, 3, 4}, {3, 3, 2, 4})));
  EXPECT_TRUE(spec.transposed);
  EXPECT_EQ(spec.rank, 2);
  EXPECT_EQ(spec.batch, 1);
  EXPECT_EQ(spec.in_channels, 2);
  EXPECT_EQ(spec.out_channels, 4);
  EXPECT_EQ(spec.groups, 1);
  EXPECT_THAT(spec.input_spatial, ElementsAre(6, 6, 1));
  EXPECT_THAT(spec.filter_spatial, ElementsAre(3, 3, 1));
  EXPECT_THAT(spec.output_spatial, ElementsAre(3, 3, 1));
  EXPECT_THAT(spec.strides, ElementsAre(2, 2, 1));
  EXPECT_THAT(spec.pad_before, ElementsAre(0, 0, 0));
  EXPECT_THAT(spec.pad_after, ElementsAre(1, 1, 0));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 6, 6, 2));
  EXPECT_EQ(spec.ResultChannels(), 2);
}

TEST(ConvTranspose, ConvTransposePicksRankFromOutputShape) {
  const OperandInfo two_d = Operands({1, 3, 3, 4}, {3, 3, 2, 4});
  ASSERT_SPEC(generic, Make(ConvTransposeParams{.rank = 0,
                                                .output_shape = {1, 6, 6, 2},
                                                .strides = {2},
                                                .padding = Padding::kSame},
                            two_d));
  ASSERT_SPEC(conv2d_t, Make(ConvTransposeParams{.rank = 2,
                                                 .output_shape = {1, 6, 6, 2},
                                                 .strides = {2},
                                                 .padding = Padding::kSame},
                             two_d));
  EXPECT_EQ(generic, conv2d_t);

  ASSERT_SPEC(one_d, Make(ConvTransposeParams{.rank = 0,
                                              .output_shape = {2, 7, 3},
                                              .strides = {2},
                                              .padding = Padding::kValid},
                          Operands({2, 3, 5}, {3, 3, 5})));
  EXPECT_EQ(one_d.rank, 2);
  EXPECT_THAT(one_d.input_spatial, ElementsAre(1, 7, 1));
  EXPECT_THAT(one_d.output_spatial, ElementsAre(1, 3, 1));
  EXPECT_THAT(one_d.strides, ElementsAre(1, 2, 1));
  EXPECT_THAT(one_d.result_shape, ElementsAre(2, 7, 3));

  ASSERT_SPEC(three_d, Make(ConvTransposeParams{.rank = 0,
                                                .output_shape = {1, 4, 4, 4, 1},
                                                .padding = Padding::kSame},
                            Operands({1, 4, 4, 4, 2}, {3, 3, 3, 1, 2})));
  EXPECT_EQ(three_d.rank, 3);
  EXPECT_THAT(three_d.result_shape, ElementsAre(1, 4, 4, 4, 1));
}

TEST(ConvTranspose, Conv3DTransposeSpec) {
  ASSERT_SPEC(spec, Make(ConvTransposeParams{.rank = 3,
                                             .output_shape = {2, 4, 6, 8, 3},
                                             .strides = {1, 2, 2},
                                             .padding = Padding::kValid},
                         Operands({2, 2, 2, 3, 5}, {3, 3, 3, 3, 5})));
  EXPECT_TRUE(spec.transposed);
  EXPECT_EQ(spec.rank, 3);
  EXPECT_THAT(spec.input_spatial, ElementsAre(4, 6, 8));
  EXPECT_THAT(spec.output_spatial, ElementsAre(2, 2, 3));
  EXPECT_THAT(spec.result_shape, ElementsAre(2, 4, 6, 8, 3));
}

TEST(ConvTranspose, GroupedTranspose) {
  // x channels 4, filter in-depth 2 -> 2 groups; filter out 6 -> y channels 6.
  ASSERT_SPEC(
      spec,
      Make(ConvTransposeParams{.rank = 2, .output_shape = {1, 3, 3, 4}, .padding = Padding::kSame},
           Operands({1, 3, 3, 6}, {1, 1, 2, 6})));
  EXPECT_EQ(spec.groups, 2);
  EXPECT_EQ(spec.in_channels, 4);
  EXPECT_EQ(spec.out_channels, 6);
}

TEST(ConvTranspose, EmptyBatch) {
  ASSERT_SPEC(spec, Make(ConvTransposeParams{.rank = 2,
                                             .output_shape = {0, 6, 6, 2},
                                             .strides = {2},
                                             .padding = Padding::kSame},
                         Operands({0, 3, 3, 4}, {3, 3, 2, 4})));
  EXPECT_EQ(spec.batch, 0);
  EXPECT_THAT(spec.result_shape, ElementsAre(0, 6, 6, 2));
}

// ================================================================ output cap

TEST(OutputCap, DefaultLimit) {
  // 1000 * 1000 * 300 = 3e8 > 2^28.
  EXPECT_TRUE(FailsWith(
      Make(Conv2DParams{.padding = Padding::kSame}, Operands({1, 1000, 1000, 1}, {1, 1, 1, 300})),
      absl::StatusCode::kResourceExhausted, "The result would have 300000000"));
  // 1000 * 1000 * 268 is under the limit.
  EXPECT_TRUE(
      Make(Conv2DParams{.padding = Padding::kSame}, Operands({1, 1000, 1000, 1}, {1, 1, 1, 268}))
          .ok());
}

TEST(OutputCap, ExactlyAtTheLimitIsAllowed) {
  const OperandInfo operands = Operands({1, 10, 10, 1}, {1, 1, 1, 1});
  EXPECT_TRUE(Make(Conv2DParams{.padding = Padding::kSame}, operands, 100).ok());
  EXPECT_TRUE(FailsWith(Make(Conv2DParams{.padding = Padding::kSame}, operands, 99),
                        absl::StatusCode::kResourceExhausted,
                        "The result would have 100 elements, more than this server's "
                        "max_output_elements of 99"));
}

TEST(OutputCap, AppliesToTransposedResult) {
  EXPECT_TRUE(FailsWith(
      Make(
          ConvTransposeParams{
              .rank = 2, .output_shape = {1, 6, 6, 2}, .strides = {2}, .padding = Padding::kSame},
          Operands({1, 3, 3, 4}, {3, 3, 2, 4}), 71),
      absl::StatusCode::kResourceExhausted, "The result would have 72"));
}

TEST(OutputCap, AppliesToSeparableIntermediate) {
  // Result 10*10*1 = 100, depthwise intermediate 10*10*50 = 5000.
  const OperandInfo operands = SeparableOperands({1, 10, 10, 1}, {1, 1, 1, 50}, {1, 1, 50, 1});
  EXPECT_TRUE(Make(SeparableConv2DParams{.padding = Padding::kValid}, operands, 5000).ok());
  EXPECT_TRUE(FailsWith(Make(SeparableConv2DParams{.padding = Padding::kValid}, operands, 4999),
                        absl::StatusCode::kResourceExhausted,
                        "The depthwise intermediate would have 5000"));
}

TEST(OutputCap, HugeShapesAreRejectedWithoutOverflow) {
  // The input is a valid shape (2^62 elements), the result overflows int64.
  const int64_t big = int64_t{1} << 31;
  absl::StatusOr<ConvSpec> overflow =
      Make(Conv2DParams{.padding = Padding::kValid}, Operands({1, big, big, 1}, {1, 1, 1, 4}));
  ASSERT_FALSE(overflow.ok());
  EXPECT_TRUE(overflow.status().code() == absl::StatusCode::kInvalidArgument ||
              overflow.status().code() == absl::StatusCode::kResourceExhausted)
      << overflow.status();

  EXPECT_TRUE(Invalid(
      Make(Conv2DParams{.padding = Padding::kValid}, Operands({kMax, kMax, 1, 1}, {1, 1, 1, 1})),
      "Shape [9223372036854775807,9223372036854775807,1,1] has too many"));
  EXPECT_TRUE(FailsWith(
      Make(Conv2DParams{.padding = Padding::kValid}, Operands({1, 1, 1, 1}, {1, 1, 1, kMax})),
      absl::StatusCode::kResourceExhausted, "The result would have 9223372036854775807 elements"));
  EXPECT_TRUE(FailsWith(
      Make(Conv2DParams{.padding = Padding::kSame}, Operands({1, kMax, 1, 1}, {3, 1, 1, 1})),
      absl::StatusCode::kResourceExhausted, "The result would have"));
  EXPECT_TRUE(Invalid(Make(Conv2DParams{.padding = Padding::kValid, .dilations = {kMax}},
                           Operands({1, 5, 5, 1}, {2, 2, 1, 1})),
                      ""));
  EXPECT_TRUE(Invalid(
      Make(Conv2DParams{.padding = Padding::kSame}, Operands({1, -5, 5, 1}, {2, 2, 1, 1})), ""));
}

// ================================================================ bias and activation

TEST(Epilogue, BiasAndActivationAreRecorded) {
  ASSERT_SPEC(spec, Make(Conv2DParams{.padding = Padding::kSame},
                         WithActivation(WithBias(Operands({1, 3, 3, 2}, {1, 1, 2, 8}), {8}),
                                        Activation::kRelu6)));
  EXPECT_TRUE(spec.has_bias);
  EXPECT_EQ(spec.activation, Activation::kRelu6);
}

TEST(Epilogue, BiasLengthIsTheResultChannelCount) {
  // NCHW: channels are dimension 1 of the result.
  EXPECT_TRUE(Make(Conv2DParams{.padding = Padding::kSame, .data_format = "NCHW"},
                   WithBias(Operands({1, 2, 3, 3}, {1, 1, 2, 8}), {8}))
                  .ok());
  // Depthwise: C * M.
  EXPECT_TRUE(Make(DepthwiseConv2DParams{.padding = Padding::kSame},
                   WithBias(Operands({1, 3, 3, 2}, {1, 1, 2, 3}), {6}))
                  .ok());
  // Separable: the pointwise output channels.
  OperandInfo separable = SeparableOperands({1, 4, 4, 3}, {3, 3, 3, 2}, {1, 1, 6, 10});
  EXPECT_TRUE(
      Make(SeparableConv2DParams{.padding = Padding::kSame}, WithBias(separable, {10})).ok());
  EXPECT_TRUE(
      Invalid(Make(SeparableConv2DParams{.padding = Padding::kSame}, WithBias(separable, {6})),
              "Must provide as many biases as the channel dimension"));
  // Transposed: the channels of output_shape.
  const ConvTransposeParams transpose{
      .rank = 2, .output_shape = {1, 6, 6, 2}, .strides = {2}, .padding = Padding::kSame};
  EXPECT_TRUE(Make(transpose, WithBias(Operands({1, 3, 3, 4}, {3, 3, 2, 4}), {2})).ok());
  EXPECT_TRUE(Invalid(Make(transpose, WithBias(Operands({1, 3, 3, 4}, {3, 3, 2, 4}), {4})),
                      "Must provide as many biases as the channel dimension of the output tensor: "
                      "[4] vs. [1,6,6,2]"));
}

TEST(Epilogue, BiasErrors) {
  const Conv2DParams params{.padding = Padding::kValid};
  const OperandInfo operands = Operands({1, 5, 5, 2}, {3, 3, 2, 8});
  EXPECT_TRUE(InvalidField(
      Make(params, WithBias(operands, {5})),
      "Must provide as many biases as the channel dimension of the output tensor: [5] vs. "
      "[1,3,3,8]",
      "conv2d.bias.shape"));
  EXPECT_TRUE(InvalidField(Make(params, WithBias(operands, {1, 8})), "Biases must be 1D: [1,8]",
                           "conv2d.bias.shape"));
  EXPECT_TRUE(InvalidField(Make(params, WithBias(operands, {8}, DataType::kFloat64)),
                           "cannot compute BiasAdd as input #1(zero-based) was expected to be a "
                           "float tensor but is a double tensor",
                           "conv2d.bias"));
}

TEST(Epilogue, Int32Activations) {
  const Conv2DParams params{.padding = Padding::kValid};
  const OperandInfo operands = Operands({1, 3, 3, 1}, {1, 1, 1, 1}, DataType::kInt32);
  for (Activation ok : {Activation::kNone, Activation::kRelu, Activation::kRelu6}) {
    EXPECT_TRUE(Make(params, WithActivation(operands, ok)).ok());
  }
  for (Activation bad :
       {Activation::kElu, Activation::kLeakyRelu, Activation::kSigmoid, Activation::kTanh}) {
    EXPECT_TRUE(InvalidField(Make(params, WithActivation(operands, bad)),
                             "Value for attr 'T' of int32 is not in the list of allowed "
                             "values: half, bfloat16, float, double",
                             "conv2d.activation"));
  }
}

// ================================================================ result elements

TEST(ConvSpecResultElements, ProductOfResultShape) {
  // Forward: the result is y.
  ASSERT_SPEC(forward, Make(Conv2DParams{.strides = {1, 2, 2, 1}, .padding = Padding::kSame},
                            Operands({2, 6, 7, 3}, {3, 3, 3, 8})));
  EXPECT_THAT(forward.result_shape, ElementsAre(2, 3, 4, 8));
  EXPECT_EQ(forward.ResultElements(), 2 * 3 * 4 * 8);
  EXPECT_EQ(forward.ResultElements(), forward.OutputElements());

  // Separable: the pointwise result, not the depthwise y.
  ASSERT_SPEC(separable,
              Make(SeparableConv2DParams{.strides = {1, 2, 2, 1}, .padding = Padding::kValid},
                   SeparableOperands({2, 8, 8, 3}, {3, 3, 3, 2}, {1, 1, 6, 10})));
  EXPECT_EQ(separable.ResultElements(), 2 * 3 * 3 * 10);
  EXPECT_EQ(separable.OutputElements(), 2 * 3 * 3 * 6);

  // Transposed: the result is x.
  ASSERT_SPEC(transposed, Make(ConvTransposeParams{.rank = 2,
                                                   .output_shape = {1, 6, 6, 2},
                                                   .strides = {2},
                                                   .padding = Padding::kSame},
                               Operands({1, 3, 3, 4}, {3, 3, 2, 4})));
  EXPECT_EQ(transposed.ResultElements(), 1 * 6 * 6 * 2);
  EXPECT_EQ(transposed.ResultElements(), transposed.InputElements());

  // Leading batch dimensions, as the client sent them.
  ASSERT_SPEC(nchw, Make(Conv2DParams{.padding = Padding::kValid, .data_format = "NCHW"},
                         Operands({2, 3, 4, 1, 5, 5}, {3, 3, 1, 2})));
  EXPECT_EQ(nchw.ResultElements(), 2 * 3 * 4 * 2 * 3 * 3);
}

TEST(ConvSpecResultElements, EmptyResult) {
  ASSERT_SPEC(empty_batch,
              Make(Conv2DParams{.padding = Padding::kSame}, Operands({0, 5, 5, 3}, {3, 3, 3, 8})));
  EXPECT_EQ(empty_batch.ResultElements(), 0);
  ASSERT_SPEC(empty_spatial, Make(Conv2DParams{.padding = Padding::kValid},
                                  Operands({1, 20, 20, 1}, {21, 1, 1, 1})));
  EXPECT_EQ(empty_spatial.ResultElements(), 0);
  // No result shape at all is a scalar's: one element.
  EXPECT_EQ(ConvSpec{}.ResultElements(), 1);
}

// Found by fuzz_conv_request: an empty tensor's other dimensions may be huge,
// and the element counts multiplied them before the 0 (signed overflow).
TEST(ConvSpecResultElements, EmptyTensorsWithHugeDimensions) {
  const int64_t big = (int64_t{1} << 62) + 1;
  ASSERT_SPEC(spec, Make(Conv2DParams{.padding = Padding::kValid, .data_format = "NCHW"},
                         Operands({0, 3, big, 4}, {3, 2, 3, 3})));
  EXPECT_THAT(spec.result_shape, ElementsAre(0, 3, big - 2, 3));
  EXPECT_EQ(spec.InputElements(), 0);
  EXPECT_EQ(spec.OutputElements(), 0);
  EXPECT_EQ(spec.ResultElements(), 0);
  EXPECT_EQ(spec.FilterElements(), 3 * 2 * 3 * 3);
  // Transposed: x is the result, y the input; both empty, both huge.
  ASSERT_SPEC(transposed, Make(ConvTransposeParams{.rank = 2,
                                                   .output_shape = {0, kMax - 1, kMax - 1, 2},
                                                   .padding = Padding::kSame},
                               Operands({0, kMax - 1, kMax - 1, 3}, {1, 1, 2, 3})));
  EXPECT_EQ(transposed.InputElements(), 0);
  EXPECT_EQ(transposed.OutputElements(), 0);
  EXPECT_EQ(transposed.ResultElements(), 0);
  // 3-D with the zero first and two huge dimensions after it.
  ASSERT_SPEC(deep, Make(Conv3DParams{.padding = Padding::kValid},
                         Operands({1, 0, kMax, kMax, 1}, {1, 1, 1, 1, 1})));
  EXPECT_EQ(deep.InputElements(), 0);
  EXPECT_EQ(deep.OutputElements(), 0);
}

// ================================================================ hash and equality

TEST(ConvSpecHash, EqualSpecsHashEqual) {
  const OperandInfo operands = Operands({2, 9, 9, 3}, {3, 3, 3, 6});
  ASSERT_SPEC(a, Make(Conv2DParams{.strides = {2}, .padding = Padding::kSame}, operands));
  ASSERT_SPEC(b, Make(Conv2DParams{.strides = {1, 2, 2, 1}, .padding = Padding::kSame}, operands));
  ASSERT_SPEC(c, Make(ConvolutionParams{.strides = {2, 2}, .padding = Padding::kSame}, operands));
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  EXPECT_EQ(absl::Hash<ConvSpec>{}(a), absl::Hash<ConvSpec>{}(b));
  EXPECT_EQ(absl::Hash<ConvSpec>{}(a), absl::Hash<ConvSpec>{}(c));
}

TEST(ConvSpecHash, DifferentSpecsDiffer) {
  const Conv2DParams base{.strides = {2}, .padding = Padding::kSame};
  const OperandInfo operands = Operands({2, 9, 9, 3}, {3, 3, 3, 6});
  std::vector<ConvSpec> specs;
  auto add = [&specs](const absl::StatusOr<ConvSpec>& spec) {
    ASSERT_TRUE(spec.ok()) << spec.status();
    specs.push_back(*spec);
  };
  add(Make(base, operands));
  add(Make(Conv2DParams{.strides = {1}, .padding = Padding::kSame}, operands));
  add(Make(Conv2DParams{.strides = {2}, .padding = Padding::kValid}, operands));
  add(Make(Conv2DParams{.strides = {2, 1}, .padding = Padding::kSame}, operands));
  add(Make(base, Operands({2, 9, 9, 3}, {3, 3, 3, 6}, DataType::kFloat64)));
  add(Make(base, Operands({3, 9, 9, 3}, {3, 3, 3, 6})));
  add(Make(base, Operands({2, 9, 9, 3}, {3, 3, 1, 6})));
  add(Make(base, Operands({2, 9, 9, 3}, {3, 3, 3, 7})));
  add(Make(base, WithBias(operands, {6})));
  add(Make(base, WithActivation(operands, Activation::kRelu)));
  add(Make(Conv2DParams{.strides = {2}, .padding = Padding::kSame, .data_format = "NCHW"},
           Operands({2, 3, 9, 9}, {3, 3, 3, 6})));
  add(Make(Conv2DParams{.padding = Padding::kSame, .dilations = {2}}, operands));
  ASSERT_EQ(specs.size(), 12u);
  for (size_t i = 0; i < specs.size(); ++i) {
    for (size_t j = i + 1; j < specs.size(); ++j) {
      SCOPED_TRACE(testing::Message()
                   << specs[i].DebugString() << " vs " << specs[j].DebugString());
      EXPECT_FALSE(specs[i] == specs[j]);
      EXPECT_NE(absl::Hash<ConvSpec>{}(specs[i]), absl::Hash<ConvSpec>{}(specs[j]));
    }
  }
}

// ================================================================ TF_SEMANTICS section 4
// Every validation message, each from a request that triggers exactly it.

TEST(Section4Errors, StridesOnBatchOrChannel) {
  const std::string message =
      "Current implementation does not yet support strides in the batch and depth "
      "dimensions.";
  const OperandInfo nhwc = Operands({1, 5, 5, 1}, {3, 3, 1, 1});
  EXPECT_TRUE(
      InvalidField(Make(Conv2DParams{.strides = {2, 1, 1, 1}, .padding = Padding::kSame}, nhwc),
                   message, "conv2d.strides"));
  EXPECT_TRUE(
      InvalidField(Make(Conv2DParams{.strides = {1, 1, 1, 2}, .padding = Padding::kSame}, nhwc),
                   message, "conv2d.strides"));
  // NCHW: the channel is position 1, so [1, 1, 1, 2] is a W stride but [1, 2, 1, 1] is not.
  const OperandInfo nchw = Operands({1, 1, 5, 5}, {3, 3, 1, 1});
  EXPECT_TRUE(
      Make(Conv2DParams{.strides = {1, 1, 1, 2}, .padding = Padding::kSame, .data_format = "NCHW"},
           nchw)
          .ok());
  EXPECT_TRUE(Invalid(
      Make(Conv2DParams{.strides = {1, 2, 1, 1}, .padding = Padding::kSame, .data_format = "NCHW"},
           nchw),
      message));
  EXPECT_TRUE(InvalidField(Make(Conv3DParams{.strides = {1, 1, 1, 1, 2}, .padding = Padding::kSame},
                                Operands({1, 2, 2, 2, 1}, {1, 1, 1, 1, 1})),
                           message, "conv3d.strides"));
  EXPECT_TRUE(InvalidField(Make(Conv1DParams{.stride = {1, 1, 2}, .padding = Padding::kSame},
                                Operands({1, 5, 1}, {1, 1, 1})),
                           message, "conv1d.stride"));
  EXPECT_TRUE(Invalid(Make(ConvTransposeParams{.rank = 2,
                                               .output_shape = {1, 4, 4, 1},
                                               .strides = {2, 1, 1, 1},
                                               .padding = Padding::kSame},
                           Operands({1, 4, 4, 1}, {1, 1, 1, 1})),
                      message));
}

TEST(Section4Errors, DilationsOnBatchOrChannel) {
  const std::string message =
      "Current implementation does not yet support dilations in the batch and depth "
      "dimensions.";
  EXPECT_TRUE(InvalidField(Make(Conv2DParams{.padding = Padding::kSame, .dilations = {1, 1, 1, 2}},
                                Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
                           message, "conv2d.dilations"));
  EXPECT_TRUE(InvalidField(
      Make(
          Conv2DParams{.padding = Padding::kSame, .data_format = "NCHW", .dilations = {1, 2, 1, 1}},
          Operands({1, 1, 5, 5}, {3, 3, 1, 1})),
      message, "conv2d.dilations"));
  EXPECT_TRUE(
      InvalidField(Make(DepthwiseConv2DParams{.padding = Padding::kSame, .dilations = {2, 1, 1, 1}},
                        Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
                   message, "depthwise_conv2d.dilations"));
}

TEST(Section4Errors, StrideBelowOne) {
  EXPECT_TRUE(InvalidField(Make(Conv2DParams{.strides = {0}, .padding = Padding::kSame},
                                Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
                           "Row and column strides should be larger than 0.", "conv2d.strides"));
  EXPECT_TRUE(InvalidField(Make(Conv2DParams{.strides = {1, -1}, .padding = Padding::kSame},
                                Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
                           "Row and column strides should be larger than 0.", "conv2d.strides"));
  EXPECT_TRUE(InvalidField(
      Make(Conv1DParams{.stride = {0}, .padding = Padding::kSame}, Operands({1, 5, 1}, {3, 1, 1})),
      "Row and column strides should be larger than 0.", "conv1d.stride"));
  EXPECT_TRUE(InvalidField(Make(Conv3DParams{.strides = {1, 0, 1}, .padding = Padding::kSame},
                                Operands({1, 2, 2, 2, 1}, {1, 1, 1, 1, 1})),
                           "Spatial strides should be larger than 0.", "conv3d.strides"));
  EXPECT_TRUE(Invalid(Make(ConvolutionParams{.strides = {0}, .padding = Padding::kSame},
                           Operands({1, 2, 2, 2, 1}, {1, 1, 1, 1, 1})),
                      "Spatial strides should be larger than 0."));
}

TEST(Section4Errors, DilationBelowOne) {
  EXPECT_TRUE(InvalidField(Make(Conv2DParams{.padding = Padding::kSame, .dilations = {1, 0}},
                                Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
                           "Dilated rates should be larger than 0.", "conv2d.dilations"));
  EXPECT_TRUE(InvalidField(Make(Conv3DParams{.padding = Padding::kSame, .dilations = {-2}},
                                Operands({1, 2, 2, 2, 1}, {1, 1, 1, 1, 1})),
                           "Dilated rates should be larger than 0.", "conv3d.dilations"));
}

TEST(Section4Errors, StridesWithDilations) {
  const std::string message = "strides > 1 not supported in conjunction with dilation_rate > 1";
  EXPECT_TRUE(InvalidField(
      Make(ConvolutionParams{.strides = {2, 1}, .padding = Padding::kSame, .dilations = {1, 2}},
           Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
      message, "convolution.strides"));
  EXPECT_TRUE(InvalidField(
      Make(DepthwiseConv2DParams{.strides = {2}, .padding = Padding::kSame, .dilations = {2}},
           Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
      message, "depthwise_conv2d.strides"));
  EXPECT_TRUE(InvalidField(
      Make(SeparableConv2DParams{.strides = {2}, .padding = Padding::kSame, .dilations = {2}},
           SeparableOperands({1, 5, 5, 1}, {3, 3, 1, 1}, {1, 1, 1, 1})),
      message, "separable_conv2d.strides"));
}

TEST(Section4Errors, ListLength) {
  EXPECT_TRUE(InvalidField(Make(Conv2DParams{.strides = {1, 1, 1}, .padding = Padding::kSame},
                                Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
                           "strides should be of length 1, 2 or 4 but was 3", "conv2d.strides"));
  EXPECT_TRUE(InvalidField(Make(Conv1DParams{.stride = {1, 1}, .padding = Padding::kSame},
                                Operands({1, 5, 1}, {3, 1, 1})),
                           "stride should be of length 1, 1 or 3 but was 2", "conv1d.stride"));
  EXPECT_TRUE(InvalidField(Make(Conv3DParams{.padding = Padding::kSame, .dilations = {1, 1}},
                                Operands({1, 2, 2, 2, 1}, {1, 1, 1, 1, 1})),
                           "dilations should be of length 1, 3 or 5 but was 2",
                           "conv3d.dilations"));
}

TEST(Section4Errors, InputRank) {
  EXPECT_TRUE(
      InvalidField(Make(Conv2DParams{.padding = Padding::kSame}, Operands({5, 5, 3}, {3, 3, 3, 8})),
                   "convolution input must be 4-dimensional: [5,5,3]", "conv2d.input.shape"));
  EXPECT_TRUE(InvalidField(
      Make(Conv3DParams{.padding = Padding::kSame}, Operands({1, 5, 5, 3}, {1, 1, 1, 3, 8})),
      "convolution input must be 5-dimensional: [1,5,5,3]", "conv3d.input.shape"));
  EXPECT_TRUE(
      InvalidField(Make(Conv1DParams{.padding = Padding::kSame}, Operands({5, 3}, {1, 3, 8})),
                   "convolution input must be 3-dimensional: [5,3]", "conv1d.input.shape"));
}

TEST(Section4Errors, FilterRank) {
  EXPECT_TRUE(
      InvalidField(Make(Conv2DParams{.padding = Padding::kSame}, Operands({1, 5, 5, 3}, {3, 3, 3})),
                   "convolution filter must be 4-dimensional: [3,3,3]", "conv2d.filter.shape"));
  EXPECT_TRUE(InvalidField(
      Make(Conv3DParams{.padding = Padding::kSame}, Operands({1, 5, 5, 5, 3}, {3, 3, 3, 8})),
      "convolution filter must be 5-dimensional: [3,3,3,8]", "conv3d.filter.shape"));
}

TEST(Section4Errors, FilterWithZeroDimension) {
  const std::string message =
      "filter must not have zero elements (i.e. all dimensions must be non-zero)";
  EXPECT_TRUE(InvalidField(
      Make(Conv2DParams{.padding = Padding::kSame}, Operands({1, 5, 5, 3}, {3, 0, 3, 8})), message,
      "conv2d.filter.shape"));
  EXPECT_TRUE(InvalidField(
      Make(Conv2DParams{.padding = Padding::kSame}, Operands({1, 5, 5, 3}, {3, 3, 3, 0})), message,
      "conv2d.filter.shape"));
  EXPECT_TRUE(Invalid(
      Make(DepthwiseConv2DParams{.padding = Padding::kSame}, Operands({1, 5, 5, 3}, {3, 3, 3, 0})),
      message));
  EXPECT_TRUE(Invalid(
      Make(ConvTransposeParams{.rank = 2, .output_shape = {1, 5, 5, 1}, .padding = Padding::kSame},
           Operands({1, 5, 5, 1}, {0, 3, 1, 1})),
      message));
}

TEST(Section4Errors, InputDepthNotMultipleOfFilterDepth) {
  EXPECT_TRUE(InvalidField(
      Make(Conv2DParams{.padding = Padding::kSame}, Operands({1, 5, 5, 5}, {3, 3, 2, 8})),
      "input depth must be evenly divisible by filter depth: 5 vs 2", "conv2d.filter.shape"));
  EXPECT_TRUE(Invalid(Make(Conv2DParams{.padding = Padding::kSame, .data_format = "NCHW"},
                           Operands({1, 3, 5, 5}, {3, 3, 4, 8})),
                      "input depth must be evenly divisible by filter depth: 3 vs 4"));
  EXPECT_TRUE(Invalid(
      Make(Conv3DParams{.padding = Padding::kSame}, Operands({1, 2, 2, 2, 3}, {1, 1, 1, 2, 2})),
      "input depth must be evenly divisible by filter depth: 3 vs 2"));
}

TEST(Section4Errors, OutputDepthNotMultipleOfGroups) {
  EXPECT_TRUE(InvalidField(
      Make(Conv2DParams{.padding = Padding::kSame}, Operands({1, 5, 5, 6}, {3, 3, 2, 4})),
      "output depth must be evenly divisible by number of groups: 4 vs 3", "conv2d.filter.shape"));
  EXPECT_TRUE(Invalid(Make(Conv1DParams{.padding = Padding::kSame}, Operands({1, 5, 4}, {1, 1, 6})),
                      "output depth must be evenly divisible by number of groups: 6 vs 4"));
}

TEST(Section4Errors, DepthwiseDepthMismatch) {
  EXPECT_TRUE(InvalidField(
      Make(DepthwiseConv2DParams{.padding = Padding::kSame}, Operands({1, 5, 5, 3}, {3, 3, 4, 2})),
      "input and filter must have the same depth: 3 vs 4", "depthwise_conv2d.filter.shape"));
  EXPECT_TRUE(Invalid(Make(SeparableConv2DParams{.padding = Padding::kSame},
                           SeparableOperands({1, 5, 5, 3}, {3, 3, 1, 2}, {1, 1, 2, 4})),
                      "input and filter must have the same depth: 3 vs 1"));
}

TEST(Section4Errors, DepthwiseUnequalStrides) {
  const std::string message =
      "Current implementation only supports equal length strides in the row and column "
      "dimensions.";
  EXPECT_TRUE(
      InvalidField(Make(DepthwiseConv2DParams{.strides = {1, 1, 2, 1}, .padding = Padding::kSame},
                        Operands({1, 5, 5, 3}, {3, 3, 3, 2})),
                   message, "depthwise_conv2d.strides"));
  EXPECT_TRUE(InvalidField(Make(SeparableConv2DParams{.strides = {2, 1}, .padding = Padding::kSame},
                                SeparableOperands({1, 5, 5, 3}, {3, 3, 3, 1}, {1, 1, 3, 3})),
                           message, "separable_conv2d.strides"));
}

TEST(Section4Errors, ExplicitPaddingsWrongCount) {
  EXPECT_TRUE(InvalidField(
      Make(Conv2DParams{.padding = Padding::kExplicit, .explicit_paddings = {1, 1, 1, 1}},
           Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
      "explicit_paddings attribute must contain 8 values, but got: 4", "conv2d.explicit_paddings"));
  EXPECT_TRUE(Invalid(
      Make(Conv2DParams{.padding = Padding::kExplicit}, Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
      "explicit_paddings attribute must contain 8 values, but got: 0"));
  EXPECT_TRUE(Invalid(Make(ConvolutionParams{.padding = Padding::kExplicit,
                                             .explicit_paddings = {0, 0, 1, 1, 1, 1, 0, 0}},
                           Operands({1, 2, 2, 2, 1}, {1, 1, 1, 1, 1})),
                      "explicit_paddings attribute must contain 10 values, but got: 8"));
}

TEST(Section4Errors, ExplicitPaddingNegative) {
  EXPECT_TRUE(InvalidField(Make(Conv2DParams{.padding = Padding::kExplicit,
                                             .explicit_paddings = {0, 0, -1, 0, 0, 0, 0, 0}},
                                Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
                           "All elements of explicit_paddings must be nonnegative",
                           "conv2d.explicit_paddings"));
}

TEST(Section4Errors, ExplicitPaddingOnBatchOrChannel) {
  const std::string message =
      "Nonzero explicit padding in the batch or depth dimensions is not supported";
  EXPECT_TRUE(InvalidField(Make(Conv2DParams{.padding = Padding::kExplicit,
                                             .explicit_paddings = {1, 0, 0, 0, 0, 0, 0, 0}},
                                Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
                           message, "conv2d.explicit_paddings"));
  EXPECT_TRUE(Invalid(Make(Conv2DParams{.padding = Padding::kExplicit,
                                        .explicit_paddings = {0, 0, 0, 0, 0, 0, 0, 1}},
                           Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
                      message));
  // NCHW: the channel pads are positions 2 and 3.
  EXPECT_TRUE(Invalid(Make(Conv2DParams{.padding = Padding::kExplicit,
                                        .explicit_paddings = {0, 0, 1, 0, 0, 0, 0, 0},
                                        .data_format = "NCHW"},
                           Operands({1, 1, 5, 5}, {3, 3, 1, 1})),
                      message));
  EXPECT_TRUE(Make(Conv2DParams{.padding = Padding::kExplicit,
                                .explicit_paddings = {0, 0, 1, 0, 0, 0, 0, 0}},
                   Operands({1, 5, 5, 1}, {3, 3, 1, 1}))
                  .ok());
}

TEST(Section4Errors, ExplicitPaddingsWithoutExplicit) {
  const std::string message =
      "explicit_paddings attribute must be empty if the padding attribute is not EXPLICIT";
  for (Padding padding : {Padding::kSame, Padding::kValid}) {
    EXPECT_TRUE(InvalidField(
        Make(Conv2DParams{.padding = padding, .explicit_paddings = {0, 0, 1, 1, 1, 1, 0, 0}},
             Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
        message, "conv2d.explicit_paddings"));
  }
}

TEST(Section4Errors, BadDataFormat) {
  EXPECT_TRUE(InvalidField(Make(Conv1DParams{.padding = Padding::kSame, .data_format = "NDHWC"},
                                Operands({1, 5, 1}, {3, 1, 1})),
                           "data_format must be \"NWC\" or \"NCW\".", "conv1d.data_format"));
  EXPECT_TRUE(InvalidField(Make(Conv2DParams{.padding = Padding::kSame, .data_format = "NWC"},
                                Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
                           "data_format must be \"NHWC\" or \"NCHW\".", "conv2d.data_format"));
  EXPECT_TRUE(InvalidField(Make(Conv3DParams{.padding = Padding::kSame, .data_format = "NHWC"},
                                Operands({1, 2, 2, 2, 1}, {1, 1, 1, 1, 1})),
                           "data_format must be \"NDHWC\" or \"NCDHW\".", "conv3d.data_format"));
  EXPECT_TRUE(Invalid(Make(Conv2DParams{.padding = Padding::kSame, .data_format = "nhwc"},
                           Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
                      "data_format must be \"NHWC\" or \"NCHW\"."));
  EXPECT_TRUE(Invalid(Make(ConvolutionParams{.padding = Padding::kSame, .data_format = "NCW"},
                           Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
                      "data_format must be \"NHWC\" or \"NCHW\"."));
  EXPECT_TRUE(Invalid(Make(ConvTransposeParams{.rank = 2,
                                               .output_shape = {1, 5, 5, 1},
                                               .padding = Padding::kSame,
                                               .data_format = "NCDHW"},
                           Operands({1, 5, 5, 1}, {1, 1, 1, 1})),
                      "data_format must be \"NHWC\" or \"NCHW\"."));
}

TEST(Section4Errors, FilterDtypeDiffersFromInput) {
  OperandInfo operands = Operands({1, 5, 5, 1}, {3, 3, 1, 1});
  operands.filter.dtype = DataType::kFloat64;
  const std::string message =
      "cannot compute Conv2D as input #1(zero-based) was expected to be a float tensor but is "
      "a double tensor";
  EXPECT_TRUE(InvalidField(Make(Conv2DParams{.padding = Padding::kSame}, operands), message,
                           "conv2d.filter"));
  EXPECT_TRUE(
      Invalid(Make(AtrousConv2DParams{.rate = 2, .padding = Padding::kSame}, operands), message));

  OperandInfo half = Operands({1, 2, 2, 2, 1}, {1, 1, 1, 1, 1}, DataType::kFloat16);
  half.filter.dtype = DataType::kBFloat16;
  EXPECT_TRUE(Invalid(Make(Conv3DParams{.padding = Padding::kSame}, half),
                      "cannot compute Conv3D as input #1(zero-based) was expected to be a half "
                      "tensor but is a bfloat16 tensor"));
  EXPECT_TRUE(Invalid(Make(DepthwiseConv2DParams{.padding = Padding::kSame}, operands),
                      "cannot compute DepthwiseConv2dNative as input #1(zero-based) was "
                      "expected to be a float tensor but is a double tensor"));
  // The transposed ops name out_backprop (#2), checked against the filter's type.
  EXPECT_TRUE(Invalid(
      Make(ConvTransposeParams{.rank = 2, .output_shape = {1, 5, 5, 1}, .padding = Padding::kSame},
           operands),
      "cannot compute Conv2DBackpropInput as input #2(zero-based) was expected "
      "to be a double tensor but is a float tensor"));
}

TEST(Section4Errors, AtrousRateBelowOne) {
  EXPECT_TRUE(Invalid(Make(AtrousConv2DParams{.rate = 0, .padding = Padding::kValid},
                           Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
                      "rate 0 cannot be less than one"));
}

TEST(Section4Errors, PaddingMustBeSet) {
  EXPECT_TRUE(InvalidField(Make(Conv2DParams{}, Operands({1, 5, 5, 1}, {3, 3, 1, 1})),
                           "padding must be \"SAME\", \"VALID\" or \"EXPLICIT\".",
                           "conv2d.padding"));
  EXPECT_TRUE(Invalid(Make(Conv1DParams{}, Operands({1, 5, 1}, {3, 1, 1})),
                      "Value for attr 'padding' must be one of \"SAME\", \"VALID\"."));
}

}  // namespace
}  // namespace convserve
