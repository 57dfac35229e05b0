// Transposed convolutions: which output_shape is legal and TensorFlow's
// messages for the ones that are not (TF_SEMANTICS.md section 3).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/make_spec.h"
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

constexpr char kLabel2D[] = "Conv2DCustomBackpropInput";
constexpr char kLabel3D[] = "Conv3DBackpropInputOp";

// ---------------------------------------------------------------- helpers

absl::StatusOr<ConvSpec> Make(const ConvTransposeParams& params, const OperandInfo& operands) {
  return MakeSpec(params, operands, SpecLimits{});
}

bool IsInvalidOrExhausted(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument ||
         status.code() == absl::StatusCode::kResourceExhausted;
}

// The forward output size of a dimension of size `o`, written out
// independently of ComputeWindow: C++ division truncates toward zero, as TF's.
int64_t ForwardSize(int64_t o, int64_t k, int64_t s, int64_t d, Padding padding) {
  if (padding == Padding::kSame) return (o + s - 1) / s;
  const int64_t eff = (k - 1) * d + 1;
  return (o - eff + s) / s;
}

// The legal range of output_shape for a transposed input of size x (section 3).
struct Range {
  int64_t lo, hi;
};
Range LegalRange(int64_t x, int64_t k, int64_t s, int64_t d, Padding padding) {
  if (padding == Padding::kSame) return {(x - 1) * s + 1, x * s};
  const int64_t eff = (k - 1) * d + 1;
  return {(x - 1) * s + eff, (x - 1) * s + eff + s - 1};
}

// TF's message for an output_shape entry that does not match.
std::string SizeMismatch(absl::string_view label, int64_t x, int64_t computed, int spatial_dim,
                         int64_t o, int64_t k, int64_t s, int64_t d) {
  return absl::StrCat(label, ": Size of out_backprop doesn't match computed: actual = ", x,
                      ", computed = ", computed, " spatial_dim: ", spatial_dim, " input: ", o,
                      " filter: ", k, " output: ", x, " stride: ", s, " dilation: ", d);
}

const char* PaddingName(Padding padding) { return padding == Padding::kSame ? "SAME" : "VALID"; }

// One spatial dimension of a sweep; the others are fixed at a legal size.
struct Dim {
  int64_t x;  // transposed input (forward output) size
  int64_t k;
  int64_t s;
  int64_t d;
};

// Builds a transposed request of spatial rank n (1 to 3) whose dimension
// `swept` has forward-input size `o` and geometry `dim`; the other
// dimensions are 2 -> 2 with a 1-wide filter. Channels: x 2, y 3.
struct SweepRequest {
  ConvTransposeParams params;
  OperandInfo operands;
};
SweepRequest BuildSweep(int n, bool channels_last, int swept, const Dim& dim, int64_t o,
                        Padding padding, int op_rank) {
  Shape x_shape{1}, y_shape{1}, filter;
  std::vector<int64_t> strides, dilations;
  if (!channels_last) {
    x_shape.push_back(2);
    y_shape.push_back(3);
  }
  for (int i = 0; i < n; ++i) {
    const bool is_swept = i == swept;
    x_shape.push_back(is_swept ? o : 2);
    y_shape.push_back(is_swept ? dim.x : 2);
    filter.push_back(is_swept ? dim.k : 1);
    strides.push_back(is_swept ? dim.s : 1);
    dilations.push_back(is_swept ? dim.d : 1);
  }
  if (channels_last) {
    x_shape.push_back(2);
    y_shape.push_back(3);
  }
  filter.push_back(2);
  filter.push_back(3);
  SweepRequest request;
  request.params = ConvTransposeParams{.rank = op_rank,
                                       .output_shape = x_shape,
                                       .strides = strides,
                                       .padding = padding,
                                       .data_format = channels_last ? ""
                                                                    : (n == 1   ? "NCW"
                                                                       : n == 2 ? "NCHW"
                                                                                : "NCDHW"),
                                       .dilations = dilations};
  request.operands = Operands(y_shape, filter);
  return request;
}

// For every O from 0 to a few past the legal range: accepted exactly when
// inside it (with the forward pads of O), otherwise TF's message. `op_rank`
// is ConvTransposeParams::rank (0: conv_transpose, else the op of rank n).
void SweepOutputShape(int n, bool channels_last, int swept, const Dim& dim, Padding padding,
                      int op_rank) {
  const Range range = LegalRange(dim.x, dim.k, dim.s, dim.d, padding);
  const absl::string_view label = n == 3 ? kLabel3D : kLabel2D;
  // The index TF reports: that of the dimension in the tensor it checks,
  // which for 1-D is the input expanded to 2-D with a dummy height.
  const int spatial_dim = (channels_last ? 1 : 2) + (n == 1 ? swept + 1 : swept);
  const std::string op = op_rank == 0 ? "conv_transpose"
                         : n == 1     ? "conv1d_transpose"
                         : n == 2     ? "conv2d_transpose"
                                      : "conv3d_transpose";
  for (int64_t o = 0; o <= range.hi + 3; ++o) {
    SCOPED_TRACE(testing::Message()
                 << op << (channels_last ? " channels_last" : " channels_first") << " dim " << swept
                 << " X=" << dim.x << " k=" << dim.k << " s=" << dim.s << " d=" << dim.d << " "
                 << PaddingName(padding) << " O=" << o);
    const SweepRequest request = BuildSweep(n, channels_last, swept, dim, o, padding, op_rank);
    const absl::StatusOr<ConvSpec> spec = Make(request.params, request.operands);
    const int64_t computed = ForwardSize(o, dim.k, dim.s, dim.d, padding);
    const bool legal = computed == dim.x;
    if (dim.x >= 1) {  // For X = 0 truncation toward zero widens the range.
      ASSERT_EQ(legal, o >= range.lo && o <= range.hi)
          << "TF_SEMANTICS range disagrees with the forward formula";
    }
    if (legal) {
      ASSERT_TRUE(spec.ok()) << spec.status();
      const int d = n == 1 ? 1 : swept;
      EXPECT_EQ(spec->input_spatial[d], o);
      EXPECT_EQ(spec->output_spatial[d], dim.x);
      EXPECT_EQ(spec->filter_spatial[d], dim.k);
      EXPECT_EQ(spec->strides[d], dim.s);
      EXPECT_EQ(spec->dilations[d], dim.d);
      const int64_t eff = (dim.k - 1) * dim.d + 1;
      const int64_t total =
          padding == Padding::kSame ? std::max<int64_t>(0, (dim.x - 1) * dim.s + eff - o) : 0;
      EXPECT_EQ(spec->pad_before[d], total / 2);
      EXPECT_EQ(spec->pad_after[d], total - total / 2);
      EXPECT_EQ(spec->result_shape, request.params.output_shape);
    } else if (computed >= 0) {
      EXPECT_TRUE(InvalidField(
          spec, SizeMismatch(label, dim.x, computed, spatial_dim, o, dim.k, dim.s, dim.d),
          absl::StrCat(op, ".input.shape")));
    } else {
      EXPECT_TRUE(InvalidField(spec,
                               absl::StrCat("Computed output size would be negative: ", computed,
                                            " [input_size: ", o, ", effective_filter_size: ",
                                            (dim.k - 1) * dim.d + 1, ", stride: ", dim.s, "]"),
                               absl::StrCat(op, ".output_shape")));
    }
  }
}

// ---------------------------------------------------------------- legal range sweeps

TEST(TransposedShape, LegalRange2DHeight) {
  for (Padding padding : {Padding::kSame, Padding::kValid}) {
    for (int64_t x = 1; x <= 5; ++x) {
      for (int64_t k = 1; k <= 4; ++k) {
        for (int64_t s = 1; s <= 3; ++s) {
          for (int64_t d = 1; d <= 3; ++d) {
            SweepOutputShape(2, true, 0, {x, k, s, d}, padding, 2);
          }
        }
      }
    }
  }
}

TEST(TransposedShape, LegalRange2DWidthNchw) {
  for (Padding padding : {Padding::kSame, Padding::kValid}) {
    for (int64_t x = 1; x <= 4; ++x) {
      for (int64_t k = 1; k <= 3; ++k) {
        for (int64_t s = 1; s <= 3; ++s) {
          for (int64_t d = 1; d <= 2; ++d) {
            SweepOutputShape(2, false, 1, {x, k, s, d}, padding, 2);
          }
        }
      }
    }
  }
}

TEST(TransposedShape, LegalRange3DEveryDimension) {
  for (bool channels_last : {true, false}) {
    for (int swept = 0; swept < 3; ++swept) {
      for (Padding padding : {Padding::kSame, Padding::kValid}) {
        for (const Dim& dim : {Dim{1, 1, 1, 1}, Dim{3, 3, 2, 1}, Dim{2, 2, 3, 2}, Dim{4, 3, 1, 3},
                               Dim{5, 4, 2, 2}}) {
          SweepOutputShape(3, channels_last, swept, dim, padding, 3);
        }
      }
    }
  }
}

TEST(TransposedShape, LegalRange1DViaConvTransposeAndConv1DTranspose) {
  for (bool channels_last : {true, false}) {
    for (Padding padding : {Padding::kSame, Padding::kValid}) {
      for (int64_t x = 1; x <= 4; ++x) {
        for (int64_t k = 1; k <= 3; ++k) {
          for (int64_t s = 1; s <= 3; ++s) {
            for (int64_t d = 1; d <= 2; ++d) {
              SweepOutputShape(1, channels_last, 0, {x, k, s, d}, padding, 0);
              SweepOutputShape(1, channels_last, 0, {x, k, s, d}, padding, 1);
            }
          }
        }
      }
    }
  }
}

TEST(TransposedShape, EmptyTransposedInput) {
  // X = 0: SAME accepts only O = 0; VALID every O whose truncated size is 0.
  SweepOutputShape(2, true, 0, {0, 1, 1, 1}, Padding::kSame, 2);
  SweepOutputShape(2, true, 0, {0, 3, 2, 1}, Padding::kValid, 2);
  SweepOutputShape(2, true, 0, {0, 3, 1, 2}, Padding::kValid, 2);
}

// ---------------------------------------------------------------- hand-worked cases

TEST(TransposedShape, SameMessageExample) {
  // X = 3, s = 2: O in [5, 6]; O = 7 computes ceil(7/2) = 4.
  EXPECT_TRUE(InvalidField(
      Make(
          ConvTransposeParams{
              .rank = 2, .output_shape = {1, 7, 6, 2}, .strides = {2}, .padding = Padding::kSame},
          Operands({1, 3, 3, 4}, {3, 3, 2, 4})),
      "Conv2DCustomBackpropInput: Size of out_backprop doesn't match "
      "computed: actual = 3, computed = 4 spatial_dim: 1 input: 7 "
      "filter: 3 output: 3 stride: 2 dilation: 1",
      "conv2d_transpose.input.shape"));
}

TEST(TransposedShape, PadsDerivedFromOutputShape) {
  const OperandInfo operands = Operands({1, 3, 3, 4}, {3, 3, 2, 4});
  // SAME, X = 3, s = 2, k = 3. O = 5: pad 2*2 + 3 - 5 = 2 -> 1/1. O = 6: 1 -> 0/1.
  ASSERT_SPEC(five, Make(ConvTransposeParams{.rank = 2,
                                             .output_shape = {1, 5, 6, 2},
                                             .strides = {2},
                                             .padding = Padding::kSame},
                         operands));
  EXPECT_THAT(five.pad_before, ElementsAre(1, 0, 0));
  EXPECT_THAT(five.pad_after, ElementsAre(1, 1, 0));
  EXPECT_THAT(five.input_spatial, ElementsAre(5, 6, 1));
  EXPECT_THAT(five.result_shape, ElementsAre(1, 5, 6, 2));

  // VALID, X = 3, s = 2, k = 3: O in [7, 8], never padded.
  for (int64_t o : {7, 8}) {
    ASSERT_SPEC(valid, Make(ConvTransposeParams{.rank = 2,
                                                .output_shape = {1, o, o, 2},
                                                .strides = {2},
                                                .padding = Padding::kValid},
                            operands));
    EXPECT_THAT(valid.pad_before, ElementsAre(0, 0, 0));
    EXPECT_THAT(valid.pad_after, ElementsAre(0, 0, 0));
    EXPECT_THAT(valid.result_shape, ElementsAre(1, o, o, 2));
  }
}

TEST(TransposedShape, DilatedTransposeIsAccepted) {
  // k = 3, d = 2: eff 5; VALID X = 2, s = 1: O = 6.
  ASSERT_SPEC(spec, Make(ConvTransposeParams{.rank = 2,
                                             .output_shape = {1, 6, 6, 1},
                                             .padding = Padding::kValid,
                                             .dilations = {2}},
                         Operands({1, 2, 2, 1}, {3, 3, 1, 1})));
  EXPECT_THAT(spec.dilations, ElementsAre(2, 2, 1));
  // Strides and dilations together are accepted too: eff 5, s 2: O in [7, 8].
  EXPECT_TRUE(Make(ConvTransposeParams{.rank = 2,
                                       .output_shape = {1, 8, 8, 1},
                                       .strides = {2},
                                       .padding = Padding::kValid,
                                       .dilations = {2}},
                   Operands({1, 2, 2, 1}, {3, 3, 1, 1}))
                  .ok());
}

TEST(TransposedShape, NchwOutputShapeOrder) {
  ASSERT_SPEC(spec, Make(ConvTransposeParams{.rank = 2,
                                             .output_shape = {1, 2, 6, 5},
                                             .strides = {1, 1, 2, 2},
                                             .padding = Padding::kSame,
                                             .data_format = "NCHW"},
                         Operands({1, 4, 3, 3}, {3, 3, 2, 4})));
  EXPECT_FALSE(spec.channels_last);
  EXPECT_EQ(spec.in_channels, 2);
  EXPECT_EQ(spec.out_channels, 4);
  EXPECT_THAT(spec.input_spatial, ElementsAre(6, 5, 1));
  EXPECT_THAT(spec.output_spatial, ElementsAre(3, 3, 1));
  EXPECT_THAT(spec.pad_before, ElementsAre(0, 1, 0));
  EXPECT_THAT(spec.pad_after, ElementsAre(1, 1, 0));
  EXPECT_THAT(spec.result_shape, ElementsAre(1, 2, 6, 5));

  // The same output_shape read as NHWC does not fit.
  EXPECT_TRUE(Invalid(
      Make(
          ConvTransposeParams{
              .rank = 2, .output_shape = {1, 2, 6, 5}, .strides = {2}, .padding = Padding::kSame},
          Operands({1, 3, 3, 4}, {3, 3, 2, 4})),
      "Conv2DCustomBackpropInput: input depth must be evenly divisible by "
      "filter depth"));
  // NCHW: a wrong width is reported as spatial_dim 3.
  EXPECT_TRUE(Invalid(Make(ConvTransposeParams{.rank = 2,
                                               .output_shape = {1, 2, 6, 7},
                                               .strides = {1, 1, 2, 2},
                                               .padding = Padding::kSame,
                                               .data_format = "NCHW"},
                           Operands({1, 4, 3, 3}, {3, 3, 2, 4})),
                      "Conv2DCustomBackpropInput: Size of out_backprop doesn't match "
                      "computed: actual = 3, computed = 4 spatial_dim: 3 input: 7 filter: 3 "
                      "output: 3 stride: 2 dilation: 1"));
}

TEST(TransposedShape, Conv1DTransposeReportsTheExpandedDimension) {
  // TF runs conv1d_transpose as Conv2DBackpropInput on [B, 1, W, C] (NWC) or
  // [B, C, 1, W] (NCW), so the width is spatial_dim 2 or 3.
  EXPECT_TRUE(InvalidField(
      Make(
          ConvTransposeParams{.output_shape = {1, 9, 2}, .strides = {2}, .padding = Padding::kSame},
          Operands({1, 4, 3}, {3, 2, 3})),
      "Conv2DCustomBackpropInput: Size of out_backprop doesn't match "
      "computed: actual = 4, computed = 5 spatial_dim: 2 input: 9 "
      "filter: 3 output: 4 stride: 2 dilation: 1",
      "conv_transpose.input.shape"));
  EXPECT_TRUE(Invalid(Make(ConvTransposeParams{.output_shape = {1, 2, 9},
                                               .strides = {2},
                                               .padding = Padding::kSame,
                                               .data_format = "NCW"},
                           Operands({1, 3, 4}, {3, 2, 3})),
                      "Conv2DCustomBackpropInput: Size of out_backprop doesn't match "
                      "computed: actual = 4, computed = 5 spatial_dim: 3 input: 9 "));
}

// ---------------------------------------------------------------- batch and depth

TEST(TransposedShape, BatchMismatch) {
  EXPECT_TRUE(InvalidField(
      Make(
          ConvTransposeParams{
              .rank = 2, .output_shape = {2, 6, 6, 2}, .strides = {2}, .padding = Padding::kSame},
          Operands({1, 3, 3, 4}, {3, 3, 2, 4})),
      "Conv2DCustomBackpropInput: input and out_backprop must have the "
      "same batch size. Input batch: 2, outbackprop batch: 1, "
      "batch_dim: 0",
      "conv2d_transpose.output_shape"));
  EXPECT_TRUE(Invalid(Make(ConvTransposeParams{.rank = 2,
                                               .output_shape = {0, 2, 6, 6},
                                               .strides = {2},
                                               .padding = Padding::kSame,
                                               .data_format = "NCHW"},
                           Operands({3, 4, 3, 3}, {3, 3, 2, 4})),
                      "Conv2DCustomBackpropInput: input and out_backprop must have the same "
                      "batch size. Input batch: 0, outbackprop batch: 3, batch_dim: 0"));
  EXPECT_TRUE(Invalid(Make(ConvTransposeParams{.rank = 3,
                                               .output_shape = {1, 2, 2, 2, 1},
                                               .padding = Padding::kSame},
                           Operands({4, 2, 2, 2, 1}, {1, 1, 1, 1, 1})),
                      "Conv3DBackpropInputOp: input and out_backprop must have the same "
                      "batch size. Input batch: 1, outbackprop batch: 4, batch_dim: 0"));
  EXPECT_TRUE(
      Invalid(Make(ConvTransposeParams{.output_shape = {2, 4, 1}, .padding = Padding::kSame},
                   Operands({1, 4, 1}, {1, 1, 1})),
              "Conv2DCustomBackpropInput: input and out_backprop must have the same "
              "batch size. Input batch: 2, outbackprop batch: 1, batch_dim: 0"));
}

TEST(TransposedShape, OutDepthMismatch) {
  EXPECT_TRUE(InvalidField(
      Make(
          ConvTransposeParams{
              .rank = 2, .output_shape = {1, 6, 6, 2}, .strides = {2}, .padding = Padding::kSame},
          Operands({1, 3, 3, 4}, {3, 3, 2, 5})),
      "Conv2DCustomBackpropInput: filter and out_backprop must have the "
      "same out_depth",
      "conv2d_transpose.filter.shape"));
  EXPECT_TRUE(Invalid(Make(ConvTransposeParams{.rank = 2,
                                               .output_shape = {1, 2, 6, 6},
                                               .strides = {2},
                                               .padding = Padding::kSame,
                                               .data_format = "NCHW"},
                           Operands({1, 5, 3, 3}, {3, 3, 2, 4})),
                      "Conv2DCustomBackpropInput: filter and out_backprop must have the same "
                      "out_depth"));
  EXPECT_TRUE(Invalid(Make(ConvTransposeParams{.rank = 3,
                                               .output_shape = {1, 2, 2, 2, 1},
                                               .padding = Padding::kSame},
                           Operands({1, 2, 2, 2, 3}, {1, 1, 1, 1, 2})),
                      "Conv3DBackpropInputOp: filter and out_backprop must have the same "
                      "out_depth"));
}

TEST(TransposedShape, DepthDivisibility) {
  EXPECT_TRUE(InvalidField(
      Make(
          ConvTransposeParams{
              .rank = 2, .output_shape = {1, 6, 6, 3}, .strides = {2}, .padding = Padding::kSame},
          Operands({1, 3, 3, 4}, {3, 3, 2, 4})),
      "Conv2DCustomBackpropInput: input depth must be evenly divisible "
      "by filter depth",
      "conv2d_transpose.output_shape"));
  EXPECT_TRUE(Invalid(Make(ConvTransposeParams{.rank = 3,
                                               .output_shape = {1, 2, 2, 2, 3},
                                               .padding = Padding::kSame},
                           Operands({1, 2, 2, 2, 1}, {1, 1, 1, 2, 1})),
                      "Conv3DBackpropInputOp: input depth must be evenly divisible by filter "
                      "depth"));
  EXPECT_TRUE(
      Invalid(Make(ConvTransposeParams{.output_shape = {1, 4, 3}, .padding = Padding::kSame},
                   Operands({1, 4, 1}, {1, 2, 1})),
              "Conv2DCustomBackpropInput: input depth must be evenly divisible by "
              "filter depth"));
  // Checked before the out_depth, as in TF.
  EXPECT_TRUE(Invalid(
      Make(
          ConvTransposeParams{
              .rank = 2, .output_shape = {1, 6, 6, 3}, .strides = {2}, .padding = Padding::kSame},
          Operands({1, 3, 3, 4}, {3, 3, 2, 5})),
      "Conv2DCustomBackpropInput: input depth must be evenly divisible"));
}

TEST(TransposedShape, GroupedTransposeOutputDepth) {
  // 4 output channels / filter in-depth 2 = 2 groups; the filter's 5 does not divide.
  EXPECT_TRUE(Invalid(
      Make(ConvTransposeParams{.rank = 2, .output_shape = {1, 3, 3, 4}, .padding = Padding::kSame},
           Operands({1, 3, 3, 5}, {1, 1, 2, 5})),
      "output depth must be evenly divisible by number of groups: 5 vs 2"));
}

// ---------------------------------------------------------------- output_shape length

TEST(TransposedShape, ConvTransposeLength) {
  for (const Shape& output_shape :
       {Shape{}, Shape{1}, Shape{114078056, 179835296}, Shape{1, 2, 2, 2, 2, 1}}) {
    EXPECT_TRUE(InvalidField(
        Make(ConvTransposeParams{.output_shape = output_shape, .padding = Padding::kSame},
             Operands({1, 2, 2, 1}, {1, 1, 1, 1})),
        absl::StrCat("output_shape must be of length 3, 4 or 5 but was ", output_shape.size(), "."),
        "conv_transpose.output_shape"));
  }
}

TEST(TransposedShape, Conv2DAndConv3DTransposeLength) {
  // TF 2's conv2d_transpose hands output_shape to Conv2DBackpropInput, which
  // takes 4 values or 2 (spatial only); conv3d_transpose's kernel takes 5.
  for (const Shape& output_shape : {Shape{}, Shape{1}, Shape{1, 2, 2}, Shape{1, 2, 2, 2, 1}}) {
    EXPECT_TRUE(InvalidField(
        Make(
            ConvTransposeParams{.rank = 2, .output_shape = output_shape, .padding = Padding::kSame},
            Operands({1, 2, 2, 1}, {1, 1, 1, 1})),
        absl::StrCat("Conv2DBackpropInput requires input_sizes to contain 4 values or 2 values, "
                     "but got: ",
                     output_shape.size()),
        "conv2d_transpose.output_shape"));
  }
  // TF's own regression test of absurd input_sizes: a spatial-only
  // output_shape that the input does not fit.
  EXPECT_TRUE(InvalidField(Make(ConvTransposeParams{.rank = 2,
                                                    .output_shape = {114078056, 179835296},
                                                    .padding = Padding::kSame},
                                Operands({1, 2, 2, 1}, {1, 1, 1, 1})),
                           SizeMismatch(kLabel2D, 2, 114078056, 1, 114078056, 1, 1, 1),
                           "conv2d_transpose.input.shape"));
  for (const Shape& output_shape : {Shape{2, 2, 2}, Shape{1, 2, 2, 1}, Shape{1, 2, 2, 2, 2, 1}}) {
    EXPECT_TRUE(InvalidField(
        Make(
            ConvTransposeParams{.rank = 3, .output_shape = output_shape, .padding = Padding::kSame},
            Operands({1, 2, 2, 2, 1}, {1, 1, 1, 1, 1})),
        "Conv3DBackpropInputOp: input must be 5-dimensional", "conv3d_transpose.output_shape"));
  }
}

// ---------------------------------------------------------------- spatial-only output_shape

TEST(TransposedShape, SpatialOnlyOutputShapeIsTheFullOne) {
  // conv2d_transpose with output_shape (H, W): the batch is the input's, the
  // channels the filter's dimension 2; the spec is that of the full shape.
  const OperandInfo last = Operands({2, 3, 3, 4}, {3, 3, 5, 4});
  ASSERT_SPEC(spatial,
              Make(
                  ConvTransposeParams{
                      .rank = 2, .output_shape = {6, 5}, .strides = {2}, .padding = Padding::kSame},
                  last));
  ASSERT_SPEC(full, Make(ConvTransposeParams{.rank = 2,
                                             .output_shape = {2, 6, 5, 5},
                                             .strides = {2},
                                             .padding = Padding::kSame},
                         last));
  EXPECT_EQ(spatial, full);
  EXPECT_THAT(spatial.result_shape, ElementsAre(2, 6, 5, 5));
  EXPECT_EQ(spatial.groups, 1);
  // SAME: H 6 pads 2 * 2 + 3 - 6 = 1 (0 before), W 5 pads 2 (1 before).
  EXPECT_THAT(spatial.pad_before, ElementsAre(0, 1, 0));

  // NCHW, VALID, X = 3, k = 3, s = 3: O in [9, 11].
  const OperandInfo first = Operands({2, 4, 3, 3}, {3, 3, 5, 4});
  ASSERT_SPEC(nchw, Make(ConvTransposeParams{.rank = 2,
                                             .output_shape = {9, 11},
                                             .strides = {1, 1, 3, 3},
                                             .padding = Padding::kValid,
                                             .data_format = "NCHW"},
                         first));
  EXPECT_THAT(nchw.result_shape, ElementsAre(2, 5, 9, 11));
  EXPECT_FALSE(nchw.channels_last);
  EXPECT_THAT(nchw.input_spatial, ElementsAre(9, 11, 1));
  EXPECT_THAT(nchw.output_spatial, ElementsAre(3, 3, 1));
}

TEST(TransposedShape, SpatialOnlyOutputShapeSweep) {
  // The legal range of the spatial-only form is that of the full form.
  for (bool channels_last : {true, false}) {
    for (Padding padding : {Padding::kSame, Padding::kValid}) {
      for (int64_t o = 0; o <= 10; ++o) {
        SCOPED_TRACE(testing::Message()
                     << channels_last << " " << PaddingName(padding) << " O=" << o);
        const OperandInfo operands = channels_last ? Operands({1, 3, 2, 4}, {3, 1, 2, 4})
                                                   : Operands({1, 4, 3, 2}, {3, 1, 2, 4});
        const std::string format = channels_last ? "NHWC" : "NCHW";
        const absl::StatusOr<ConvSpec> spatial = Make(ConvTransposeParams{.rank = 2,
                                                                          .output_shape = {o, 2},
                                                                          .strides = {2, 1},
                                                                          .padding = padding,
                                                                          .data_format = format},
                                                      operands);
        const absl::StatusOr<ConvSpec> full =
            Make(ConvTransposeParams{.rank = 2,
                                     .output_shape =
                                         channels_last ? Shape{1, o, 2, 2} : Shape{1, 2, o, 2},
                                     .strides = {2, 1},
                                     .padding = padding,
                                     .data_format = format},
                 operands);
        const Range range = LegalRange(3, 3, 2, 1, padding);
        ASSERT_EQ(spatial.ok(), o >= range.lo && o <= range.hi) << spatial.status();
        ASSERT_EQ(spatial.ok(), full.ok());
        if (spatial.ok()) {
          EXPECT_EQ(*spatial, *full);
        } else {
          EXPECT_EQ(spatial.status(), full.status());
        }
      }
    }
  }
}

TEST(TransposedShape, SpatialOnlyOutputShapeErrors) {
  const OperandInfo operands = Operands({1, 3, 3, 4}, {3, 3, 2, 4});
  EXPECT_TRUE(InvalidField(
      Make(
          ConvTransposeParams{
              .rank = 2, .output_shape = {-1, 6}, .strides = {2}, .padding = Padding::kSame},
          operands),
      "Conv2DBackpropInput: elements of input_sizes must be >= 0, not -1x6",
      "conv2d_transpose.output_shape"));
  EXPECT_TRUE(InvalidField(
      Make(
          ConvTransposeParams{
              .rank = 2, .output_shape = {6, 7}, .strides = {2}, .padding = Padding::kSame},
          operands),
      SizeMismatch(kLabel2D, 3, 4, 2, 7, 3, 2, 1), "conv2d_transpose.input.shape"));
  // NCHW: the width is spatial_dim 3.
  EXPECT_TRUE(InvalidField(Make(ConvTransposeParams{.rank = 2,
                                                    .output_shape = {6, 7},
                                                    .strides = {2},
                                                    .padding = Padding::kSame,
                                                    .data_format = "NCHW"},
                                Operands({1, 4, 3, 3}, {3, 3, 2, 4})),
                           SizeMismatch(kLabel2D, 3, 4, 3, 7, 3, 2, 1),
                           "conv2d_transpose.input.shape"));
  // The channels come from the filter, so the out_depth check is the same.
  EXPECT_TRUE(InvalidField(
      Make(
          ConvTransposeParams{
              .rank = 2, .output_shape = {6, 6}, .strides = {2}, .padding = Padding::kSame},
          Operands({1, 3, 3, 5}, {3, 3, 2, 4})),
      "Conv2DCustomBackpropInput: filter and out_backprop must have the same out_depth",
      "conv2d_transpose.filter.shape"));
}

TEST(TransposedShape, ConvTransposeNeverReadsSpatialOnly) {
  // TF's conv_transpose picks its op by len(output_shape): 2 values are refused...
  EXPECT_TRUE(InvalidField(
      Make(ConvTransposeParams{.output_shape = {6, 6}, .strides = {2}, .padding = Padding::kSame},
           Operands({1, 3, 3, 4}, {3, 3, 2, 4})),
      "output_shape must be of length 3, 4 or 5 but was 2.", "conv_transpose.output_shape"));
  // ... and 3 values mean conv1d_transpose, whatever the input's rank.
  EXPECT_TRUE(InvalidField(
      Make(ConvTransposeParams{.output_shape = {4, 4, 4}, .padding = Padding::kSame},
           Operands({1, 4, 4, 4, 2}, {1, 1, 1, 3, 2})),
      "Conv2DCustomBackpropInput: filter must be 3-dimensional", "conv_transpose.filter.shape"));
}

// ---------------------------------------------------------------- conv1d_transpose

TEST(TransposedShape, Conv1DTransposeIsConvTransposeOfRank1) {
  for (const std::string format : {"NWC", "NCW"}) {
    const bool last = format == "NWC";
    const OperandInfo operands =
        last ? Operands({2, 4, 3}, {3, 5, 3}) : Operands({2, 3, 4}, {3, 5, 3});
    const Shape output_shape = last ? Shape{2, 8, 5} : Shape{2, 5, 8};
    ASSERT_SPEC(one_d, Make(ConvTransposeParams{.rank = 1,
                                                .output_shape = output_shape,
                                                .strides = {2},
                                                .padding = Padding::kSame,
                                                .data_format = format},
                            operands));
    ASSERT_SPEC(generic, Make(ConvTransposeParams{.rank = 0,
                                                  .output_shape = output_shape,
                                                  .strides = {2},
                                                  .padding = Padding::kSame,
                                                  .data_format = format},
                              operands));
    EXPECT_EQ(one_d, generic);
    EXPECT_EQ(one_d.result_shape, output_shape);
    EXPECT_EQ(one_d.rank, 2);  // TF's dummy height
    EXPECT_THAT(one_d.input_spatial, ElementsAre(1, 8, 1));
    EXPECT_THAT(one_d.output_spatial, ElementsAre(1, 4, 1));
    EXPECT_THAT(one_d.filter_spatial, ElementsAre(1, 3, 1));
    EXPECT_THAT(one_d.strides, ElementsAre(1, 2, 1));
    EXPECT_THAT(one_d.pad_before, ElementsAre(0, 0, 0));
    EXPECT_THAT(one_d.pad_after, ElementsAre(0, 1, 0));
  }
}

TEST(TransposedShape, Conv1DTransposeWidthOnlyOutputShape) {
  // TF inserts the dummy height at the spatial position of output_shape, so
  // (W) becomes (W, 1): height W, width 1. Only W = 1 fits a height of 1.
  for (const std::string format : {"NWC", "NCW"}) {
    const bool last = format == "NWC";
    SCOPED_TRACE(format);
    ASSERT_SPEC(one, Make(ConvTransposeParams{.rank = 1,
                                              .output_shape = {1},
                                              .strides = {2},
                                              .padding = Padding::kSame,
                                              .data_format = format},
                          last ? Operands({3, 1, 4}, {2, 5, 4}) : Operands({3, 4, 1}, {2, 5, 4})));
    EXPECT_EQ(one.result_shape, last ? (Shape{3, 1, 5}) : (Shape{3, 5, 1}));
    EXPECT_EQ(one.in_channels, 5);
    EXPECT_EQ(one.batch, 3);
    EXPECT_TRUE(InvalidField(
        Make(ConvTransposeParams{.rank = 1,
                                 .output_shape = {8},
                                 .strides = {2},
                                 .padding = Padding::kSame,
                                 .data_format = format},
             last ? Operands({1, 4, 4}, {2, 5, 4}) : Operands({1, 4, 4}, {2, 5, 4})),
        SizeMismatch(kLabel2D, 1, 8, last ? 1 : 2, 8, 1, 1, 1), "conv1d_transpose.input.shape"));
    EXPECT_TRUE(InvalidField(
        Make(
            ConvTransposeParams{
                .rank = 1, .output_shape = {-3}, .padding = Padding::kSame, .data_format = format},
            Operands({1, 4, 4}, {2, 5, 4})),
        "Conv2DBackpropInput: elements of input_sizes must be >= 0, not -3x1",
        "conv1d_transpose.output_shape"));
  }
  // Other lengths become 1 more than given.
  for (const Shape& output_shape : {Shape{}, Shape{1, 8}, Shape{1, 8, 5, 1}}) {
    EXPECT_TRUE(InvalidField(
        Make(
            ConvTransposeParams{.rank = 1, .output_shape = output_shape, .padding = Padding::kSame},
            Operands({1, 4, 4}, {2, 5, 4})),
        absl::StrCat("Conv2DBackpropInput requires input_sizes to contain 4 values or 2 values, "
                     "but got: ",
                     output_shape.size() + 1),
        "conv1d_transpose.output_shape"));
  }
}

TEST(TransposedShape, Conv1DTransposeAttributes) {
  const OperandInfo operands = Operands({1, 4, 4}, {2, 5, 4});
  EXPECT_TRUE(InvalidField(Make(ConvTransposeParams{.rank = 1,
                                                    .output_shape = {1, 4, 5},
                                                    .padding = Padding::kSame,
                                                    .data_format = "NHWC"},
                                operands),
                           "data_format must be \"NWC\" or \"NCW\".",
                           "conv1d_transpose.data_format"));
  EXPECT_TRUE(InvalidField(
      Make(
          ConvTransposeParams{
              .rank = 1, .output_shape = {1, 4, 5}, .strides = {1, 1}, .padding = Padding::kSame},
          operands),
      "stride should be of length 1, 1 or 3 but was 2", "conv1d_transpose.strides"));
  EXPECT_TRUE(InvalidField(Make(ConvTransposeParams{.rank = 1,
                                                    .output_shape = {1, 4, 5},
                                                    .strides = {2, 1, 1},
                                                    .padding = Padding::kSame},
                                operands),
                           "Current implementation does not yet support strides in the batch and "
                           "depth dimensions.",
                           "conv1d_transpose.strides"));
  EXPECT_TRUE(InvalidField(
      Make(
          ConvTransposeParams{
              .rank = 1, .output_shape = {1, 4, 5}, .padding = Padding::kSame, .dilations = {1, 2}},
          operands),
      "dilations should be of length 1, 1 or 3 but was 2", "conv1d_transpose.dilations"));
  EXPECT_TRUE(InvalidField(
      Make(ConvTransposeParams{.rank = 1, .output_shape = {1, 4, 5}, .padding = Padding::kExplicit},
           operands),
      "Value for attr 'padding' must be one of \"SAME\", \"VALID\".", "conv1d_transpose.padding"));
  // The 3-value forms, in data_format order.
  ASSERT_SPEC(ncw, Make(ConvTransposeParams{.rank = 1,
                                            .output_shape = {1, 5, 9},
                                            .strides = {1, 1, 2},
                                            .padding = Padding::kValid,
                                            .data_format = "NCW",
                                            .dilations = {1, 1, 2}},
                        Operands({1, 4, 3}, {3, 5, 4})));
  EXPECT_THAT(ncw.strides, ElementsAre(1, 2, 1));
  EXPECT_THAT(ncw.dilations, ElementsAre(1, 2, 1));
}

// ---------------------------------------------------------------- explicit padding

// Every O the forward conv2d with explicit pads maps onto X, in one dimension.
TEST(TransposedShape, ExplicitPaddingLegalRange) {
  for (int op_rank : {2, 0}) {
    for (bool channels_last : {true, false}) {
      for (const Dim& dim : {Dim{3, 3, 2, 1}, Dim{2, 2, 3, 2}, Dim{4, 1, 1, 1}, Dim{1, 3, 2, 1}}) {
        for (int64_t before = 0; before <= 3; ++before) {
          for (int64_t after = 0; after <= 3; ++after) {
            for (int64_t o = 0; o <= 12; ++o) {
              SCOPED_TRACE(testing::Message() << op_rank << " " << channels_last << " X=" << dim.x
                                              << " k=" << dim.k << " s=" << dim.s << " d=" << dim.d
                                              << " pads " << before << "/" << after << " O=" << o);
              // Height swept; width 2 -> 2 with a 1-wide filter; channels x 2, y 3.
              std::vector<int64_t> pads(8, 0);
              const int h = channels_last ? 1 : 2;
              pads[2 * h] = before;
              pads[2 * h + 1] = after;
              const ConvTransposeParams params{
                  .rank = op_rank,
                  .output_shape = channels_last ? Shape{1, o, 2, 2} : Shape{1, 2, o, 2},
                  .strides = {dim.s, 1},
                  .padding = Padding::kExplicit,
                  .explicit_paddings = pads,
                  .data_format = channels_last ? "NHWC" : "NCHW",
                  .dilations = {dim.d, 1}};
              const absl::StatusOr<ConvSpec> spec =
                  Make(params, channels_last ? Operands({1, dim.x, 2, 3}, {dim.k, 1, 2, 3})
                                             : Operands({1, 3, dim.x, 2}, {dim.k, 1, 2, 3}));
              const int64_t eff = (dim.k - 1) * dim.d + 1;
              const int64_t computed = (o + before + after - eff + dim.s) / dim.s;
              const std::string op = op_rank == 0 ? "conv_transpose" : "conv2d_transpose";
              if (computed < 0) {
                EXPECT_TRUE(Invalid(spec, "Computed output size would be negative"));
              } else if (computed == dim.x) {
                ASSERT_TRUE(spec.ok()) << spec.status();
                EXPECT_THAT(spec->pad_before, ElementsAre(before, 0, 0));
                EXPECT_THAT(spec->pad_after, ElementsAre(after, 0, 0));
                EXPECT_THAT(spec->input_spatial, ElementsAre(o, 2, 1));
                EXPECT_EQ(spec->result_shape, params.output_shape);
              } else {
                EXPECT_TRUE(InvalidField(
                    spec, SizeMismatch(kLabel2D, dim.x, computed, h, o, dim.k, dim.s, dim.d),
                    absl::StrCat(op, ".input.shape")));
              }
            }
          }
        }
      }
    }
  }
}

TEST(TransposedShape, ExplicitPaddingSpatialOnly) {
  // output_shape (H, W) with explicit pads: H 7 + 1 + 2 = 10 -> (10 - 3 + 2) / 2 = 4,
  // W 5 + 0 + 1 = 6 -> 6 - 2 + 1 = 5.
  ASSERT_SPEC(spec, Make(ConvTransposeParams{.rank = 2,
                                             .output_shape = {7, 5},
                                             .strides = {2, 1},
                                             .padding = Padding::kExplicit,
                                             .explicit_paddings = {0, 0, 0, 0, 1, 2, 0, 1},
                                             .data_format = "NCHW"},
                         Operands({2, 4, 4, 5}, {3, 2, 3, 4})));
  EXPECT_THAT(spec.result_shape, ElementsAre(2, 3, 7, 5));
  EXPECT_THAT(spec.pad_before, ElementsAre(1, 0, 0));
  EXPECT_THAT(spec.pad_after, ElementsAre(2, 1, 0));
}

TEST(TransposedShape, ExplicitPaddingValidation) {
  const OperandInfo operands = Operands({1, 3, 3, 4}, {3, 3, 2, 4});
  auto make = [&](int rank, std::vector<int64_t> pads, const std::string& format = "NHWC",
                  Padding padding = Padding::kExplicit) {
    return Make(ConvTransposeParams{.rank = rank,
                                    .output_shape = {1, 5, 5, 2},
                                    .strides = {2},
                                    .padding = padding,
                                    .explicit_paddings = std::move(pads),
                                    .data_format = format},
                operands);
  };
  for (int rank : {2, 0}) {
    const std::string op = rank == 2 ? "conv2d_transpose" : "conv_transpose";
    EXPECT_TRUE(make(rank, {0, 0, 1, 1, 1, 1, 0, 0}).ok());
    EXPECT_TRUE(InvalidField(make(rank, {0, 0, 1, 1, 1, 1}),
                             "explicit_paddings attribute must contain 8 values, but got: 6",
                             op + ".explicit_paddings"));
    EXPECT_TRUE(InvalidField(make(rank, {0, 0, 1, -1, 1, 1, 0, 0}),
                             "All elements of explicit_paddings must be nonnegative",
                             op + ".explicit_paddings"));
    EXPECT_TRUE(
        InvalidField(make(rank, {0, 0, 1, 1, 1, 1, 0, 1}),
                     "Nonzero explicit padding in the batch or depth dimensions is not supported",
                     op + ".explicit_paddings"));
    // NCHW: the channel pair is the second.
    EXPECT_TRUE(
        InvalidField(make(rank, {0, 0, 1, 1, 1, 1, 0, 0}, "NCHW"),
                     "Nonzero explicit padding in the batch or depth dimensions is not supported",
                     op + ".explicit_paddings"));
    EXPECT_TRUE(InvalidField(make(rank, {0, 0, 1, 1, 1, 1, 0, 0}, "NHWC", Padding::kSame),
                             "explicit_paddings attribute must be empty if the padding attribute "
                             "is not EXPLICIT",
                             op + ".explicit_paddings"));
  }
}

TEST(TransposedShape, ExplicitPaddingOnlyIn2D) {
  // conv3d_transpose and conv1d_transpose take the padding as a string.
  EXPECT_TRUE(InvalidField(Make(ConvTransposeParams{.rank = 3,
                                                    .output_shape = {1, 2, 2, 2, 1},
                                                    .padding = Padding::kExplicit},
                                Operands({1, 2, 2, 2, 1}, {1, 1, 1, 1, 1})),
                           "Value for attr 'padding' must be one of \"SAME\", \"VALID\".",
                           "conv3d_transpose.padding"));
  // conv_transpose of 1-D or 3-D runs those: a list padding is refused as TF's
  // op builder refuses it.
  EXPECT_TRUE(InvalidField(
      Make(ConvTransposeParams{.output_shape = {1, 4, 1},
                               .padding = Padding::kExplicit,
                               .explicit_paddings = {0, 0, 1, 1, 0, 0}},
           Operands({1, 4, 1}, {3, 1, 1})),
      "Expected string for argument 'padding' not [[0, 0], [1, 1], [0, 0]]. Explicit padding is "
      "for 2-D transposed convolutions only (an output_shape of length 4): conv_transpose runs "
      "conv1d_transpose or conv3d_transpose here, whose padding is \"SAME\" or \"VALID\".",
      "conv_transpose.padding"));
  EXPECT_TRUE(Invalid(Make(ConvTransposeParams{.output_shape = {1, 2, 2, 2, 1},
                                               .padding = Padding::kExplicit,
                                               .explicit_paddings = {0, 0, 1}},
                           Operands({1, 2, 2, 2, 1}, {1, 1, 1, 1, 1})),
                      "Expected string for argument 'padding' not [[0, 0], [1]]."));
  EXPECT_TRUE(InvalidField(Make(ConvTransposeParams{.output_shape = {1, 2, 2, 2, 1},
                                                    .padding = Padding::kSame,
                                                    .explicit_paddings = {0, 0}},
                                Operands({1, 2, 2, 2, 1}, {1, 1, 1, 1, 1})),
                           "explicit_paddings attribute must be empty if the padding attribute "
                           "is not EXPLICIT",
                           "conv_transpose.explicit_paddings"));
}

TEST(TransposedShape, OperandRanks) {
  EXPECT_TRUE(InvalidField(
      Make(ConvTransposeParams{.rank = 2, .output_shape = {1, 2, 2, 1}, .padding = Padding::kSame},
           Operands({1, 2, 2, 1}, {1, 1, 1})),
      "Conv2DCustomBackpropInput: filter must be 4-dimensional", "conv2d_transpose.filter.shape"));
  EXPECT_TRUE(InvalidField(Make(ConvTransposeParams{.rank = 3,
                                                    .output_shape = {1, 2, 2, 2, 1},
                                                    .padding = Padding::kSame},
                                Operands({1, 2, 2, 1}, {1, 1, 1, 1, 1})),
                           "Conv3DBackpropInputOp: out_backprop must be 5-dimensional",
                           "conv3d_transpose.input.shape"));
}

// ---------------------------------------------------------------- negative and absurd shapes

TEST(TransposedShape, NegativeOutputShapeEntry) {
  const OperandInfo operands = Operands({1, 3, 3, 4}, {3, 3, 2, 4});
  for (const Shape& output_shape :
       {Shape{1, -6, 6, 2}, Shape{-1, 6, 6, 2}, Shape{1, 6, 6, -2}, Shape{1, 6, -1, 2}}) {
    SCOPED_TRACE(testing::PrintToString(output_shape));
    const absl::StatusOr<ConvSpec> spec = Make(
        ConvTransposeParams{
            .rank = 2, .output_shape = output_shape, .strides = {2}, .padding = Padding::kSame},
        operands);
    ASSERT_FALSE(spec.ok());
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(spec.status().message()),
                ::testing::HasSubstr("(field: conv2d_transpose.output_shape)"));
  }
}

TEST(TransposedShape, AbsurdOutputShapeTensorFlowTest) {
  // TF's own regression test: a huge output_shape for a small input.
  const absl::StatusOr<ConvSpec> small =
      Make(ConvTransposeParams{.rank = 2,
                               .output_shape = {1, 114078056, 179835296, 1},
                               .strides = {1},
                               .padding = Padding::kValid},
           Operands({1, 3, 3, 1}, {3, 3, 1, 1}));
  ASSERT_FALSE(small.ok());
  EXPECT_TRUE(IsInvalidOrExhausted(small.status())) << small.status();

  // The same output_shape with an input that matches it: the geometry is
  // legal but the result is far over the cap.
  EXPECT_TRUE(FailsWith(Make(ConvTransposeParams{.rank = 2,
                                                 .output_shape = {1, 114078056, 179835296, 1},
                                                 .padding = Padding::kValid},
                             Operands({1, 114078056, 179835296, 1}, {1, 1, 1, 1})),
                        absl::StatusCode::kResourceExhausted, "The result would have"));

  // Both huge spatial entries and huge channels: the element count overflows.
  const absl::StatusOr<ConvSpec> overflow =
      Make(ConvTransposeParams{.rank = 2,
                               .output_shape = {114078056, 179835296, 114078056, 179835296},
                               .padding = Padding::kSame},
           Operands({114078056, 179835296, 114078056, 1}, {1, 1, 179835296, 1}));
  ASSERT_FALSE(overflow.ok());
  EXPECT_TRUE(IsInvalidOrExhausted(overflow.status())) << overflow.status();
}

TEST(TransposedShape, OutputShapeNearInt64Max) {
  // Element count overflows int64.
  EXPECT_TRUE(Invalid(Make(ConvTransposeParams{.rank = 2,
                                               .output_shape = {1, kMax, kMax, 1},
                                               .padding = Padding::kSame},
                           Operands({1, kMax, kMax, 1}, {1, 1, 1, 1})),
                      ""));
  // A single huge entry for a small input: the computed size does not match.
  EXPECT_TRUE(Invalid(Make(ConvTransposeParams{.rank = 2,
                                               .output_shape = {1, kMax, 1, 1},
                                               .padding = Padding::kSame},
                           Operands({1, 3, 1, 1}, {3, 1, 1, 1})),
                      absl::StrCat(kLabel2D,
                                   ": Size of out_backprop doesn't match computed: "
                                   "actual = 3, computed = ",
                                   kMax, " spatial_dim: 1")));
  // Legal geometry, result over the cap.
  EXPECT_TRUE(FailsWith(Make(ConvTransposeParams{.rank = 2,
                                                 .output_shape = {1, kMax, 1, 1},
                                                 .padding = Padding::kSame},
                             Operands({1, kMax, 1, 1}, {3, 1, 1, 1})),
                        absl::StatusCode::kResourceExhausted, "The result would have"));
  // A huge stride maps the huge entry onto one position.
  EXPECT_TRUE(FailsWith(Make(ConvTransposeParams{.rank = 2,
                                                 .output_shape = {1, kMax, 1, 1},
                                                 .strides = {kMax, 1},
                                                 .padding = Padding::kSame},
                             Operands({1, 1, 1, 1}, {3, 1, 1, 1})),
                        absl::StatusCode::kResourceExhausted, "The result would have"));
  // VALID with a huge filter.
  const absl::StatusOr<ConvSpec> valid = Make(
      ConvTransposeParams{.rank = 2, .output_shape = {1, kMax, 1, 1}, .padding = Padding::kValid},
      Operands({1, 1, 1, 1}, {kMax, 1, 1, 1}));
  ASSERT_FALSE(valid.ok());
  EXPECT_TRUE(IsInvalidOrExhausted(valid.status())) << valid.status();
  // A huge dilation overflows the effective filter size.
  EXPECT_TRUE(Invalid(Make(ConvTransposeParams{.rank = 2,
                                               .output_shape = {1, 4, 4, 1},
                                               .padding = Padding::kSame,
                                               .dilations = {kMax}},
                           Operands({1, 4, 4, 1}, {2, 2, 1, 1})),
                      ""));
  // A huge batch.
  EXPECT_TRUE(FailsWith(Make(ConvTransposeParams{.rank = 2,
                                                 .output_shape = {kMax, 1, 1, 1},
                                                 .padding = Padding::kSame},
                             Operands({kMax, 1, 1, 1}, {1, 1, 1, 1})),
                        absl::StatusCode::kResourceExhausted, "The result would have"));
}

TEST(TransposedShape, ExtremeValuesNeverCrash) {
  const int64_t values[] = {
      std::numeric_limits<int64_t>::min(), -1, 0, 1, 2, 3, 114078056, 179835296, kMax};
  for (int64_t h : values) {
    for (int64_t c : values) {
      for (int64_t s : {int64_t{1}, int64_t{2}, kMax}) {
        for (Padding padding : {Padding::kSame, Padding::kValid}) {
          const absl::StatusOr<ConvSpec> spec = Make(
              ConvTransposeParams{
                  .rank = 2, .output_shape = {1, h, 2, c}, .strides = {s, 1}, .padding = padding},
              Operands({1, 2, 2, 2}, {2, 1, 1, 2}));
          if (!spec.ok()) {
            EXPECT_TRUE(IsInvalidOrExhausted(spec.status())) << spec.status();
          } else {
            EXPECT_EQ(spec->result_shape, (Shape{1, h, 2, c}));
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace convserve
