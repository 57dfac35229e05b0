// The conformance cases (see conformance_cases.h): the generator, the
// requests it builds, operands, reference results and tolerances.
#include "tests/conformance/conformance_cases.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/element_types.h"
#include "core/make_spec.h"
#include "core/reference/reference_backend.h"
#include "gtest/gtest.h"

namespace convserve::conformance {
namespace {

// ---------------------------------------------------------------------------
// Requests.

bool IsTransposed(Op op) {
  return op == Op::kConv2DTranspose || op == Op::kConv3DTranspose || op == Op::kConvTranspose ||
         op == Op::kConv1DTranspose;
}
bool IsDepthwise(Op op) { return op == Op::kDepthwise || op == Op::kSeparable; }
// Whether `op` of spatial rank n takes explicit paddings (conv_transpose
// only when 2-D, where TF runs conv2d_transpose).
bool HasExplicitPadding(Op op, int n) {
  return op == Op::kConvolution || op == Op::kConv2D || op == Op::kDepthwise ||
         op == Op::kConv2DTranspose || (op == Op::kConvTranspose && n == 2);
}
// TF refuses strides > 1 together with dilations > 1 for these.
bool RefusesStridedAndDilated(Op op) {
  return op == Op::kConvolution || IsDepthwise(op) || op == Op::kAtrous;
}
bool AllowsExtraBatchDims(Op op) {
  return op == Op::kConvolution || op == Op::kConv1D || op == Op::kConv2D || op == Op::kConv3D;
}
bool HasGroups(Op op) { return !IsDepthwise(op) && op != Op::kAtrous; }

int64_t At(const std::vector<int64_t>& v, int i) { return v.empty() ? 1 : v[i]; }

int64_t Effective(const Geometry& g, int i) { return (g.kernel[i] - 1) * At(g.dilations, i) + 1; }

// Forward output size of spatial dim i (section 1 of TF_SEMANTICS.md).
int64_t ForwardOutput(const Geometry& g, int i) {
  const int64_t s = At(g.strides, i);
  switch (g.padding) {
    case Padding::kSame: return (g.spatial[i] + s - 1) / s;
    case Padding::kExplicit:
      return (g.spatial[i] + g.pad_before[i] + g.pad_after[i] - Effective(g, i) + s) / s;
    default: return (g.spatial[i] - Effective(g, i) + s) / s;
  }
}

int64_t YChannels(const Geometry& g) {
  return IsDepthwise(g.op) ? g.in_channels * g.out_channels : g.out_channels;
}

int64_t ResultChannels(const Geometry& g) {
  if (IsTransposed(g.op)) return g.in_channels;
  return g.op == Op::kSeparable ? g.pointwise_out : YChannels(g);
}

// Multiply-adds of the reference, to keep the suite fast.
int64_t Cost(const Geometry& g) {
  int64_t cost = YChannels(g);
  for (int64_t b : g.batch) cost *= b;
  for (int i = 0; i < g.n; ++i) cost *= std::max<int64_t>(ForwardOutput(g, i), 1) * g.kernel[i];
  cost *= IsDepthwise(g.op) ? 1 : g.in_channels / g.groups;
  if (g.op == Op::kSeparable)
    cost += cost / std::max<int64_t>(g.kernel[0] * g.kernel[1], 1) * g.pointwise_out /
            g.pointwise_groups;
  return cost;
}

struct Request {
  OpParams params;
  OperandInfo info;
};

// [batch...] + spatial + [channels], or channels first.
Shape ActivationShape(const Geometry& g, const std::vector<int64_t>& lead,
                      const std::vector<int64_t>& spatial, int64_t channels) {
  Shape shape = lead;
  if (!g.channels_last) shape.push_back(channels);
  shape.insert(shape.end(), spatial.begin(), spatial.end());
  if (g.channels_last) shape.push_back(channels);
  return shape;
}

// An N+2 list in the data format's order: `spatial` at the spatial positions, 1 elsewhere.
std::vector<int64_t> FullList(const Geometry& g, const std::vector<int64_t>& spatial) {
  if (spatial.empty()) return {};
  std::vector<int64_t> full(g.n + 2, 1);
  for (int i = 0; i < g.n; ++i) full[g.channels_last ? i + 1 : i + 2] = spatial[i];
  return full;
}

std::vector<int64_t> ExplicitPaddings(const Geometry& g) {
  if (g.padding != Padding::kExplicit) return {};
  std::vector<int64_t> pads(2 * (g.n + 2), 0);
  for (int i = 0; i < g.n; ++i) {
    const int dim = g.channels_last ? i + 1 : i + 2;
    pads[2 * dim] = g.pad_before[i];
    pads[2 * dim + 1] = g.pad_after[i];
  }
  return pads;
}

std::string DataFormat(const Geometry& g) {
  static const char* const kLast[] = {"NWC", "NHWC", "NDHWC"};
  static const char* const kFirst[] = {"NCW", "NCHW", "NCDHW"};
  return (g.channels_last ? kLast : kFirst)[g.n - 1];
}

Request BuildRequest(const Geometry& g, DataType dtype) {
  Request r;
  const std::string format = DataFormat(g);
  const std::vector<int64_t> strides_full = FullList(g, g.strides);
  const std::vector<int64_t> dilations_full = FullList(g, g.dilations);
  switch (g.op) {
    case Op::kConvolution:  // N-element lists
      r.params = ConvolutionParams{g.strides, g.padding, ExplicitPaddings(g), format, g.dilations};
      break;
    case Op::kConv1D: r.params = Conv1DParams{g.strides, g.padding, format, g.dilations}; break;
    case Op::kConv2D:  // N+2-element lists, as TF's conv2d documents them
      r.params = Conv2DParams{strides_full, g.padding, ExplicitPaddings(g), format, dilations_full};
      break;
    case Op::kConv3D:
      r.params = Conv3DParams{strides_full, g.padding, format, dilations_full};
      break;
    case Op::kDepthwise:
      r.params =
          DepthwiseConv2DParams{strides_full, g.padding, ExplicitPaddings(g), format, g.dilations};
      break;
    case Op::kSeparable:
      r.params = SeparableConv2DParams{strides_full, g.padding, format, g.dilations};
      break;
    case Op::kAtrous: r.params = AtrousConv2DParams{At(g.dilations, 0), g.padding}; break;
    case Op::kConv1DTranspose:
    case Op::kConv2DTranspose:
    case Op::kConv3DTranspose:
    case Op::kConvTranspose: {
      const int rank = g.op == Op::kConv1DTranspose   ? 1
                       : g.op == Op::kConv2DTranspose ? 2
                       : g.op == Op::kConv3DTranspose ? 3
                                                      : 0;
      r.params = ConvTransposeParams{rank,
                                     g.spatial_output_shape
                                         ? g.spatial
                                         : ActivationShape(g, g.batch, g.spatial, g.in_channels),
                                     g.strides,
                                     g.padding,
                                     ExplicitPaddings(g),
                                     format,
                                     dilations_full};
      break;
    }
  }
  std::vector<int64_t> y_spatial(g.n);
  for (int i = 0; i < g.n; ++i) y_spatial[i] = ForwardOutput(g, i);
  Shape filter = g.kernel;
  if (IsDepthwise(g.op)) {
    filter.insert(filter.end(), {g.in_channels, g.out_channels});
  } else {
    filter.insert(filter.end(), {g.in_channels / g.groups, g.out_channels});
  }
  r.info.input = {dtype, IsTransposed(g.op)
                             ? ActivationShape(g, g.batch, y_spatial, g.out_channels)
                             : ActivationShape(g, g.batch, g.spatial, g.in_channels)};
  r.info.filter = {dtype, filter};
  if (g.op == Op::kSeparable) {
    r.info.pointwise_filter =
        TensorInfo{dtype, {1, 1, YChannels(g) / g.pointwise_groups, g.pointwise_out}};
  }
  if (g.bias) r.info.bias = TensorInfo{dtype, {ResultChannels(g)}};
  r.info.activation = g.activation;
  return r;
}

// ---------------------------------------------------------------------------
// Tensors.

Buffer MakeBuffer(DataType dtype, Shape shape, const std::vector<double>& values) {
  Buffer b{dtype, std::move(shape), {}};
  b.bytes.resize(static_cast<size_t>(b.size() * ItemSize(dtype)));
  DispatchDataType(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = reinterpret_cast<T*>(b.bytes.data());
    for (int64_t i = 0; i < b.size(); ++i) p[i] = static_cast<T>(values[i]);
  });
  return b;
}

// Uniform in [-1, 1] for the float types, small integers for int32.
Buffer RandomBuffer(DataType dtype, Shape shape, std::mt19937& rng) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<double> values(static_cast<size_t>(n));
  std::uniform_real_distribution<double> real(-1.0, 1.0);
  std::uniform_int_distribution<int> integer(-3, 3);
  for (double& v : values) v = dtype == DataType::kInt32 ? integer(rng) : real(rng);
  return MakeBuffer(dtype, std::move(shape), values);
}

// The same values as float64, absolute when `absolute`.
Buffer AsFloat64(const Buffer& b, bool absolute) {
  std::vector<double> values(static_cast<size_t>(b.size()));
  for (int64_t i = 0; i < b.size(); ++i) values[i] = absolute ? std::abs(b.Get(i)) : b.Get(i);
  return MakeBuffer(DataType::kFloat64, b.shape, values);
}
// ---------------------------------------------------------------------------
// Tolerances.

int64_t ReductionLength(const ConvSpec& s) {
  int64_t taps = 1;
  for (int i = 0; i < s.rank; ++i) taps *= s.filter_spatial[i];
  int64_t k = taps * (s.transposed ? s.out_channels : s.in_channels) / s.groups;
  if (s.pointwise_out_channels > 0) k += s.out_channels / s.pointwise_groups;
  return k;
}

int Precision(DataType dtype) {
  switch (dtype) {
    case DataType::kBFloat16: return 8;
    case DataType::kFloat16: return 11;
    case DataType::kFloat64: return 53;
    default: return 24;
  }
}
int MinExponent(DataType dtype) {  // of the smallest subnormal
  switch (dtype) {
    case DataType::kBFloat16: return -133;
    case DataType::kFloat16: return -24;
    case DataType::kFloat64: return -1074;
    default: return -149;
  }
}
double Epsilon(DataType dtype) { return std::ldexp(1.0, 1 - Precision(dtype)); }
// The spacing of `dtype`'s values at |v|.
double Ulp(DataType dtype, double v) {
  int exponent = 0;
  std::frexp(std::abs(v), &exponent);  // |v| = m * 2^exponent, m in [0.5, 1)
  const int e = v == 0 ? MinExponent(dtype) : exponent - Precision(dtype);
  return std::ldexp(1.0, std::max(e, MinExponent(dtype)));
}

bool Transcendental(Activation a) {
  return a == Activation::kElu || a == Activation::kSigmoid || a == Activation::kTanh;
}

// Index of the channel of result element i.
int64_t ChannelOf(const ConvSpec& spec, int64_t i, int64_t elements) {
  const int64_t channels = spec.ResultChannels();
  if (spec.channels_last) return i % channels;
  const int64_t plane = elements / (spec.batch * channels);
  return (i / plane) % channels;
}

// ---------------------------------------------------------------------------
// The generator.

int64_t Uniform(std::mt19937& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}
template <typename T>
T Pick(std::mt19937& rng, const std::vector<T>& options) {
  return options[static_cast<size_t>(Uniform(rng, 0, static_cast<int64_t>(options.size()) - 1))];
}

int SpatialRank(Op op, std::mt19937& rng) {
  switch (op) {
    case Op::kConv1D:
    case Op::kConv1DTranspose: return 1;
    case Op::kConv3D:
    case Op::kConv3DTranspose: return 3;
    case Op::kConvolution:
    case Op::kConvTranspose: return static_cast<int>(Uniform(rng, 1, 3));
    default: return 2;
  }
}

constexpr int64_t kMaxCost = 300000;

// A random valid request for `op`, small enough for the reference loops.
Geometry RandomGeometry(Op op, std::mt19937& rng) {
  for (;;) {
    Geometry g;
    g.op = op;
    g.n = SpatialRank(op, rng);
    const int n = g.n;
    // Spec dims: 1-D ops run as 2-D with a dummy height, so their widths can be longer.
    const int64_t max_in = n == 3 ? 6 : n == 2 ? 9 : 16;
    g.spatial.resize(n);
    g.kernel.resize(n);
    for (int i = 0; i < n; ++i) {
      g.spatial[i] = Uniform(rng, 1, max_in);
      g.kernel[i] = Uniform(rng, 1, n == 3 ? 3 : 4);
    }
    // Strides and/or dilations.
    const int64_t mode = Uniform(rng, 0, RefusesStridedAndDilated(op) ? 2 : 3);
    const bool equal = IsDepthwise(op) || op == Op::kAtrous;  // TF wants equal row/col values
    auto values = [&](int64_t hi) {
      std::vector<int64_t> v(n, Uniform(rng, 1, hi));
      if (!equal)
        for (int64_t& x : v) x = Uniform(rng, 1, hi);
      return v;
    };
    if (op != Op::kAtrous && (mode == 1 || mode == 3)) g.strides = values(3);
    if (mode == 2 || mode == 3 || op == Op::kAtrous) g.dilations = values(3);
    // Padding.
    std::vector<Padding> paddings = {Padding::kSame, Padding::kValid};
    if (HasExplicitPadding(op, n)) paddings.push_back(Padding::kExplicit);
    g.padding = Pick(rng, paddings);
    if (g.padding == Padding::kExplicit) {
      for (int i = 0; i < n; ++i) {
        g.pad_before.push_back(Uniform(rng, 0, 3));
        g.pad_after.push_back(Uniform(rng, 0, 3));
      }
    }
    if (IsTransposed(op) && g.padding == Padding::kValid) {
      // Every legal output size, trailing positions included.
      for (int i = 0; i < n; ++i) {
        g.spatial[i] = Effective(g, i) + Uniform(rng, 0, 2 * At(g.strides, i) - 1);
      }
    }
    bool valid = true;
    for (int i = 0; i < n; ++i) valid &= ForwardOutput(g, i) >= 1;
    if (!valid) continue;
    // Channels and groups.
    const std::vector<int64_t> channels = {1, 2, 3, 4, 5, 8, 16, 17, 33};
    g.in_channels = Pick(rng, channels);
    if (IsDepthwise(op)) {
      g.out_channels = Uniform(rng, 1, 2);
    } else {
      if (HasGroups(op) && Uniform(rng, 0, 2) == 0) {
        std::vector<int64_t> divisors;
        for (int64_t d = 1; d <= g.in_channels; ++d) {
          if (g.in_channels % d == 0) divisors.push_back(d);
        }
        g.groups = Pick(rng, divisors);
      }
      g.out_channels = g.groups * Uniform(rng, 1, g.groups > 1 ? 3 : 20);
    }
    if (op == Op::kSeparable) {
      const int64_t depth = YChannels(g);
      g.pointwise_groups = depth % 2 == 0 ? Uniform(rng, 1, 2) : 1;
      g.pointwise_out = g.pointwise_groups * Uniform(rng, 1, 12);
    }
    if (op == Op::kConv2DTranspose && g.groups == 1)
      g.spatial_output_shape = Uniform(rng, 0, 2) == 0;
    g.batch = {Uniform(rng, 1, 2)};
    if (AllowsExtraBatchDims(op) && Uniform(rng, 0, 3) == 0) g.batch = {2, Uniform(rng, 1, 2)};
    g.channels_last = true;
    g.bias = Uniform(rng, 0, 1) == 1;
    g.activation = static_cast<Activation>(Uniform(rng, 0, 6));
    if (Cost(g) <= kMaxCost) return g;
  }
}

// Hand-picked edge cases for `op`, channels last.
std::vector<Geometry> EdgeGeometries(Op op) {
  std::vector<Geometry> out;
  auto add = [&](Geometry g) {
    g.op = op;
    out.push_back(std::move(g));
  };
  const Padding kValid = Padding::kValid, kExplicit = Padding::kExplicit;
  switch (op) {
    case Op::kConv2D:
      add({.n = 2, .spatial = {1, 1}, .kernel = {3, 3}, .in_channels = 3, .out_channels = 5});
      add({.n = 2,
           .spatial = {1, 1},
           .kernel = {1, 1},
           .in_channels = 17,
           .out_channels = 33,
           .padding = kValid,
           .bias = true,
           .activation = Activation::kRelu});
      // Filter larger than the input under VALID: an empty output.
      add({.n = 2,
           .spatial = {3, 4},
           .kernel = {4, 5},
           .in_channels = 3,
           .out_channels = 2,
           .padding = kValid});
      add({.n = 2,
           .batch = {0},
           .spatial = {5, 5},
           .kernel = {3, 3},
           .in_channels = 4,
           .out_channels = 4,
           .bias = true});
      // Odd SAME padding: the extra pixel goes to the end.
      add({.n = 2, .spatial = {6, 7}, .kernel = {4, 2}, .in_channels = 5, .out_channels = 3});
      add({.n = 2,
           .spatial = {7, 8},
           .kernel = {2, 3},
           .strides = {2, 3},
           .in_channels = 3,
           .out_channels = 17});
      // Grouped.
      add({.n = 2,
           .spatial = {5, 6},
           .kernel = {3, 3},
           .in_channels = 6,
           .out_channels = 4,
           .groups = 2});
      add({.n = 2,
           .spatial = {4, 4},
           .kernel = {2, 2},
           .in_channels = 8,
           .out_channels = 12,
           .groups = 4,
           .padding = kValid});
      add({.n = 2,
           .spatial = {4, 5},
           .kernel = {3, 1},
           .in_channels = 34,
           .out_channels = 10,
           .groups = 2,
           .bias = true,
           .activation = Activation::kLeakyRelu});
      add({.n = 2,
           .spatial = {3, 3},
           .kernel = {2, 2},
           .in_channels = 33,
           .out_channels = 6,
           .groups = 3,
           .padding = kValid});
      add({.n = 2,
           .spatial = {6, 5},
           .kernel = {3, 2},
           .strides = {2, 1},
           .in_channels = 5,
           .out_channels = 7,
           .padding = kExplicit,
           .pad_before = {2, 0},
           .pad_after = {0, 3}});
      add({.n = 2,
           .batch = {2, 3},
           .spatial = {4, 4},
           .kernel = {3, 3},
           .in_channels = 3,
           .out_channels = 4});
      // Explicit pads larger than the filter: windows entirely in the padding
      // (oneDNN 2.6.3's AMX bfloat16 kernel crashed on this one).
      add({.n = 2,
           .spatial = {5, 9},
           .kernel = {3, 3},
           .strides = {2, 1},
           .in_channels = 16,
           .out_channels = 14,
           .padding = kExplicit,
           .pad_before = {1, 0},
           .pad_after = {3, 2},
           .bias = true,
           .activation = Activation::kElu});
      add({.n = 2,
           .spatial = {3, 3},
           .kernel = {2, 2},
           .strides = {2, 2},
           .in_channels = 3,
           .out_channels = 2,
           .padding = kExplicit,
           .pad_before = {4, 2},
           .pad_after = {0, 5}});
      // TF's conv2d takes strides and dilations > 1 together.
      add({.n = 2,
           .spatial = {9, 9},
           .kernel = {3, 3},
           .strides = {2, 2},
           .dilations = {2, 2},
           .in_channels = 16,
           .out_channels = 16});
      break;
    case Op::kConv1D:
      add({.n = 1,
           .spatial = {9},
           .kernel = {3},
           .strides = {2},
           .in_channels = 5,
           .out_channels = 17});
      add({.n = 1,
           .spatial = {11},
           .kernel = {3},
           .dilations = {2},
           .in_channels = 3,
           .out_channels = 4,
           .padding = kValid});
      add({.n = 1,
           .batch = {2, 2},
           .spatial = {7},
           .kernel = {2},
           .in_channels = 4,
           .out_channels = 2,
           .groups = 2});
      add({.n = 1,
           .spatial = {3},
           .kernel = {4},
           .in_channels = 2,
           .out_channels = 2,
           .padding = kValid});  // empty output
      add({.n = 1, .spatial = {1}, .kernel = {1}, .in_channels = 1, .out_channels = 1});
      break;
    case Op::kConv3D:
      add({.n = 3,
           .spatial = {3, 4, 5},
           .kernel = {2, 3, 2},
           .strides = {1, 2, 1},
           .in_channels = 3,
           .out_channels = 5});
      add({.n = 3,
           .spatial = {3, 3, 4},
           .kernel = {2, 2, 2},
           .in_channels = 4,
           .out_channels = 6,
           .groups = 2});
      add({.n = 3,
           .spatial = {5, 3, 3},
           .kernel = {2, 2, 1},
           .dilations = {2, 1, 1},
           .in_channels = 2,
           .out_channels = 17,
           .padding = kValid});
      add({.n = 3,
           .spatial = {1, 1, 1},
           .kernel = {3, 3, 3},
           .in_channels = 5,
           .out_channels = 3,
           .bias = true,
           .activation = Activation::kRelu6});
      add({.n = 3,
           .batch = {0},
           .spatial = {2, 2, 2},
           .kernel = {1, 1, 1},
           .in_channels = 3,
           .out_channels = 3});
      // oneDNN 2.6.3's AMX bfloat16 3-D kernel computed this one wrongly on 2 threads.
      add({.n = 3,
           .batch = {2},
           .spatial = {5, 4, 4},
           .kernel = {2, 1, 1},
           .strides = {3, 1, 1},
           .in_channels = 33,
           .out_channels = 6});
      add({.n = 3,
           .spatial = {5, 3, 3},
           .kernel = {1, 1, 1},
           .in_channels = 5,
           .out_channels = 12,
           .bias = true,
           .activation = Activation::kElu});
      add({.n = 3,
           .batch = {2, 1},
           .spatial = {2, 3, 2},
           .kernel = {2, 2, 2},
           .in_channels = 3,
           .out_channels = 2,
           .padding = kValid});
      break;
    case Op::kConvolution:
      add({.n = 1,
           .spatial = {10},
           .kernel = {4},
           .dilations = {3},
           .in_channels = 6,
           .out_channels = 9,
           .groups = 3});
      add({.n = 2,
           .spatial = {6, 6},
           .kernel = {3, 3},
           .dilations = {2, 1},
           .in_channels = 17,
           .out_channels = 3,
           .padding = kExplicit,
           .pad_before = {1, 2},
           .pad_after = {3, 0}});
      add({.n = 3,
           .spatial = {3, 4, 4},
           .kernel = {1, 3, 2},
           .strides = {1, 2, 3},
           .in_channels = 4,
           .out_channels = 4,
           .groups = 4});
      add({.n = 2,
           .spatial = {2, 2},
           .kernel = {3, 3},
           .in_channels = 1,
           .out_channels = 1,
           .padding = kValid});
      break;
    case Op::kDepthwise:
      add({.n = 2,
           .spatial = {7, 7},
           .kernel = {3, 3},
           .strides = {2, 2},
           .in_channels = 17,
           .out_channels = 1});
      add({.n = 2,
           .spatial = {6, 5},
           .kernel = {3, 2},
           .dilations = {2, 2},
           .in_channels = 5,
           .out_channels = 2,
           .padding = kValid});
      add({.n = 2,
           .spatial = {4, 5},
           .kernel = {2, 3},
           .in_channels = 3,
           .out_channels = 2,
           .padding = kExplicit,
           .pad_before = {1, 0},
           .pad_after = {2, 1}});
      add({.n = 2,
           .spatial = {1, 1},
           .kernel = {3, 3},
           .in_channels = 33,
           .out_channels = 2,
           .bias = true,
           .activation = Activation::kTanh});
      add({.n = 2, .spatial = {6, 6}, .kernel = {4, 4}, .in_channels = 16, .out_channels = 1});
      add({.n = 2,
           .spatial = {2, 3},
           .kernel = {3, 3},
           .in_channels = 2,
           .out_channels = 2,
           .padding = kValid});
      break;
    case Op::kSeparable:
      add({.n = 2,
           .spatial = {5, 5},
           .kernel = {3, 3},
           .in_channels = 3,
           .out_channels = 1,
           .pointwise_out = 17});
      add({.n = 2,
           .spatial = {6, 4},
           .kernel = {2, 2},
           .in_channels = 5,
           .out_channels = 2,
           .pointwise_out = 8,
           .pointwise_groups = 2});
      add({.n = 2,
           .spatial = {4, 4},
           .kernel = {3, 3},
           .in_channels = 5,
           .out_channels = 2,
           .pointwise_out = 5,
           .pointwise_groups = 5,
           .bias = true,
           .activation = Activation::kSigmoid});
      add({.n = 2,
           .spatial = {7, 6},
           .kernel = {3, 3},
           .strides = {2, 2},
           .in_channels = 4,
           .out_channels = 2,
           .pointwise_out = 3});
      add({.n = 2,
           .spatial = {7, 7},
           .kernel = {2, 3},
           .dilations = {2, 2},
           .in_channels = 16,
           .out_channels = 2,
           .padding = kValid,
           .pointwise_out = 33});
      add({.n = 2,
           .batch = {0},
           .spatial = {3, 3},
           .kernel = {2, 2},
           .in_channels = 2,
           .out_channels = 1,
           .pointwise_out = 3});
      break;
    case Op::kAtrous:
      add({.n = 2,
           .spatial = {7, 7},
           .kernel = {3, 3},
           .dilations = {2, 2},
           .in_channels = 3,
           .out_channels = 5});
      add({.n = 2,
           .spatial = {9, 8},
           .kernel = {2, 3},
           .dilations = {3, 3},
           .in_channels = 17,
           .out_channels = 4,
           .padding = kValid});
      add({.n = 2,
           .spatial = {4, 4},
           .kernel = {3, 3},
           .dilations = {1, 1},
           .in_channels = 2,
           .out_channels = 2});
      add({.n = 2,
           .spatial = {4, 4},
           .kernel = {3, 3},
           .dilations = {2, 2},
           .in_channels = 2,
           .out_channels = 2,
           .padding = kValid});  // empty output
      break;
    case Op::kConv2DTranspose:
      add({.n = 2,
           .spatial = {6, 6},
           .kernel = {3, 3},
           .strides = {2, 2},
           .in_channels = 3,
           .out_channels = 5});
      // VALID with trailing positions the filter reaches only partly or not at all.
      add({.n = 2,
           .spatial = {8, 7},
           .kernel = {3, 2},
           .strides = {3, 2},
           .in_channels = 4,
           .out_channels = 2,
           .padding = kValid});
      add({.n = 2,
           .spatial = {7, 9},
           .kernel = {3, 2},
           .dilations = {2, 3},
           .in_channels = 5,
           .out_channels = 17});
      add({.n = 2,
           .spatial = {9, 8},
           .kernel = {2, 2},
           .strides = {2, 3},
           .dilations = {2, 1},
           .in_channels = 6,
           .out_channels = 9,
           .groups = 3,
           .padding = kValid});
      add({.n = 2,
           .spatial = {5, 5},
           .kernel = {3, 3},
           .strides = {2, 2},
           .in_channels = 17,
           .out_channels = 33,
           .bias = true,
           .activation = Activation::kElu});
      add({.n = 2, .spatial = {1, 1}, .kernel = {3, 3}, .in_channels = 16, .out_channels = 16});
      // A dy with no positions: the result is all zeros (plus the bias).
      add({.n = 2,
           .spatial = {2, 2},
           .kernel = {4, 4},
           .strides = {2, 2},
           .in_channels = 3,
           .out_channels = 2,
           .padding = kValid,
           .bias = true});
      add({.n = 2,
           .batch = {0},
           .spatial = {4, 4},
           .kernel = {3, 3},
           .in_channels = 2,
           .out_channels = 2});
      // TF 2's explicit paddings: asymmetric, strided, dilated, grouped.
      add({.n = 2,
           .spatial = {7, 6},
           .kernel = {3, 2},
           .strides = {2, 1},
           .in_channels = 5,
           .out_channels = 7,
           .padding = kExplicit,
           .pad_before = {2, 0},
           .pad_after = {0, 3}});
      add({.n = 2,
           .spatial = {8, 9},
           .kernel = {3, 3},
           .strides = {3, 2},
           .dilations = {1, 2},
           .in_channels = 6,
           .out_channels = 4,
           .groups = 2,
           .padding = kExplicit,
           .pad_before = {1, 3},
           .pad_after = {2, 1},
           .bias = true,
           .activation = Activation::kRelu});
      // Pads larger than the filter: result rows no window reaches.
      add({.n = 2,
           .spatial = {5, 9},
           .kernel = {3, 3},
           .strides = {2, 1},
           .in_channels = 16,
           .out_channels = 14,
           .padding = kExplicit,
           .pad_before = {1, 0},
           .pad_after = {3, 2}});
      add({.n = 2,
           .spatial = {3, 3},
           .kernel = {2, 2},
           .strides = {2, 2},
           .in_channels = 3,
           .out_channels = 2,
           .padding = kExplicit,
           .pad_before = {4, 2},
           .pad_after = {0, 5}});
      // Spatial-only output_shape (H, W): batch from the input, channels from the filter.
      add({.n = 2,
           .batch = {2},
           .spatial = {6, 5},
           .kernel = {3, 3},
           .strides = {2, 2},
           .in_channels = 3,
           .out_channels = 5,
           .spatial_output_shape = true});
      add({.n = 2,
           .spatial = {8, 7},
           .kernel = {3, 2},
           .strides = {3, 2},
           .in_channels = 17,
           .out_channels = 2,
           .padding = kValid,
           .spatial_output_shape = true});
      add({.n = 2,
           .spatial = {7, 5},
           .kernel = {3, 2},
           .strides = {2, 1},
           .in_channels = 3,
           .out_channels = 4,
           .padding = kExplicit,
           .pad_before = {1, 0},
           .pad_after = {2, 1},
           .spatial_output_shape = true});
      break;
    case Op::kConv3DTranspose:
      add({.n = 3,
           .spatial = {4, 5, 3},
           .kernel = {2, 3, 2},
           .strides = {2, 1, 2},
           .in_channels = 3,
           .out_channels = 4});
      add({.n = 3,
           .spatial = {5, 4, 4},
           .kernel = {2, 2, 2},
           .strides = {2, 2, 3},
           .in_channels = 2,
           .out_channels = 3,
           .padding = kValid});
      add({.n = 3,
           .spatial = {3, 6, 3},
           .kernel = {2, 2, 2},
           .dilations = {1, 2, 1},
           .in_channels = 4,
           .out_channels = 6,
           .groups = 2});
      break;
    case Op::kConvTranspose:
      add({.n = 1,
           .spatial = {9},
           .kernel = {4},
           .strides = {3},
           .in_channels = 5,
           .out_channels = 3,
           .padding = kValid});
      add({.n = 2,
           .spatial = {6, 4},
           .kernel = {3, 3},
           .strides = {2, 1},
           .in_channels = 4,
           .out_channels = 6,
           .groups = 2});
      add({.n = 3,
           .spatial = {3, 4, 3},
           .kernel = {2, 2, 2},
           .dilations = {2, 1, 1},
           .in_channels = 3,
           .out_channels = 2,
           .padding = kValid});
      add({.n = 2,
           .spatial = {6, 7},
           .kernel = {2, 3},
           .strides = {2, 2},
           .in_channels = 4,
           .out_channels = 3,
           .padding = kExplicit,
           .pad_before = {0, 2},
           .pad_after = {1, 1}});
      break;
    case Op::kConv1DTranspose:
      add({.n = 1,
           .spatial = {9},
           .kernel = {3},
           .strides = {2},
           .in_channels = 5,
           .out_channels = 17});
      // VALID trailing positions, dilated, grouped.
      add({.n = 1,
           .spatial = {12},
           .kernel = {4},
           .strides = {3},
           .in_channels = 4,
           .out_channels = 3,
           .padding = kValid});
      add({.n = 1,
           .spatial = {11},
           .kernel = {3},
           .dilations = {2},
           .in_channels = 6,
           .out_channels = 9,
           .groups = 3,
           .bias = true,
           .activation = Activation::kRelu6});
      add({.n = 1,
           .batch = {0},
           .spatial = {5},
           .kernel = {2},
           .in_channels = 2,
           .out_channels = 2});
      // A width-only output_shape: TF reads (W) as (W, 1), which fits only W = 1.
      add({.n = 1,
           .batch = {2},
           .spatial = {1},
           .kernel = {3},
           .strides = {2},
           .in_channels = 3,
           .out_channels = 4,
           .spatial_output_shape = true});
      break;
  }
  return out;
}

// Every activation with and without a bias, per epilogue path: fused into a
// forward stage, on the separable pointwise stage, and after a transpose.
std::vector<Geometry> EpilogueGeometries() {
  std::vector<Geometry> out;
  for (int a = 0; a <= static_cast<int>(Activation::kTanh); ++a) {
    for (bool bias : {false, true}) {
      const Activation act = static_cast<Activation>(a);
      out.push_back({.op = Op::kConv2D,
                     .n = 2,
                     .spatial = {5, 4},
                     .kernel = {3, 3},
                     .in_channels = 5,
                     .out_channels = 17,
                     .bias = bias,
                     .activation = act});
      out.push_back({.op = Op::kDepthwise,
                     .n = 2,
                     .spatial = {5, 5},
                     .kernel = {3, 3},
                     .in_channels = 3,
                     .out_channels = 2,
                     .bias = bias,
                     .activation = act});
      out.push_back({.op = Op::kSeparable,
                     .n = 2,
                     .spatial = {4, 4},
                     .kernel = {2, 2},
                     .in_channels = 4,
                     .out_channels = 1,
                     .pointwise_out = 6,
                     .bias = bias,
                     .activation = act});
      out.push_back({.op = Op::kConv2DTranspose,
                     .n = 2,
                     .spatial = {6, 6},
                     .kernel = {3, 3},
                     .strides = {2, 2},
                     .in_channels = 5,
                     .out_channels = 3,
                     .bias = bias,
                     .activation = act});
      out.push_back({.op = Op::kConv3D,
                     .n = 3,
                     .spatial = {3, 3, 3},
                     .kernel = {2, 2, 2},
                     .in_channels = 3,
                     .out_channels = 4,
                     .bias = bias,
                     .activation = act});
    }
  }
  return out;
}

bool Int32Activation(Activation a) {
  return a == Activation::kNone || a == Activation::kRelu || a == Activation::kRelu6;
}

constexpr int kRandomPerOp = 12;

// geometry x layouts x dtypes.
void AddCases(const std::string& prefix, Geometry g, bool both_layouts, std::vector<Case>* out) {
  for (bool channels_last : {true, false}) {
    if (!channels_last && (!both_layouts || !HasDataFormat(g.op))) continue;
    g.channels_last = channels_last;
    for (DataType dtype : DtypesFor(g.op, g.n)) {
      Geometry gd = g;
      if (dtype == DataType::kInt32 && !Int32Activation(gd.activation)) {
        gd.activation = Activation::kRelu;  // int32 has no other activations in TF
      }
      const uint32_t seed = static_cast<uint32_t>(out->size()) * 7919u + 17u;
      out->push_back({absl::StrCat(prefix, "_", channels_last ? "last" : "first", "_",
                                   DtypeLabel(dtype), "_", out->size()),
                      std::move(gd), dtype, seed});
    }
  }
}

}  // namespace

const char* OpLabel(Op op) {
  switch (op) {
    case Op::kConvolution: return "convolution";
    case Op::kConv1D: return "conv1d";
    case Op::kConv2D: return "conv2d";
    case Op::kConv3D: return "conv3d";
    case Op::kDepthwise: return "depthwise";
    case Op::kSeparable: return "separable";
    case Op::kAtrous: return "atrous";
    case Op::kConv2DTranspose: return "conv2d_transpose";
    case Op::kConv3DTranspose: return "conv3d_transpose";
    case Op::kConvTranspose: return "conv_transpose";
    case Op::kConv1DTranspose: return "conv1d_transpose";
  }
  return "?";
}

bool HasDataFormat(Op op) { return op != Op::kAtrous; }

const char* DtypeLabel(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32: return "f32";
    case DataType::kFloat64: return "f64";
    case DataType::kFloat16: return "f16";
    case DataType::kBFloat16: return "bf16";
    case DataType::kInt32: return "i32";
  }
  return "?";
}

// The dtypes TensorFlow's kernels (and so MakeSpec) accept for the op.
std::vector<DataType> DtypesFor(Op op, int n) {
  std::vector<DataType> dtypes = {DataType::kFloat32, DataType::kBFloat16, DataType::kFloat16,
                                  DataType::kFloat64};
  const bool int32 = op == Op::kConv1D || op == Op::kConv2D || op == Op::kAtrous ||
                     op == Op::kConv2DTranspose || op == Op::kConv1DTranspose ||
                     ((op == Op::kConvolution || op == Op::kConvTranspose) && n < 3);
  if (int32) dtypes.push_back(DataType::kInt32);
  return dtypes;
}

std::string Describe(const Geometry& g) {
  auto list = [](const std::vector<int64_t>& v) { return absl::StrJoin(v, "x"); };
  return absl::StrCat(
      OpLabel(g.op), " batch=", list(g.batch), " x=", list(g.spatial), "x", g.in_channels,
      " k=", list(g.kernel), " out=", g.out_channels, " groups=", g.groups, " s=", list(g.strides),
      " d=", list(g.dilations), " pad=", static_cast<int>(g.padding),
      g.padding == Padding::kExplicit
          ? absl::StrCat(" pads=", list(g.pad_before), "/", list(g.pad_after))
          : "",
      g.spatial_output_shape ? " spatial-only" : "", " ", DataFormat(g),
      g.pointwise_out ? absl::StrCat(" pw=", g.pointwise_out, "/g", g.pointwise_groups) : "",
      g.bias ? " +bias" : "", " act=", static_cast<int>(g.activation));
}

absl::StatusOr<ConvSpec> SpecOf(const Geometry& g, DataType dtype) {
  const Request request = BuildRequest(g, dtype);
  return MakeSpec(request.params, request.info, SpecLimits{});
}

Geometry CacheGeometry() {
  return {.op = Op::kConv2D,
          .n = 2,
          .spatial = {6, 6},
          .kernel = {3, 3},
          .in_channels = 8,
          .out_channels = 16};
}

std::vector<Geometry> CacheGeometries() {
  return {CacheGeometry(),
          {.op = Op::kSeparable,
           .n = 2,
           .spatial = {5, 5},
           .kernel = {3, 3},
           .in_channels = 4,
           .out_channels = 2,
           .pointwise_out = 6,
           .bias = true},
          {.op = Op::kConv2DTranspose,
           .n = 2,
           .spatial = {6, 6},
           .kernel = {3, 3},
           .strides = {2, 2},
           .in_channels = 4,
           .out_channels = 8,
           .groups = 2}};
}

// ---------------------------------------------------------------------------
// Tensors.

int64_t Buffer::size() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

double Buffer::Get(int64_t i) const {
  return DispatchDataType(dtype, [&](auto tag) {
    using T = decltype(tag);
    return static_cast<double>(reinterpret_cast<const T*>(bytes.data())[i]);
  });
}

Buffer Zeros(DataType dtype, Shape shape) {
  Buffer b{dtype, std::move(shape), {}};
  b.bytes.assign(static_cast<size_t>(b.size() * ItemSize(dtype)), std::byte{0});
  return b;
}

// ---------------------------------------------------------------------------
// Problems.

Operands Problem::operands() const {
  Operands ops;
  ops.input = input.view();
  ops.filter = filter.view();
  if (spec.pointwise_out_channels > 0) ops.pointwise_filter = pointwise.view();
  if (spec.has_bias) ops.bias = bias.view();
  return ops;
}

absl::StatusOr<Problem> Prepare(const Geometry& g, DataType dtype, uint32_t seed) {
  const Request request = BuildRequest(g, dtype);
  absl::StatusOr<ConvSpec> spec = MakeSpec(request.params, request.info, SpecLimits{});
  if (!spec.ok()) return spec.status();
  std::mt19937 rng(seed);
  Problem p;
  p.spec = *spec;
  p.input = RandomBuffer(dtype, request.info.input.shape, rng);
  p.filter = RandomBuffer(dtype, request.info.filter.shape, rng);
  if (request.info.pointwise_filter) {
    p.pointwise = RandomBuffer(dtype, request.info.pointwise_filter->shape, rng);
  }
  if (request.info.bias) p.bias = RandomBuffer(dtype, request.info.bias->shape, rng);
  p.reduction = ReductionLength(p.spec);

  ReferenceBackend reference;
  p.expected = p.NewResult();
  absl::Status status = reference.Run(p.spec, p.operands(), p.expected.mutable_view());
  if (!status.ok()) return status;

  // The magnitudes: the same convolution on |operands| in float64, no epilogue.
  ConvSpec abs_spec = p.spec;
  abs_spec.dtype = DataType::kFloat64;
  abs_spec.has_bias = false;
  abs_spec.activation = Activation::kNone;
  const Buffer abs_input = AsFloat64(p.input, true), abs_filter = AsFloat64(p.filter, true);
  Buffer abs_pointwise;
  Operands abs_ops;
  abs_ops.input = abs_input.view();
  abs_ops.filter = abs_filter.view();
  if (p.spec.pointwise_out_channels > 0) {
    abs_pointwise = AsFloat64(p.pointwise, true);
    abs_ops.pointwise_filter = abs_pointwise.view();
  }
  p.magnitude = Zeros(DataType::kFloat64, p.spec.result_shape);
  status = reference.Run(abs_spec, abs_ops, p.magnitude.mutable_view());
  if (!status.ok()) return status;
  return p;
}

Problem MustPrepare(const Geometry& g, DataType dtype, uint32_t seed) {
  absl::StatusOr<Problem> p = Prepare(g, dtype, seed);
  if (!p.ok()) {  // the callers' geometries are fixed: a bug in the test
    std::fprintf(stderr, "Prepare(%s, %s) failed: %s\n", Describe(g).c_str(), DtypeLabel(dtype),
                 p.status().ToString().c_str());
    std::abort();
  }
  p->label = absl::StrCat(OpLabel(g.op), "/", DtypeLabel(dtype), "/seed", seed);
  return *std::move(p);
}

double Tolerance(const Problem& p, int64_t i, const CompareOptions& options) {
  const ConvSpec& s = p.spec;
  if (!options.native || s.dtype == DataType::kInt32) return 0.0;
  double magnitude = p.magnitude.Get(i);
  if (s.has_bias) magnitude += std::abs(p.bias.Get(ChannelOf(s, i, p.expected.size())));
  const double expected = p.expected.Get(i);
  const double f32_eps = Epsilon(DataType::kFloat32);
  double tolerance;
  if (s.dtype == DataType::kFloat64) {
    tolerance = 1e-12 * magnitude;
  } else if (s.dtype == DataType::kFloat32 && !s.allow_reduced_precision) {
    tolerance = 1e-5 * magnitude;
  } else {
    // bfloat16, float16, and float32 rounded to a reduced precision.
    const double eps =
        s.dtype == DataType::kFloat32 ? options.reduced_precision_epsilon : Epsilon(s.dtype);
    tolerance =
        (2 * eps + static_cast<double>(p.reduction) * f32_eps) * magnitude + Ulp(s.dtype, expected);
  }
  if (Transcendental(s.activation)) tolerance += 4 * f32_eps * (1 + std::abs(expected));
  return tolerance;
}

std::vector<std::string> Compare(const Problem& p, const Buffer& got,
                                 const CompareOptions& options) {
  std::vector<std::string> errors;
  const int64_t n = p.expected.size();
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double want = p.expected.Get(i), have = got.Get(i);
    const double tolerance = Tolerance(p, i, options);
    if (std::isfinite(have) && std::abs(have - want) <= tolerance) continue;
    ++bad;
    if (errors.size() < options.limit) {
      errors.push_back(absl::StrCat("element ", i, ": ", options.backend, " ", have, " reference ",
                                    want, " tolerance ", tolerance, " magnitude ",
                                    p.magnitude.Get(i)));
    }
  }
  if (bad > 0) {
    errors.push_back(
        absl::StrCat(bad, " of ", n, " elements differ in ", p.label, " | ", p.spec.DebugString()));
  }
  return errors;
}

void RunAndCheck(Backend& backend, const Problem& p, const CompareOptions& options) {
  Buffer out = p.NewResult();
  const absl::Status status = backend.Run(p.spec, p.operands(), out.mutable_view());
  ASSERT_TRUE(status.ok()) << status << " | " << p.label << " | " << p.spec.DebugString();
  for (const std::string& e : Compare(p, out, options)) ADD_FAILURE() << e;
}

// ---------------------------------------------------------------------------
// The cases.

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name << " [" << Describe(c.geometry) << " " << DtypeLabel(c.dtype) << "]";
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  std::mt19937 rng(20240617);
  for (Op op : kAllOps) {
    for (int i = 0; i < kRandomPerOp; ++i) {
      AddCases(absl::StrCat(OpLabel(op), "_random"), RandomGeometry(op, rng), true, &cases);
    }
    for (const Geometry& g : EdgeGeometries(op)) {
      AddCases(absl::StrCat(OpLabel(op), "_edge"), g, true, &cases);
    }
  }
  for (const Geometry& g : EpilogueGeometries()) {
    AddCases(absl::StrCat(OpLabel(g.op), "_epilogue", static_cast<int>(g.activation),
                          g.bias ? "_bias" : ""),
             g, false, &cases);
  }
  return cases;
}

}  // namespace convserve::conformance
