// float32 requests that allow reduced precision, on the oneDNN backend: with
// bfloat16 hardware they compute in bfloat16 (inputs and weights rounded to
// bfloat16, accumulation and result in float32), so each result is within
// bfloat16's rounding of the float32 reference and, on random data, not
// equal to the strict float32 result; without it they compute in float32.
// Requests that do not allow it are untouched: float32 throughout.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/make_spec.h"
#include "core/onednn/onednn_backend.h"
#include "core/reference/reference_backend.h"
#include "gtest/gtest.h"

namespace convserve {
namespace {

struct Case {
  const char* name;
  OpParams params;
  Shape input, filter;
  std::optional<Shape> pointwise;
};

std::vector<Case> Cases() {
  Conv2DParams same;
  same.strides = {1, 2, 2, 1};
  same.padding = Padding::kSame;
  ConvTransposeParams transpose;
  transpose.rank = 2;
  transpose.output_shape = {2, 9, 9, 16};
  transpose.strides = {1, 2, 2, 1};
  transpose.padding = Padding::kSame;
  SeparableConv2DParams separable;
  separable.strides = {1, 1, 1, 1};
  separable.padding = Padding::kValid;
  return {
      {"conv2d", same, {2, 9, 9, 32}, {3, 3, 32, 16}, std::nullopt},
      {"conv2d_transpose", transpose, {2, 5, 5, 8}, {3, 3, 16, 8}, std::nullopt},
      {"separable", separable, {1, 8, 8, 16}, {3, 3, 16, 2}, Shape{1, 1, 32, 24}},
  };
}

int64_t Elements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<float> Random(const Shape& shape, std::mt19937& rng) {
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<float> v(Elements(shape));
  for (float& e : v) e = value(rng);
  return v;
}

struct Results {
  // magnitude: the reference on |x| and |w|, the sum of |products| per result.
  std::vector<float> strict_reference, magnitude, strict, reduced;
};

Results RunCase(const Case& c) {
  std::mt19937 rng(7);
  OperandInfo info;
  info.input = {DataType::kFloat32, c.input};
  info.filter = {DataType::kFloat32, c.filter};
  if (c.pointwise) info.pointwise_filter = TensorInfo{DataType::kFloat32, *c.pointwise};
  absl::StatusOr<ConvSpec> spec = MakeSpec(c.params, info, SpecLimits{});
  EXPECT_TRUE(spec.ok()) << spec.status();
  const std::vector<float> x = Random(c.input, rng), w = Random(c.filter, rng);
  const std::vector<float> pw = c.pointwise ? Random(*c.pointwise, rng) : std::vector<float>{};
  auto absolute = [](std::vector<float> v) {
    for (float& e : v) e = std::fabs(e);
    return v;
  };
  const std::vector<float> abs_x = absolute(x), abs_w = absolute(w), abs_pw = absolute(pw);
  Operands operands, magnitudes;
  operands.input = {DataType::kFloat32, c.input, reinterpret_cast<const std::byte*>(x.data())};
  operands.filter = {DataType::kFloat32, c.filter, reinterpret_cast<const std::byte*>(w.data())};
  if (c.pointwise) {
    operands.pointwise_filter = {DataType::kFloat32, *c.pointwise,
                                 reinterpret_cast<const std::byte*>(pw.data())};
  }
  magnitudes = operands;
  magnitudes.input.data = reinterpret_cast<const std::byte*>(abs_x.data());
  magnitudes.filter.data = reinterpret_cast<const std::byte*>(abs_w.data());
  magnitudes.pointwise_filter.data = reinterpret_cast<const std::byte*>(abs_pw.data());
  auto run = [&](Backend& backend, bool reduced, const Operands& ops) {
    ConvSpec s = *spec;
    s.allow_reduced_precision = reduced;
    std::vector<float> out(s.ResultElements());
    const absl::Status status = backend.Run(
        s, ops, {DataType::kFloat32, s.result_shape, reinterpret_cast<std::byte*>(out.data())});
    EXPECT_TRUE(status.ok()) << status;
    return out;
  };
  ReferenceBackend reference;
  OneDnnBackend onednn(OneDnnOptions{.threads = 1, .weight_cache = nullptr});
  return Results{run(reference, false, operands), run(reference, false, magnitudes),
                 run(onednn, false, operands), run(onednn, true, operands)};
}

bool HardwareBFloat16() {
  const std::string isa = OneDnnBackend::Isa();
  return isa == "avx512_core_bf16" || isa == "avx512_core_amx";
}

TEST(OneDnnReducedPrecision, Float32WithinBFloat16RoundingAndStrictUntouched) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    const Results r = RunCase(c);
    // Each operand rounds to bfloat16 by at most 2^-9 relative, so each
    // product by at most about 2^-8, and separable's intermediate once more.
    int differing = 0;
    for (size_t i = 0; i < r.strict_reference.size(); ++i) {
      const double m = r.magnitude[i];
      EXPECT_NEAR(r.strict[i], r.strict_reference[i], 1e-5 * m) << i;
      EXPECT_NEAR(r.reduced[i], r.strict_reference[i], std::ldexp(m, -7)) << i;
      differing += r.reduced[i] != r.strict[i];
    }
    if (HardwareBFloat16()) {
      EXPECT_GT(differing, static_cast<int>(r.strict.size()) / 2)
          << "reduced precision did not compute in bfloat16";
    } else {
      EXPECT_EQ(r.reduced, r.strict) << "no bfloat16 hardware: float32 throughout";
    }
  }
}

}  // namespace
}  // namespace convserve
