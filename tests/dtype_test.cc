// The five element types: sizes and names, every type through the conv2d
// family, half and bfloat16 accumulating in float and rounding once (to
// nearest even), int32 wrapping like two's complement, double accumulating in
// double.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace convserve {
namespace {

using test::Elements;
using test::Offset;
using test::RunOp;
using test::Tensor;
using test::ToDouble;
using test::TryRun;
using ::testing::ElementsAre;

Conv2DParams Conv2D(Padding padding, std::vector<int64_t> strides = {}) {
  Conv2DParams p;
  p.padding = padding;
  p.strides = std::move(strides);
  return p;
}

template <typename T>
Tensor<T> Make(Shape shape, const std::vector<double>& values) {
  std::vector<T> v;
  for (double x : values) {
    if constexpr (std::is_same_v<T, double>) {
      v.push_back(x);
    } else {
      v.push_back(static_cast<T>(static_cast<float>(x)));
    }
  }
  return {std::move(shape), std::move(v)};
}

// Small integers in [lo, hi], exact in every type.
template <typename T>
Tensor<T> RandomInts(Shape shape, int lo, int hi, std::mt19937& rng) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<T> v(static_cast<size_t>(Elements(shape)));
  for (T& x : v) x = static_cast<T>(static_cast<float>(dist(rng)));
  return {std::move(shape), std::move(v)};
}

uint16_t Bits(half h) { return Eigen::numext::bit_cast<uint16_t>(h); }
uint16_t Bits(bfloat16 b) { return Eigen::numext::bit_cast<uint16_t>(b); }
float FloatFromBits(uint32_t bits) { return Eigen::numext::bit_cast<float>(bits); }

TEST(DataTypeInfo, ItemSizeTfTypeNameAndDtypeName) {
  EXPECT_EQ(ItemSize(DataType::kFloat32), 4);
  EXPECT_EQ(ItemSize(DataType::kFloat64), 8);
  EXPECT_EQ(ItemSize(DataType::kFloat16), 2);
  EXPECT_EQ(ItemSize(DataType::kBFloat16), 2);
  EXPECT_EQ(ItemSize(DataType::kInt32), 4);
  EXPECT_EQ(TfTypeName(DataType::kFloat32), "float");
  EXPECT_EQ(TfTypeName(DataType::kFloat64), "double");
  EXPECT_EQ(TfTypeName(DataType::kFloat16), "half");
  EXPECT_EQ(TfTypeName(DataType::kBFloat16), "bfloat16");
  EXPECT_EQ(TfTypeName(DataType::kInt32), "int32");
  EXPECT_EQ(DtypeName(DataType::kFloat32), "float32");
  EXPECT_EQ(DtypeName(DataType::kFloat64), "float64");
  EXPECT_EQ(DtypeName(DataType::kFloat16), "float16");
  EXPECT_EQ(DtypeName(DataType::kBFloat16), "bfloat16");
  EXPECT_EQ(DtypeName(DataType::kInt32), "int32");
  // The C++ element types have those sizes.
  EXPECT_EQ(sizeof(half), 2u);
  EXPECT_EQ(sizeof(bfloat16), 2u);
  int checked = 0;
  for (DataType dtype : kAllDataTypes) {
    DispatchDataType(dtype, [&](auto tag) {
      EXPECT_EQ(static_cast<int64_t>(sizeof(tag)), ItemSize(dtype)) << TfTypeName(dtype);
      ++checked;
    });
  }
  EXPECT_EQ(checked, 5);
}

// ---------------------------------------------------------------------------
// Every type through the conv2d family, on values exact in every type.

template <typename T>
class AllTypes : public ::testing::Test {};
using ElementTypes = ::testing::Types<float, double, half, bfloat16, int32_t>;
class TypeNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::string(TfTypeName(test::DataTypeOf<T>()));
  }
};
TYPED_TEST_SUITE(AllTypes, ElementTypes, TypeNames);

TYPED_TEST(AllTypes, Conv2DLiteral) {
  using T = TypeParam;
  const Tensor<T> x = test::Iota<T>({1, 3, 3, 1});
  const Tensor<T> w = Make<T>({2, 2, 1, 1}, {1, 1, 1, 1});
  Tensor<T> y = RunOp(Conv2D(Padding::kValid), x, w);
  EXPECT_EQ(y.shape, (Shape{1, 2, 2, 1}));
  EXPECT_THAT(ToDouble(y.values), ElementsAre(12, 16, 24, 28));
  y = RunOp(Conv2D(Padding::kSame), x, Make<T>({2, 2, 1, 1}, {1, -1, 2, -2}));
  // y = x[r][c] - x[r][c+1] + 2 x[r+1][c] - 2 x[r+1][c+1], zero past the edge.
  EXPECT_THAT(ToDouble(y.values), ElementsAre(-3, -3, 15, -3, -3, 24, -1, -1, 9));
}

TYPED_TEST(AllTypes, Conv2DMatchesLoopOnSmallIntegers) {
  using T = TypeParam;
  std::mt19937 rng(61);
  const Tensor<T> x = RandomInts<T>({2, 5, 6, 2}, -3, 3, rng);
  const Tensor<T> w = RandomInts<T>({3, 3, 2, 3}, -3, 3, rng);
  // SAME, stride 2: rows: in 5, out 3, pad_total (3-1)*2+3-5 = 2 -> 1 before; cols: in 6, out 3,
  // pad_total (3-1)*2+3-6 = 1 -> 0 before.
  std::vector<double> expected;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t k = 0; k < 3; ++k) {
          double sum = 0;
          for (int64_t di = 0; di < 3; ++di)
            for (int64_t dj = 0; dj < 3; ++dj)
              for (int64_t q = 0; q < 2; ++q) {
                const int64_t r = 2 * i + di - 1, c = 2 * j + dj;
                if (r < 0 || r >= 5 || c >= 6) continue;
                sum += static_cast<double>(x.values[Offset(x.shape, {b, r, c, q})]) *
                       static_cast<double>(w.values[Offset(w.shape, {di, dj, q, k})]);
              }
          expected.push_back(sum);
        }
  const Tensor<T> y = RunOp(Conv2D(Padding::kSame, {2, 2}), x, w);
  EXPECT_EQ(y.shape, (Shape{2, 3, 3, 3}));
  EXPECT_EQ(ToDouble(y.values), expected);
}

TYPED_TEST(AllTypes, Conv1DConvolutionAndTranspose) {
  using T = TypeParam;
  Conv1DParams p1;
  p1.padding = Padding::kValid;
  const Tensor<T> y1 = RunOp(p1, test::Iota<T>({1, 5, 1}), Make<T>({3, 1, 1}, {1, 2, 3}));
  EXPECT_THAT(ToDouble(y1.values), ElementsAre(14, 20, 26));
  ConvolutionParams pc;
  pc.padding = Padding::kSame;
  const Tensor<T> yc = RunOp(pc, test::Iota<T>({1, 5, 1}), Make<T>({3, 1, 1}, {1, 2, 3}));
  EXPECT_THAT(ToDouble(yc.values), ElementsAre(8, 14, 20, 26, 14));
  ConvTransposeParams pt;
  pt.rank = 2;
  pt.output_shape = {1, 4, 4, 1};
  pt.strides = {2, 2};
  pt.padding = Padding::kValid;
  const Tensor<T> yt =
      RunOp(pt, Make<T>({1, 2, 2, 1}, {1, 2, 3, 4}), Make<T>({2, 2, 1, 1}, {1, 2, 3, 4}));
  EXPECT_THAT(ToDouble(yt.values), ElementsAre(1, 2, 2, 4, 3, 4, 6, 8, 3, 6, 4, 8, 9, 12, 12, 16));
}

// conv3d, depthwise and their transposes: every type but int32.
template <typename T>
class FloatingTypes : public ::testing::Test {};
using FloatingElementTypes = ::testing::Types<float, double, half, bfloat16>;
TYPED_TEST_SUITE(FloatingTypes, FloatingElementTypes, TypeNames);

TYPED_TEST(FloatingTypes, Conv3DDepthwiseSeparableAndConv3DTranspose) {
  using T = TypeParam;
  Conv3DParams p3;
  p3.padding = Padding::kSame;
  const Tensor<T> y3 =
      RunOp(p3, test::Iota<T>({1, 2, 2, 2, 1}), Make<T>({2, 2, 2, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1}));
  EXPECT_THAT(ToDouble(y3.values), ElementsAre(36, 20, 22, 12, 26, 14, 15, 8));

  DepthwiseConv2DParams pd;
  pd.padding = Padding::kValid;
  const Tensor<T> x = Make<T>({1, 1, 3, 2}, {1, 10, 2, 20, 3, 30});
  const Tensor<T> dw = Make<T>({1, 2, 2, 2}, {1, 1, 2, 0, 1, -1, 0, 3});
  EXPECT_THAT(ToDouble(RunOp(pd, x, dw).values), ElementsAre(3, -1, 20, 60, 5, -1, 40, 90));

  SeparableConv2DParams ps;
  ps.padding = Padding::kValid;
  const Tensor<T> pw = Make<T>({1, 1, 4, 2}, {1, 1, 1, 0, 1, 0, 1, -1});
  EXPECT_THAT(ToDouble(RunOp(ps, x, dw, {.pointwise = pw}).values), ElementsAre(82, -57, 134, -85));

  ConvTransposeParams pt;
  pt.rank = 3;
  pt.output_shape = {1, 2, 2, 2, 1};
  pt.strides = {2, 2, 2};
  pt.padding = Padding::kValid;
  const Tensor<T> yt = RunOp(pt, Make<T>({1, 1, 1, 1, 1}, {2}), test::Iota<T>({2, 2, 2, 1, 1}));
  EXPECT_THAT(ToDouble(yt.values), ElementsAre(2, 4, 6, 8, 10, 12, 14, 16));
}

TEST(Int32, RejectedWhereTensorFlowHasNoKernel) {
  const Tensor<int32_t> x5{{1, 2, 2, 2, 1}, std::vector<int32_t>(8, 1)};
  const Tensor<int32_t> w5{{1, 1, 1, 1, 1}, {1}};
  Conv3DParams p3;
  p3.padding = Padding::kValid;
  EXPECT_FALSE(TryRun(p3, x5, w5).ok());
  DepthwiseConv2DParams pd;
  pd.padding = Padding::kValid;
  EXPECT_FALSE(
      TryRun(pd, Tensor<int32_t>{{1, 2, 2, 1}, {1, 2, 3, 4}}, Tensor<int32_t>{{1, 1, 1, 1}, {1}})
          .ok());
  // ...and the activations other than the two ReLUs.
  EXPECT_FALSE(TryRun(Conv2D(Padding::kValid), Tensor<int32_t>{{1, 1, 1, 1}, {1}},
                      Tensor<int32_t>{{1, 1, 1, 1}, {1}}, {.activation = Activation::kSigmoid})
                   .ok());
}

// ---------------------------------------------------------------------------
// half and bfloat16: the sum runs in float and is rounded once.

// Values k / 64, |k| <= 128: exact in half and bfloat16, and products sum
// exactly in float (multiples of 2^-12 below 2^12), so the float reference is
// the same in any order.
template <typename T>
Tensor<T> FineGrid(Shape shape, std::mt19937& rng) {
  std::uniform_int_distribution<int> dist(-128, 128);
  std::vector<T> v(static_cast<size_t>(Elements(shape)));
  for (T& x : v) x = static_cast<T>(static_cast<float>(dist(rng)) / 64.0f);
  return {std::move(shape), std::move(v)};
}

template <typename T>
class HalfTypes : public ::testing::Test {};
using HalfElementTypes = ::testing::Types<half, bfloat16>;
TYPED_TEST_SUITE(HalfTypes, HalfElementTypes, TypeNames);

TYPED_TEST(HalfTypes, Conv2DIsFloatSumRoundedOnce) {
  using T = TypeParam;
  std::mt19937 rng(71);
  const Tensor<T> x = FineGrid<T>({2, 6, 5, 8}, rng);
  const Tensor<T> w = FineGrid<T>({3, 3, 8, 4}, rng);
  // VALID, stride 1: 4x3 outputs of 72-term sums.
  std::vector<T> expected;
  int rounded = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t k = 0; k < 4; ++k) {
          float sum = 0;
          for (int64_t di = 0; di < 3; ++di)
            for (int64_t dj = 0; dj < 3; ++dj)
              for (int64_t q = 0; q < 8; ++q)
                sum += static_cast<float>(x.values[Offset(x.shape, {b, i + di, j + dj, q})]) *
                       static_cast<float>(w.values[Offset(w.shape, {di, dj, q, k})]);
          expected.push_back(static_cast<T>(sum));
          rounded += static_cast<float>(expected.back()) != sum;
        }
  EXPECT_GT(rounded, 10);  // the case does exercise the final rounding
  const Tensor<T> y = RunOp(Conv2D(Padding::kValid), x, w);
  ASSERT_EQ(y.shape, (Shape{2, 4, 3, 4}));
  ASSERT_EQ(y.values.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(Bits(y.values[i]), Bits(expected[i]))
        << "element " << i << ": got " << static_cast<float>(y.values[i]) << ", expected "
        << static_cast<float>(expected[i]);
  }
}

TYPED_TEST(HalfTypes, TransposeAndDepthwiseAreFloatSumsRoundedOnce) {
  using T = TypeParam;
  std::mt19937 rng(72);
  // conv2d_transpose, stride 1 VALID on 1-D rows: dx[p] = sum_{i + k = p, o} dy[i, o] w[k, c, o].
  const Tensor<T> dy = FineGrid<T>({1, 1, 6, 16}, rng);
  const Tensor<T> w = FineGrid<T>({1, 3, 2, 16}, rng);
  ConvTransposeParams pt;
  pt.rank = 2;
  pt.output_shape = {1, 1, 8, 2};
  pt.padding = Padding::kValid;
  std::vector<uint16_t> expected;
  for (int64_t p = 0; p < 8; ++p)
    for (int64_t c = 0; c < 2; ++c) {
      float sum = 0;
      for (int64_t k = 0; k < 3; ++k) {
        const int64_t i = p - k;
        if (i < 0 || i >= 6) continue;
        for (int64_t o = 0; o < 16; ++o)
          sum += static_cast<float>(dy.values[Offset(dy.shape, {0, 0, i, o})]) *
                 static_cast<float>(w.values[Offset(w.shape, {0, k, c, o})]);
      }
      expected.push_back(Bits(static_cast<T>(sum)));
    }
  const Tensor<T> dx = RunOp(pt, dy, w);
  std::vector<uint16_t> got;
  for (T v : dx.values) got.push_back(Bits(v));
  EXPECT_EQ(got, expected);

  // Depthwise 5x5 (25 taps per output) with multiplier 2.
  const Tensor<T> x = FineGrid<T>({1, 6, 6, 3}, rng);
  const Tensor<T> dw = FineGrid<T>({5, 5, 3, 2}, rng);
  DepthwiseConv2DParams pd;
  pd.padding = Padding::kValid;
  expected.clear();
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t k = 0; k < 3; ++k)
        for (int64_t q = 0; q < 2; ++q) {
          float sum = 0;
          for (int64_t di = 0; di < 5; ++di)
            for (int64_t dj = 0; dj < 5; ++dj)
              sum += static_cast<float>(x.values[Offset(x.shape, {0, i + di, j + dj, k})]) *
                     static_cast<float>(dw.values[Offset(dw.shape, {di, dj, k, q})]);
          expected.push_back(Bits(static_cast<T>(sum)));
        }
  got.clear();
  for (T v : RunOp(pd, x, dw).values) got.push_back(Bits(v));
  EXPECT_EQ(got, expected);
}

TYPED_TEST(HalfTypes, ActivationIsComputedInFloatAndRoundedOnce) {
  // Identity 1x1 filter and bias 0.25 on x: the activation sees the rounded
  // T(x + 0.25) and its float result is rounded to T once.
  using T = TypeParam;
  const std::vector<double> xs = {-3.0, -0.75, -0.125, 0.0, 0.3125, 0.5, 1.25, 2.75, 5.5, 9.0};
  const Tensor<T> x = Make<T>({1, 1, static_cast<int64_t>(xs.size()), 1}, xs);
  const Tensor<T> w = Make<T>({1, 1, 1, 1}, {1});
  const struct {
    Activation activation;
    float (*fn)(float);
  } cases[] = {
      {Activation::kRelu, [](float v) { return v > 0 ? v : 0.0f; }},
      {Activation::kRelu6, [](float v) { return v < 0 ? 0.0f : (v > 6 ? 6.0f : v); }},
      {Activation::kElu, [](float v) { return v < 0 ? std::exp(v) - 1.0f : v; }},
      {Activation::kLeakyRelu, [](float v) { return v < 0 ? v * 0.2f : v; }},
      {Activation::kSigmoid, [](float v) { return 1.0f / (1.0f + std::exp(-v)); }},
      {Activation::kTanh, [](float v) { return std::tanh(v); }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(static_cast<int>(c.activation));
    const Tensor<T> y =
        RunOp(Conv2D(Padding::kValid), x, w,
              {.bias = std::vector<T>{static_cast<T>(0.25f)}, .activation = c.activation});
    ASSERT_EQ(y.values.size(), xs.size());
    for (size_t i = 0; i < xs.size(); ++i) {
      const float pre = static_cast<float>(static_cast<T>(static_cast<float>(xs[i]) + 0.25f));
      const T expected = static_cast<T>(c.fn(pre));
      // Allow one unit in the last place of T for the float library's exp/tanh.
      const int diff = static_cast<int>(Bits(y.values[i])) - static_cast<int>(Bits(expected));
      EXPECT_LE(std::abs(diff), c.activation == Activation::kRelu ||
                                        c.activation == Activation::kRelu6 ||
                                        c.activation == Activation::kLeakyRelu
                                    ? 0
                                    : 1)
          << "x " << xs[i] << ": got " << static_cast<float>(y.values[i]) << ", expected "
          << static_cast<float>(expected);
    }
  }
}

TEST(Half, AccumulatesInFloat) {
  // 2048 + 1 + 1 over three channels: a half accumulator would round 2049 back
  // to 2048 twice; float gives 2050, which half represents.
  const Tensor<half> x = Make<half>({1, 1, 1, 3}, {2048, 1, 1});
  const Tensor<half> w = Make<half>({1, 1, 3, 1}, {1, 1, 1});
  EXPECT_THAT(ToDouble(RunOp(Conv2D(Padding::kValid), x, w).values), ElementsAre(2050));
}

TEST(Half, RoundsToNearestEven) {
  // Sums of two (or three) channels with a 1x1 filter of ones.
  auto run = [](std::vector<double> channels) {
    const int64_t c = static_cast<int64_t>(channels.size());
    const Tensor<half> y = RunOp(Conv2D(Padding::kValid), Make<half>({1, 1, 1, c}, channels),
                                 Make<half>({1, 1, c, 1}, std::vector<double>(channels.size(), 1)));
    return y.values.size() == 1 ? Bits(y.values[0]) : uint16_t{0xFFFF};
  };
  const double ulp = std::ldexp(1.0, -10);                     // half spacing at 1
  EXPECT_EQ(run({1, ulp / 2}), 0x3C00);                        // tie, down to even
  EXPECT_EQ(run({1 + ulp, ulp / 2}), 0x3C02);                  // tie, up to even
  EXPECT_EQ(run({1, ulp / 2, std::ldexp(1.0, -20)}), 0x3C01);  // above the tie
  EXPECT_EQ(run({-1, -ulp / 2}), 0xBC00);
  EXPECT_EQ(run({2048, 1}), 0x6800);    // 2049 -> 2048
  EXPECT_EQ(run({2050, 1}), 0x6802);    // 2051 -> 2052
  EXPECT_EQ(run({65504, 8}), 0x7BFF);   // 65512 -> max half
  EXPECT_EQ(run({65504, 16}), 0x7C00);  // 65520, the tie -> +inf
}

TEST(BFloat16, AccumulatesInFloat) {
  const Tensor<bfloat16> x = Make<bfloat16>({1, 1, 1, 3}, {256, 1, 1});
  const Tensor<bfloat16> w = Make<bfloat16>({1, 1, 3, 1}, {1, 1, 1});
  EXPECT_THAT(ToDouble(RunOp(Conv2D(Padding::kValid), x, w).values), ElementsAre(258));
}

TEST(BFloat16, RoundsToNearestEvenOnKnownBitPatterns) {
  // The element type itself: float bits -> bfloat16 bits.
  EXPECT_EQ(Bits(bfloat16(FloatFromBits(0x3F808000u))), 0x3F80);  // tie, down to even
  EXPECT_EQ(Bits(bfloat16(FloatFromBits(0x3F818000u))), 0x3F82);  // tie, up to even
  EXPECT_EQ(Bits(bfloat16(FloatFromBits(0x3F808001u))), 0x3F81);  // just above the tie
  EXPECT_EQ(Bits(bfloat16(FloatFromBits(0x3F807FFFu))), 0x3F80);  // just below
  EXPECT_EQ(Bits(bfloat16(FloatFromBits(0xBF818000u))), 0xBF82);
  EXPECT_EQ(Bits(bfloat16(FloatFromBits(0x7F7FFFFFu))), 0x7F80);  // FLT_MAX -> +inf
  EXPECT_EQ(Bits(FromAcc<bfloat16>(FloatFromBits(0x3F808000u))), 0x3F80);
  EXPECT_EQ(Bits(FromAcc<bfloat16>(FloatFromBits(0x3F818000u))), 0x3F82);

  // Through the convolution: the float sum has those bit patterns.
  auto run = [](std::vector<double> channels) {
    const int64_t c = static_cast<int64_t>(channels.size());
    const Tensor<bfloat16> y =
        RunOp(Conv2D(Padding::kValid), Make<bfloat16>({1, 1, 1, c}, channels),
              Make<bfloat16>({1, 1, c, 1}, std::vector<double>(channels.size(), 1)));
    return y.values.size() == 1 ? Bits(y.values[0]) : uint16_t{0xFFFF};
  };
  const double ulp = std::ldexp(1.0, -7);                      // bfloat16 spacing at 1
  EXPECT_EQ(run({1, ulp / 2}), 0x3F80);                        // 0x3F808000
  EXPECT_EQ(run({1 + ulp, ulp / 2}), 0x3F82);                  // 0x3F818000
  EXPECT_EQ(run({1, ulp / 2, std::ldexp(1.0, -20)}), 0x3F81);  // 0x3F808008
  EXPECT_EQ(run({-1, -ulp / 2}), 0xBF80);
  EXPECT_EQ(run({-1 - ulp, -ulp / 2}), 0xBF82);
  EXPECT_EQ(run({256, 1}), 0x4380);  // 257 -> 256
  EXPECT_EQ(run({258, 1}), 0x4382);  // 259 -> 260
}

template <typename T>
std::vector<double> SeparableIntermediate(double big, double one) {
  // Width 2, channels (big, big) then (one, 0); depthwise 1x2 filters
  // channel 0 [1, 1] and channel 1 [1, 0]: depthwise outputs big + one and big.
  // Pointwise [1, -1]: (big + one) - big. TensorFlow materialises the depthwise
  // result in T, where big + one rounds (tie to even) back to big.
  SeparableConv2DParams p;
  p.padding = Padding::kValid;
  return ToDouble(RunOp(p, Make<T>({1, 1, 2, 2}, {big, big, one, 0}),
                        Make<T>({1, 2, 2, 1}, {1, 1, 1, 0}),
                        {.pointwise = Make<T>({1, 1, 2, 1}, {1, -1})})
                      .values);
}

TEST(HalfAndBFloat16, SeparableIntermediateIsRoundedToTheType) {
  EXPECT_THAT(SeparableIntermediate<half>(2048, 1), ElementsAre(0));
  EXPECT_THAT(SeparableIntermediate<bfloat16>(256, 1), ElementsAre(0));
  EXPECT_THAT(SeparableIntermediate<float>(2048, 1), ElementsAre(1));
}

TEST(HalfAndBFloat16, BiasIsAddedToTheRoundedResult) {
  // Conv result 2049 -> half 2048; + bias 1 -> 2049 -> 2048 again. Adding the
  // bias to the unrounded float sum would give 2050.
  const Tensor<half> y =
      RunOp(Conv2D(Padding::kValid), Make<half>({1, 1, 1, 2}, {2048, 1}),
            Make<half>({1, 1, 2, 1}, {1, 1}), {.bias = std::vector<half>{half(1.0f)}});
  EXPECT_THAT(ToDouble(y.values), ElementsAre(2048));
}

// ---------------------------------------------------------------------------
// int32 wraps on overflow like two's complement.

int32_t Wrap(int64_t v) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(v)));
}

TEST(Int32, WrapsOnOverflowOfTheSum) {
  const int32_t big = int32_t{1} << 30;
  // 4 taps of 2^30: 2^32 wraps to 0.
  Tensor<int32_t> y =
      RunOp(Conv2D(Padding::kValid), Tensor<int32_t>{{1, 2, 2, 1}, {big, big, big, big}},
            Tensor<int32_t>{{2, 2, 1, 1}, {1, 1, 1, 1}});
  EXPECT_THAT(y.values, ElementsAre(0));
  EXPECT_EQ(Wrap(int64_t{4} << 30), 0);
  // 3 taps: 3 * 2^30 = 0xC0000000 = -2^30.
  y = RunOp(Conv2D(Padding::kValid), Tensor<int32_t>{{1, 2, 2, 1}, {big, big, big, big}},
            Tensor<int32_t>{{2, 2, 1, 1}, {1, 1, 1, 0}});
  EXPECT_THAT(y.values, ElementsAre(-1073741824));
  EXPECT_EQ(Wrap(int64_t{3} << 30), -1073741824);
  // INT32_MAX + 1 = INT32_MIN, and back down: INT32_MIN - 1 = INT32_MAX.
  constexpr int32_t kMax = std::numeric_limits<int32_t>::max();
  constexpr int32_t kMin = std::numeric_limits<int32_t>::min();
  y = RunOp(Conv2D(Padding::kValid), Tensor<int32_t>{{1, 1, 2, 2}, {kMax, 1, kMin, -1}},
            Tensor<int32_t>{{1, 1, 2, 1}, {1, 1}});
  EXPECT_THAT(y.values, ElementsAre(kMin, kMax));
}

TEST(Int32, WrapsOnOverflowOfTheProduct) {
  // 65536 * 65536 = 2^32 -> 0; 65536 * 32768 = 2^31 -> INT32_MIN;
  // INT32_MIN * -1 -> INT32_MIN; 46341^2 = 2147488281 -> -2147479015.
  const Tensor<int32_t> x{{1, 1, 4, 1}, {65536, 65536, std::numeric_limits<int32_t>::min(), 46341}};
  Tensor<int32_t> y = RunOp(Conv2D(Padding::kValid), x, Tensor<int32_t>{{1, 1, 1, 1}, {65536}});
  EXPECT_EQ(y.values[0], 0);
  y = RunOp(Conv2D(Padding::kValid), x, Tensor<int32_t>{{1, 1, 1, 1}, {32768}});
  EXPECT_EQ(y.values[0], std::numeric_limits<int32_t>::min());
  y = RunOp(Conv2D(Padding::kValid), x, Tensor<int32_t>{{1, 1, 1, 1}, {-1}});
  EXPECT_EQ(y.values[2], std::numeric_limits<int32_t>::min());
  y = RunOp(Conv2D(Padding::kValid), x, Tensor<int32_t>{{1, 1, 1, 1}, {46341}});
  EXPECT_EQ(y.values[3], Wrap(int64_t{46341} * 46341));
  EXPECT_EQ(y.values[3], -2147479015);
}

TEST(Int32, RandomLargeValuesMatchModularArithmetic) {
  std::mt19937 rng(81);
  std::uniform_int_distribution<int32_t> dist(std::numeric_limits<int32_t>::min(),
                                              std::numeric_limits<int32_t>::max());
  Tensor<int32_t> x{{1, 4, 4, 3}, std::vector<int32_t>(48)};
  Tensor<int32_t> w{{2, 2, 3, 2}, std::vector<int32_t>(24)};
  for (int32_t& v : x.values) v = dist(rng);
  for (int32_t& v : w.values) v = dist(rng);
  std::vector<int32_t> expected;
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 2; ++k) {
        uint32_t sum = 0;
        for (int64_t di = 0; di < 2; ++di)
          for (int64_t dj = 0; dj < 2; ++dj)
            for (int64_t q = 0; q < 3; ++q)
              sum += static_cast<uint32_t>(x.values[Offset(x.shape, {0, i + di, j + dj, q})]) *
                     static_cast<uint32_t>(w.values[Offset(w.shape, {di, dj, q, k})]);
        expected.push_back(static_cast<int32_t>(sum));
      }
  EXPECT_EQ(RunOp(Conv2D(Padding::kValid), x, w).values, expected);
  // conv2d_transpose wraps the same way: dy (65536, 1) spread over a 2x2 filter
  // with 2 dy channels: dx[p] = 65536 * w[p, 0] + w[p, 1].
  ConvTransposeParams pt;
  pt.rank = 2;
  pt.output_shape = {1, 2, 2, 1};
  pt.padding = Padding::kValid;
  constexpr int32_t kMin = std::numeric_limits<int32_t>::min();
  const Tensor<int32_t> dx =
      RunOp(pt, Tensor<int32_t>{{1, 1, 1, 2}, {65536, 1}},
            Tensor<int32_t>{{2, 2, 1, 2}, {65536, 0, 32768, 5, 3, 7, -1, kMin}});
  EXPECT_THAT(dx.values, ElementsAre(0, kMin + 5, 196615, 2147418112));
}

// ---------------------------------------------------------------------------
// double accumulates in double.

TEST(Float64, AccumulatesInDouble) {
  // 1 + 1e-10: a float accumulator loses the small term in any order.
  Tensor<double> y = RunOp(Conv2D(Padding::kValid), Tensor<double>{{1, 1, 1, 2}, {1.0, 1e-10}},
                           Tensor<double>{{1, 1, 2, 1}, {1.0, 1.0}});
  ASSERT_EQ(y.values.size(), 1u);
  EXPECT_EQ(y.values[0], 1.0 + 1e-10);
  EXPECT_NE(y.values[0], 1.0);
  EXPECT_EQ(static_cast<float>(1.0f + static_cast<float>(1e-10)), 1.0f);

  // Nine taps of 1 + k * 2^-40: the sum 9 + (sum k) * 2^-40 is exact in double
  // (in any order) and far from anything float can hold.
  std::vector<double> x;
  int64_t k_sum = 0;
  for (int k = 1; k <= 9; ++k) {
    x.push_back(1.0 + k * 7 * std::ldexp(1.0, -40));
    k_sum += k * 7;
  }
  y = RunOp(Conv2D(Padding::kValid), Tensor<double>{{1, 3, 3, 1}, x},
            Tensor<double>{{3, 3, 1, 1}, std::vector<double>(9, 1.0)});
  ASSERT_EQ(y.values.size(), 1u);
  EXPECT_EQ(y.values[0], 9.0 + static_cast<double>(k_sum) * std::ldexp(1.0, -40));

  // Values that float cannot represent pass through unchanged.
  y = RunOp(Conv2D(Padding::kValid), Tensor<double>{{1, 1, 2, 1}, {0.1, 1.0 / 3.0}},
            Tensor<double>{{1, 1, 1, 1}, {1.0}});
  EXPECT_THAT(y.values, ElementsAre(0.1, 1.0 / 3.0));
}

}  // namespace
}  // namespace convserve
