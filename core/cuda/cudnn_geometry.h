// How the cuDNN backend lays out one ConvSpec for cuDNN's N-D descriptors.
// Pure arithmetic, no CUDA: built and tested on every machine (the tests run
// the geometry through a CPU model of cuDNN's convolutions against the
// reference backend).
//
// A spec runs as one or two stages (separable: depthwise, then pointwise).
// Each stage is one cuDNN convolution over tensors in cuDNN's logical order
// [N, C, spatial...] with explicit strides, so the client's channels-last or
// channels-first bytes are used in place:
//   - forward: cuDNN reads x and writes y_cudnn; TF's y is the window y_tf of
//     it (a crop when TF's padding is not symmetric);
//   - transposed (cuDNN's backward data): dy is written into the window y_tf
//     of a zeroed y_cudnn (when not symmetric), and cuDNN's dx is TF's x.
// When y_cudnn equals y_tf (`y_direct`), cuDNN reads or writes the client's
// (or the intermediate's) y buffer itself.
// The filter is TF's [spatial..., in / groups, out]; cuDNN takes it as
// [out, in / groups, spatial...] packed in the stage's layout (KRSC for
// channels last, KCRS for channels first), transformed once on the device
// from the view `filter_tf`.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/conv_spec.h"

namespace convserve::cuda {

inline constexpr int kMaxTensorRank = kMaxSpatialRank + 2;

// Sizes and element strides of a tensor in cuDNN's logical order [N, C, spatial...].
struct TensorLayout {
  int rank = 0;  // 4 or 5
  std::array<int64_t, kMaxTensorRank> dims{};
  std::array<int64_t, kMaxTensorRank> strides{};

  int64_t Elements() const;
  // Entries of the smallest buffer holding it (the largest offset + 1).
  int64_t Span() const;
  bool operator==(const TensorLayout&) const = default;
};

// A packed tensor [N, C, spatial...] laid out channels last or first.
TensorLayout PackedLayout(int rank, const std::array<int64_t, kMaxTensorRank>& dims,
                          bool channels_last);

struct StageGeometry {
  bool backward_data = false;  // a transposed op: cuDNN's backward data
  int spatial_rank = 2;
  int64_t groups = 1;
  std::array<int64_t, kMaxSpatialRank> pads{};  // cuDNN's, at both ends
  std::array<int64_t, kMaxSpatialRank> strides{1, 1, 1};
  std::array<int64_t, kMaxSpatialRank> dilations{1, 1, 1};

  TensorLayout x;                    // the forward input (the result, when backward_data)
  TensorLayout filter;               // [K, C / groups, spatial...], packed in the stage's layout
  TensorLayout filter_tf;            // the same dims over TF's filter bytes
  bool filter_channels_last = true;  // cuDNN's NHWC (KRSC) filter format, else NCHW
  TensorLayout y_cudnn;              // the y cuDNN computes (or reads dy from)
  TensorLayout y_tf;                 // TF's y within y_cudnn, at element offset y_offset
  int64_t y_offset = 0;
  TensorLayout y_user;    // TF's y where the stage's caller keeps it
  bool y_direct = false;  // y_cudnn == y_user: no crop, embedding or scratch
};

struct CudnnGeometry {
  std::vector<StageGeometry> stages;  // 1, or 2 for separable
  // The separable intermediate (the depthwise y) in the client's layout.
  TensorLayout intermediate;
};

// The geometry of a spec from MakeSpec.
CudnnGeometry PlanCudnnGeometry(const ConvSpec& spec);

// Whether every size, stride, pad and offset of `geometry` fits cuDNN's int
// parameters, and every tensor has fewer than 2^31 elements.
bool FitsCudnn(const CudnnGeometry& geometry);

}  // namespace convserve::cuda
