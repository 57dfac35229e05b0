// PlanCudnnGeometry checked without a GPU: a CPU model of what the cuDNN
// backend asks of cuDNN (cudnnTransformTensor, cudnnConvolutionForward and
// cudnnConvolutionBackwardData over N-D descriptors with explicit strides,
// symmetric pads, groups and dilations) runs each stage of the geometry, and
// its result must equal the reference backend's on random float64 specs:
// both layouts, 1-D (as 2-D), 2-D and 3-D, asymmetric and large pads,
// strides, dilations, groups, depthwise multipliers, separable and
// transposed. A wrong stride, dimension order, pad, crop offset or filter
// view shows as a wrong value.
#include "core/cuda/cudnn_geometry.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "core/reference/reference_backend.h"
#include "gtest/gtest.h"

namespace convserve::cuda {
namespace {

using Index = std::array<int64_t, kMaxTensorRank>;

// Calls fn(index) for every index of `t`.
void ForEach(const TensorLayout& t, const std::function<void(const Index&)>& fn) {
  if (t.Elements() == 0) return;
  Index index{};
  while (true) {
    fn(index);
    int i = t.rank - 1;
    while (i >= 0 && ++index[i] == t.dims[i]) index[i--] = 0;
    if (i < 0) return;
  }
}

int64_t Offset(const TensorLayout& t, const Index& index) {
  int64_t offset = 0;
  for (int i = 0; i < t.rank; ++i) offset += index[i] * t.strides[i];
  return offset;
}

// cudnnTransformTensor with alpha 1, beta 0.
void Transform(const TensorLayout& from, const double* src, const TensorLayout& to, double* dst) {
  ASSERT_EQ(from.dims, to.dims);
  ForEach(from, [&](const Index& i) { dst[Offset(to, i)] = src[Offset(from, i)]; });
}

// The spatial input position a window tap reads, for output position `o`.
int64_t Tap(const StageGeometry& g, int d, int64_t o, int64_t f) {
  return o * g.strides[d] - g.pads[d] + f * g.dilations[d];
}

// Calls fn(x index, filter index) for every tap of output `yi`'s window that
// falls inside x (cuDNN's grouped cross-correlation with symmetric pads).
void ForEachTap(const StageGeometry& g, const Index& yi,
                const std::function<void(const Index&, const Index&)>& fn) {
  const int64_t k_per_group = g.filter.dims[0] / g.groups, c_per_group = g.filter.dims[1];
  TensorLayout taps = g.filter;
  taps.dims[0] = 1;
  ForEach(taps, [&](const Index& t) {
    Index xi{};
    xi[0] = yi[0];
    xi[1] = yi[1] / k_per_group * c_per_group + t[1];
    for (int d = 0; d < g.spatial_rank; ++d) {
      xi[2 + d] = Tap(g, d, yi[2 + d], t[2 + d]);
      if (xi[2 + d] < 0 || xi[2 + d] >= g.x.dims[2 + d]) return;
    }
    Index wi = t;
    wi[0] = yi[1];
    fn(xi, wi);
  });
}

// cudnnConvolutionForward: y_cudnn from x and the packed filter.
void Forward(const StageGeometry& g, const double* x, const double* w, double* y) {
  ForEach(g.y_cudnn, [&](const Index& yi) {
    double sum = 0;
    ForEachTap(g, yi, [&](const Index& xi, const Index& wi) {
      sum += x[Offset(g.x, xi)] * w[Offset(g.filter, wi)];
    });
    y[Offset(g.y_cudnn, yi)] = sum;
  });
}

// cudnnConvolutionBackwardData: dx (the stage's x) from dy (y_cudnn).
void BackwardData(const StageGeometry& g, const double* dy, const double* w, double* dx) {
  ForEach(g.x, [&](const Index& xi) { dx[Offset(g.x, xi)] = 0; });
  ForEach(g.y_cudnn, [&](const Index& yi) {
    ForEachTap(g, yi, [&](const Index& xi, const Index& wi) {
      dx[Offset(g.x, xi)] += dy[Offset(g.y_cudnn, yi)] * w[Offset(g.filter, wi)];
    });
  });
}

// One stage as the backend runs it, from `in` to `out` (the stage's caller's
// buffers: x and y_user forward, y_user and x backward).
void RunStage(const StageGeometry& g, const double* tf_filter, const double* in, double* out) {
  std::vector<double> w(g.filter.Span());
  Transform(g.filter_tf, tf_filter, g.filter, w.data());
  std::vector<double> scratch(g.y_cudnn.Span(), 0.0);
  if (g.backward_data) {
    const double* dy = in;
    if (!g.y_direct) {
      Transform(g.y_user, in, g.y_tf, scratch.data() + g.y_offset);
      dy = scratch.data();
    }
    BackwardData(g, dy, w.data(), out);
    return;
  }
  if (g.y_direct) {
    Forward(g, in, w.data(), out);
    return;
  }
  Forward(g, in, w.data(), scratch.data());
  Transform(g.y_tf, scratch.data() + g.y_offset, g.y_user, out);
}

struct Problem {
  ConvSpec spec;
  std::vector<double> input, filter, pointwise;
  Shape input_shape, filter_shape, pointwise_shape;
};

int64_t Uniform(std::mt19937& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

Shape ActivationShape(const ConvSpec& s, const std::array<int64_t, kMaxSpatialRank>& spatial,
                      int64_t channels) {
  Shape shape{s.batch};
  if (!s.channels_last) shape.push_back(channels);
  for (int d = 0; d < s.rank; ++d) shape.push_back(spatial[d]);
  if (s.channels_last) shape.push_back(channels);
  return shape;
}

int64_t Elements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// A random valid spec: TF's forward geometry with any pads, in the shape
// MakeSpec gives (1-D ops are 2-D with a height of 1).
Problem RandomProblem(std::mt19937& rng) {
  ConvSpec s;
  s.dtype = DataType::kFloat64;
  s.channels_last = Uniform(rng, 0, 1) == 1;
  const int kind = static_cast<int>(Uniform(rng, 0, 3));  // forward, transposed, separable, 1-D
  s.transposed = kind == 1;
  s.rank = kind == 2 || kind == 3 ? 2 : static_cast<int>(Uniform(rng, 2, 3));
  s.batch = Uniform(rng, 1, 2);
  s.groups = Uniform(rng, 1, 3);
  s.in_channels = s.groups * Uniform(rng, 1, 3);
  s.out_channels = s.groups * Uniform(rng, 1, 3);
  for (int d = 0; d < s.rank; ++d) {
    const bool flat = kind == 3 && d == 0;
    s.filter_spatial[d] = flat ? 1 : Uniform(rng, 1, 4);
    s.strides[d] = flat ? 1 : Uniform(rng, 1, 3);
    s.dilations[d] = flat ? 1 : Uniform(rng, 1, 3);
    s.input_spatial[d] = flat ? 1 : Uniform(rng, 1, 9);
    const int64_t span = (s.filter_spatial[d] - 1) * s.dilations[d] + 1;
    s.pad_before[d] = flat ? 0 : Uniform(rng, 0, span + 1);
    s.pad_after[d] = flat ? 0 : Uniform(rng, 0, span + 2);
    // At least one output: grow the end pad where the window does not fit.
    const int64_t padded = s.input_spatial[d] + s.pad_before[d] + s.pad_after[d];
    if (padded < span) s.pad_after[d] += span - padded;
    s.output_spatial[d] =
        (s.input_spatial[d] + s.pad_before[d] + s.pad_after[d] - span) / s.strides[d] + 1;
  }
  if (kind == 2) {
    s.groups = s.in_channels;  // depthwise with a multiplier, then pointwise
    s.out_channels = s.in_channels * Uniform(rng, 1, 2);
    s.pointwise_groups = Uniform(rng, 1, 2) == 2 && s.out_channels % 2 == 0 ? 2 : 1;
    s.pointwise_out_channels = s.pointwise_groups * Uniform(rng, 1, 3);
  }
  s.result_shape = s.transposed
                       ? ActivationShape(s, s.input_spatial, s.in_channels)
                       : ActivationShape(s, s.output_spatial,
                                         kind == 2 ? s.pointwise_out_channels : s.out_channels);

  Problem p;
  p.spec = s;
  p.input_shape = s.transposed ? ActivationShape(s, s.output_spatial, s.out_channels)
                               : ActivationShape(s, s.input_spatial, s.in_channels);
  for (int d = 0; d < s.rank; ++d) p.filter_shape.push_back(s.filter_spatial[d]);
  p.filter_shape.push_back(s.in_channels / s.groups);
  p.filter_shape.push_back(s.out_channels);
  std::uniform_int_distribution<int> value(-8, 8);
  auto fill = [&](const Shape& shape) {
    std::vector<double> v(Elements(shape));
    for (double& e : v) e = value(rng);
    return v;
  };
  p.input = fill(p.input_shape);
  p.filter = fill(p.filter_shape);
  if (kind == 2) {
    p.pointwise_shape = {1, 1, s.out_channels / s.pointwise_groups, s.pointwise_out_channels};
    p.pointwise = fill(p.pointwise_shape);
  }
  return p;
}

std::vector<double> Reference(const Problem& p) {
  Operands operands;
  operands.input = {DataType::kFloat64, p.input_shape,
                    reinterpret_cast<const std::byte*>(p.input.data())};
  operands.filter = {DataType::kFloat64, p.filter_shape,
                     reinterpret_cast<const std::byte*>(p.filter.data())};
  if (!p.pointwise.empty()) {
    operands.pointwise_filter = {DataType::kFloat64, p.pointwise_shape,
                                 reinterpret_cast<const std::byte*>(p.pointwise.data())};
  }
  std::vector<double> out(Elements(p.spec.result_shape), -1.0);
  ReferenceBackend reference;
  const absl::Status status = reference.Run(
      p.spec, operands,
      {DataType::kFloat64, p.spec.result_shape, reinterpret_cast<std::byte*>(out.data())});
  EXPECT_TRUE(status.ok()) << status;
  return out;
}

std::vector<double> ThroughGeometry(const Problem& p) {
  const CudnnGeometry geometry = PlanCudnnGeometry(p.spec);
  std::vector<double> out(Elements(p.spec.result_shape), -1.0);
  if (geometry.stages.size() == 1) {
    RunStage(geometry.stages[0], p.filter.data(), p.input.data(), out.data());
    return out;
  }
  std::vector<double> intermediate(geometry.intermediate.Span());
  RunStage(geometry.stages[0], p.filter.data(), p.input.data(), intermediate.data());
  RunStage(geometry.stages[1], p.pointwise.data(), intermediate.data(), out.data());
  return out;
}

TEST(CudnnGeometry, ModelOfCudnnMatchesReference) {
  std::mt19937 rng(20261201);
  int asymmetric = 0, symmetric = 0;
  for (int trial = 0; trial < 1500; ++trial) {
    const Problem p = RandomProblem(rng);
    const CudnnGeometry geometry = PlanCudnnGeometry(p.spec);
    ASSERT_TRUE(FitsCudnn(geometry)) << p.spec.DebugString();
    (geometry.stages[0].y_direct ? symmetric : asymmetric)++;
    // Integer operands: every sum is exact in double, so the results are equal.
    ASSERT_EQ(ThroughGeometry(p), Reference(p)) << p.spec.DebugString();
  }
  // Both paths (direct, and crop or embed) were exercised.
  EXPECT_GT(symmetric, 100);
  EXPECT_GT(asymmetric, 100);
}

TEST(CudnnGeometry, LayoutsAreTheClientsBytes) {
  // NHWC [2, 3, 4, 5] as [N, C, H, W]: strides (60, 1, 15, 3); NCHW: (60, 20, 5, 1).
  const std::array<int64_t, kMaxTensorRank> dims{2, 5, 3, 4, 0};
  EXPECT_EQ(PackedLayout(2, dims, true).strides,
            (std::array<int64_t, kMaxTensorRank>{60, 1, 20, 5, 0}));
  EXPECT_EQ(PackedLayout(2, dims, false).strides,
            (std::array<int64_t, kMaxTensorRank>{60, 12, 4, 1, 0}));
  EXPECT_EQ(PackedLayout(2, dims, true).Span(), 120);
}

TEST(CudnnGeometry, SamePaddingWithOddPixelCrops) {
  // conv2d 1x4x4x1, 2x2 filter, stride 1, SAME: TF pads 0 before, 1 after.
  ConvSpec s;
  s.batch = 1;
  s.in_channels = s.out_channels = 1;
  s.input_spatial = {4, 4, 1};
  s.filter_spatial = {2, 2, 1};
  s.output_spatial = {4, 4, 1};
  s.pad_after = {1, 1, 0};
  s.result_shape = {1, 4, 4, 1};
  const StageGeometry g = PlanCudnnGeometry(s).stages.at(0);
  EXPECT_FALSE(g.y_direct);
  EXPECT_EQ(g.pads[0], 1);  // one stride more before, and its first output dropped
  EXPECT_EQ(g.y_cudnn.dims[2], 5);
  EXPECT_EQ(g.y_offset, g.y_cudnn.strides[2] + g.y_cudnn.strides[3]);
}

TEST(CudnnGeometry, SizesPastCudnnsIntDoNotFit) {
  ConvSpec s;
  s.batch = 1;
  s.in_channels = s.out_channels = 1;
  s.input_spatial = {int64_t{1} << 31, 1, 1};
  s.output_spatial = {int64_t{1} << 31, 1, 1};
  s.result_shape = {1, int64_t{1} << 31, 1, 1};
  EXPECT_FALSE(FitsCudnn(PlanCudnnGeometry(s)));
  s.input_spatial[0] = s.output_spatial[0] = 1 << 20;
  EXPECT_TRUE(FitsCudnn(PlanCudnnGeometry(s)));
}

}  // namespace
}  // namespace convserve::cuda
