// ConvSpec: every op of the family canonicalised to one N-D convolution.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/op_params.h"
#include "core/shape.h"

namespace convserve {

inline constexpr int kMaxSpatialRank = 3;

// A grouped, strided, dilated, padded N-D convolution (N = 2 or 3; 1-D ops get a
// dummy height of 1, as TensorFlow does), optionally transposed, optionally
// followed by a 1x1 "pointwise" convolution (separable_conv2d) and a fused
// bias + activation.
//
// Geometry is always that of the FORWARD convolution x (*) w -> y:
//   x: [batch] + input_spatial  + [in_channels]   (or channels first)
//   w: filter_spatial + [in_channels / groups, out_channels]
//   y: [batch] + output_spatial + [out_channels]  (or channels first)
// Group g reads x channels [g*I, (g+1)*I) and writes y channels
// [g*O/G, (g+1)*O/G). A depthwise filter [kh, kw, C, M] is the same bytes as
// a grouped filter [kh, kw, 1, C*M] with groups = C.
// When `transposed`, the request's input is y (dy) and the result is x (dx):
// the gradient of the forward convolution with respect to its input.
//
// Operand bytes are row-major in the client's layout: `channels_last` says
// whether channels are the last dimension of x and y (filters never change
// layout). Leading batch dimensions beyond the first are flattened into `batch`.
struct ConvSpec {
  DataType dtype = DataType::kFloat32;
  bool channels_last = true;
  bool transposed = false;
  int rank = 2;  // spatial dimensions
  int64_t batch = 0;
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t groups = 1;
  // Entries [0, rank) are used; the rest are 1 (sizes, strides) or 0 (pads).
  std::array<int64_t, kMaxSpatialRank> input_spatial{1, 1, 1};
  std::array<int64_t, kMaxSpatialRank> filter_spatial{1, 1, 1};
  std::array<int64_t, kMaxSpatialRank> output_spatial{1, 1, 1};
  std::array<int64_t, kMaxSpatialRank> strides{1, 1, 1};
  std::array<int64_t, kMaxSpatialRank> dilations{1, 1, 1};
  std::array<int64_t, kMaxSpatialRank> pad_before{0, 0, 0};
  std::array<int64_t, kMaxSpatialRank> pad_after{0, 0, 0};

  // separable_conv2d: > 0 means y is followed by a stride-1, unpadded 1x1
  // convolution to this many channels in `pointwise_groups` groups, on a y
  // rounded to `dtype` first (as TensorFlow materialises it).
  int64_t pointwise_out_channels = 0;
  int64_t pointwise_groups = 1;

  // Fused epilogue on the final result: add a 1-D bias over channels, then activate.
  bool has_bias = false;
  Activation activation = Activation::kNone;

  // float32 only: the request allows computing in a reduced precision with
  // float32 in and out (TF32 on a GPU), as TensorFlow's opt-ins do.
  bool allow_reduced_precision = false;

  // The exact shape of the result returned to the client.
  Shape result_shape;

  // Channels of the final result (out_channels, pointwise_out_channels, or
  // in_channels when transposed).
  int64_t ResultChannels() const;
  // Elements of x, w and y: 0 when any dimension is 0, whatever the others
  // (which may be huge in an empty tensor).
  int64_t InputElements() const;
  int64_t FilterElements() const;
  int64_t OutputElements() const;
  // Elements of the final result: the product of result_shape (1 when it is
  // empty). MakeSpec has checked that it fits in an int64.
  int64_t ResultElements() const;
  // Floating-point operations (2 per multiply-add) of the forward geometry,
  // the same for the transposed op (its gradient), plus the pointwise step;
  // for throughput figures and cost estimates.
  double Flops() const;

  bool operator==(const ConvSpec& other) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const ConvSpec& s) {
    return H::combine(std::move(h), s.dtype, s.channels_last, s.transposed, s.rank, s.batch,
                      s.in_channels, s.out_channels, s.groups, s.input_spatial, s.filter_spatial,
                      s.output_spatial, s.strides, s.dilations, s.pad_before, s.pad_after,
                      s.pointwise_out_channels, s.pointwise_groups, s.has_bias, s.activation,
                      s.allow_reduced_precision, s.result_shape);
  }

  // One line for logs and test failure messages.
  std::string DebugString() const;
};

}  // namespace convserve
