#include "core/reference/reference_backend.h"

#include <cmath>
#include <cstring>
#include <iterator>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/element_types.h"
#include "core/epilogue.h"

namespace convserve {
namespace {

// The spec's geometry with the spatial dimensions right-aligned in three
// slots, so that one loop nest serves 2-D and 3-D (unused slots have size 1).
struct Geometry {
  int64_t batch, in_channels, out_channels, groups;
  int64_t in[3], k[3], out[3], stride[3], dilation[3], pad[3];
};

Geometry Align(const ConvSpec& spec) {
  Geometry g{spec.batch, spec.in_channels, spec.out_channels, spec.groups, {1, 1, 1},
             {1, 1, 1},  {1, 1, 1},        {1, 1, 1},         {1, 1, 1},   {0, 0, 0}};
  const int shift = 3 - spec.rank;
  for (int i = 0; i < spec.rank; ++i) {
    g.in[shift + i] = spec.input_spatial[i];
    g.k[shift + i] = spec.filter_spatial[i];
    g.out[shift + i] = spec.output_spatial[i];
    g.stride[shift + i] = spec.strides[i];
    g.dilation[shift + i] = spec.dilations[i];
    g.pad[shift + i] = spec.pad_before[i];
  }
  return g;
}

// The 1x1, stride-1 convolution that follows the depthwise step of separable_conv2d.
Geometry Pointwise(const Geometry& depthwise, const ConvSpec& spec) {
  Geometry g{depthwise.batch,
             spec.out_channels,
             spec.pointwise_out_channels,
             spec.pointwise_groups,
             {1, 1, 1},
             {1, 1, 1},
             {1, 1, 1},
             {1, 1, 1},
             {1, 1, 1},
             {0, 0, 0}};
  for (int i = 0; i < 3; ++i) g.in[i] = g.out[i] = depthwise.out[i];
  return g;
}

// Element strides of an activation tensor [batch, spatial..., channels] or
// [batch, channels, spatial...].
struct Layout {
  int64_t batch, channel, spatial[3];
};

Layout MakeLayout(const int64_t (&spatial)[3], int64_t channels, bool channels_last) {
  const int64_t plane = spatial[0] * spatial[1] * spatial[2];
  if (channels_last) {
    return {
        plane * channels, 1, {spatial[1] * spatial[2] * channels, spatial[2] * channels, channels}};
  }
  return {channels * plane, plane, {spatial[1] * spatial[2], spatial[2], 1}};
}

// Offset of a filter tap in the row-major [k0, k1, k2, in/groups, out] filter.
int64_t FilterTap(const Geometry& g, int64_t k0, int64_t k1, int64_t k2) {
  return ((k0 * g.k[1] + k1) * g.k[2] + k2) * (g.in_channels / g.groups) * g.out_channels;
}

// y[b, o, oc] = sum_{k, ic} x[b, o * stride - pad + k * dilation, group(oc) * I + ic] * w[k, ic,
// oc]
template <typename T>
void Forward(const Geometry& g, bool channels_last, const T* x, const T* w, T* y) {
  const Layout lx = MakeLayout(g.in, g.in_channels, channels_last);
  const Layout ly = MakeLayout(g.out, g.out_channels, channels_last);
  const int64_t group_in = g.in_channels / g.groups;
  const int64_t group_out = g.out_channels / g.groups;
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t o0 = 0; o0 < g.out[0]; ++o0)
      for (int64_t o1 = 0; o1 < g.out[1]; ++o1)
        for (int64_t o2 = 0; o2 < g.out[2]; ++o2)
          for (int64_t oc = 0; oc < g.out_channels; ++oc) {
            const int64_t group = oc / group_out;
            AccType<T> acc{};
            for (int64_t k0 = 0; k0 < g.k[0]; ++k0) {
              const int64_t i0 = o0 * g.stride[0] - g.pad[0] + k0 * g.dilation[0];
              if (i0 < 0 || i0 >= g.in[0]) continue;
              for (int64_t k1 = 0; k1 < g.k[1]; ++k1) {
                const int64_t i1 = o1 * g.stride[1] - g.pad[1] + k1 * g.dilation[1];
                if (i1 < 0 || i1 >= g.in[1]) continue;
                for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
                  const int64_t i2 = o2 * g.stride[2] - g.pad[2] + k2 * g.dilation[2];
                  if (i2 < 0 || i2 >= g.in[2]) continue;
                  const T* xp = x + b * lx.batch + i0 * lx.spatial[0] + i1 * lx.spatial[1] +
                                i2 * lx.spatial[2] + group * group_in * lx.channel;
                  const T* wp = w + FilterTap(g, k0, k1, k2) + oc;
                  for (int64_t ic = 0; ic < group_in; ++ic) {
                    acc += ToAcc(xp[ic * lx.channel]) * ToAcc(wp[ic * g.out_channels]);
                  }
                }
              }
            }
            y[b * ly.batch + o0 * ly.spatial[0] + o1 * ly.spatial[1] + o2 * ly.spatial[2] +
              oc * ly.channel] = FromAcc<T>(acc);
          }
}

// The gradient of Forward with respect to x, as a gather: dx[b, i, ic] sums
// dy[b, o, oc] * w[k, ic % I, oc] over the taps k and group(ic)'s channels oc
// for which i = o * stride - pad + k * dilation.
template <typename T>
void Transposed(const Geometry& g, bool channels_last, const T* dy, const T* w, T* dx) {
  const Layout lx = MakeLayout(g.in, g.in_channels, channels_last);
  const Layout ly = MakeLayout(g.out, g.out_channels, channels_last);
  const int64_t group_in = g.in_channels / g.groups;
  const int64_t group_out = g.out_channels / g.groups;
  // The forward output position o that tap k of dimension d links to input i, or -1.
  // In 128 bits: an explicit pad may be as large as int64 allows, and i + pad
  // would then overflow.
  auto source = [&g](int d, int64_t i, int64_t k) -> int64_t {
    const __int128 t =
        static_cast<__int128>(i) + g.pad[d] - static_cast<__int128>(k) * g.dilation[d];
    if (t < 0 || t % g.stride[d] != 0 || t / g.stride[d] >= g.out[d]) return -1;
    return static_cast<int64_t>(t / g.stride[d]);
  };
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t i0 = 0; i0 < g.in[0]; ++i0)
      for (int64_t i1 = 0; i1 < g.in[1]; ++i1)
        for (int64_t i2 = 0; i2 < g.in[2]; ++i2)
          for (int64_t ic = 0; ic < g.in_channels; ++ic) {
            const int64_t group = ic / group_in;
            AccType<T> acc{};
            for (int64_t k0 = 0; k0 < g.k[0]; ++k0) {
              const int64_t o0 = source(0, i0, k0);
              if (o0 < 0) continue;
              for (int64_t k1 = 0; k1 < g.k[1]; ++k1) {
                const int64_t o1 = source(1, i1, k1);
                if (o1 < 0) continue;
                for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
                  const int64_t o2 = source(2, i2, k2);
                  if (o2 < 0) continue;
                  const T* dyp = dy + b * ly.batch + o0 * ly.spatial[0] + o1 * ly.spatial[1] +
                                 o2 * ly.spatial[2];
                  const T* wp = w + FilterTap(g, k0, k1, k2) + (ic % group_in) * g.out_channels;
                  for (int64_t oc = group * group_out; oc < (group + 1) * group_out; ++oc) {
                    acc += ToAcc(dyp[oc * ly.channel]) * ToAcc(wp[oc]);
                  }
                }
              }
            }
            dx[b * lx.batch + i0 * lx.spatial[0] + i1 * lx.spatial[1] + i2 * lx.spatial[2] +
               ic * lx.channel] = FromAcc<T>(acc);
          }
}

absl::Status CheckSize(const ConstTensorView& view, int64_t expected, absl::string_view name) {
  absl::StatusOr<int64_t> elements = NumElements(view.shape);
  if (!view.data && expected > 0) {
    return absl::InvalidArgumentError(absl::StrCat("reference backend: missing ", name));
  }
  if (!elements.ok() || *elements != expected) {
    return absl::InvalidArgumentError(absl::StrCat("reference backend: ", name, " has shape ",
                                                   ShapeString(view.shape), ", expected ", expected,
                                                   " elements"));
  }
  return absl::OkStatus();
}

template <typename T>
void RunTyped(const ConvSpec& spec, const Operands& operands, T* out) {
  const Geometry g = Align(spec);
  const T* x = operands.input.as<T>();
  const T* w = operands.filter.as<T>();
  if (spec.transposed) {
    Transposed(g, spec.channels_last, x, w, out);
  } else if (spec.pointwise_out_channels > 0) {
    std::vector<T> depthwise(static_cast<size_t>(spec.OutputElements()));
    Forward(g, spec.channels_last, x, w, depthwise.data());
    Forward(Pointwise(g, spec), spec.channels_last, depthwise.data(),
            operands.pointwise_filter.as<T>(), out);
  } else {
    Forward(g, spec.channels_last, x, w, out);
  }
}

}  // namespace

BackendInfo ReferenceBackend::Describe() const {
  return BackendInfo{
      .name = std::string(Name()),
      .version = CONVSERVE_VERSION,
      .device = "cpu",
      .native_dtypes = {std::begin(kAllDataTypes), std::end(kAllDataTypes)},
      .notes = "plain loops; float16 and bfloat16 accumulate in float and round once, int32 wraps",
  };
}

absl::Status ReferenceBackend::Run(const ConvSpec& spec, const Operands& operands, TensorView out) {
  const int64_t y_elements = spec.OutputElements();
  const int64_t x_elements = spec.InputElements();
  if (out.shape != spec.result_shape || out.dtype != spec.dtype) {
    return absl::InvalidArgumentError("reference backend: output does not match the spec");
  }
  for (const ConstTensorView* view : {&operands.input, &operands.filter}) {
    if (view->dtype != spec.dtype) {
      return absl::InvalidArgumentError("reference backend: operand dtype differs from spec");
    }
  }
  absl::Status status =
      CheckSize(operands.input, spec.transposed ? y_elements : x_elements, "input");
  if (status.ok()) status = CheckSize(operands.filter, spec.FilterElements(), "filter");
  if (status.ok() && spec.pointwise_out_channels > 0) {
    status = CheckSize(operands.pointwise_filter,
                       spec.out_channels / spec.pointwise_groups * spec.pointwise_out_channels,
                       "pointwise_filter");
  }
  if (status.ok() && spec.has_bias) {
    status = CheckSize(operands.bias, spec.ResultChannels(), "bias");
  }
  if (!status.ok()) return status;
  // An empty result has nothing to compute. Its other dimensions may be huge
  // ([1, 2^63 - 2, 0, 1] is a valid shape), so neither loop over them nor
  // take their strides.
  const int64_t result_elements = spec.ResultElements();
  if (result_elements == 0) return absl::OkStatus();
  if ((spec.transposed ? y_elements : x_elements) == 0) {
    // An empty x (dy when transposed) contributes nothing: every sum is zero.
    // Skipping it also keeps its possibly huge dimensions out of the strides.
    std::memset(out.data, 0, static_cast<size_t>(result_elements * ItemSize(spec.dtype)));
  } else {
    DispatchDataType(spec.dtype, [&](auto tag) {
      using T = decltype(tag);
      RunTyped<T>(spec, operands, out.as<T>());
    });
  }
  ApplyEpilogue(spec, operands.bias, out);
  return absl::OkStatus();
}

}  // namespace convserve
