#include "core/cuda/cudnn_geometry.h"

#include <algorithm>
#include <limits>

#include "core/cuda/symmetric_padding.h"

namespace convserve::cuda {
namespace {

using Dims = std::array<int64_t, kMaxTensorRank>;

// [N, C, spatial...] of a tensor with `rank` spatial dimensions.
Dims ActivationDims(int64_t batch, int64_t channels,
                    const std::array<int64_t, kMaxSpatialRank>& spatial, int rank) {
  Dims dims{};
  dims[0] = batch;
  dims[1] = channels;
  for (int d = 0; d < rank; ++d) dims[2 + d] = spatial[d];
  return dims;
}

// The filter [K, C / groups, spatial...] of TF's [spatial..., C / groups, K],
// and the view of TF's bytes as that.
void FilterLayouts(int rank, int64_t in_per_group, int64_t out_channels,
                   const std::array<int64_t, kMaxSpatialRank>& kernel, bool channels_last,
                   StageGeometry& stage) {
  Dims dims{};
  dims[0] = out_channels;
  dims[1] = in_per_group;
  for (int d = 0; d < rank; ++d) dims[2 + d] = kernel[d];
  stage.filter = PackedLayout(rank, dims, channels_last);
  stage.filter_channels_last = channels_last;
  stage.filter_tf.rank = rank + 2;
  stage.filter_tf.dims = dims;
  stage.filter_tf.strides[0] = 1;
  stage.filter_tf.strides[1] = out_channels;
  int64_t stride = in_per_group * out_channels;
  for (int d = rank - 1; d >= 0; --d) {
    stage.filter_tf.strides[2 + d] = stride;
    stride *= kernel[d];
  }
}

StageGeometry MainStage(const ConvSpec& s) {
  const int r = s.rank;
  StageGeometry stage;
  stage.backward_data = s.transposed;
  stage.spatial_rank = r;
  stage.groups = s.groups;
  stage.x =
      PackedLayout(r, ActivationDims(s.batch, s.in_channels, s.input_spatial, r), s.channels_last);
  FilterLayouts(r, s.in_channels / s.groups, s.out_channels, s.filter_spatial, s.channels_last,
                stage);

  std::array<int64_t, kMaxSpatialRank> cudnn_output{1, 1, 1}, crop{0, 0, 0};
  bool symmetric = true;
  for (int d = 0; d < r; ++d) {
    const SymmetricPadding plan =
        PlanSymmetricPadding(s.input_spatial[d], s.filter_spatial[d], s.dilations[d], s.strides[d],
                             s.pad_before[d], s.output_spatial[d]);
    stage.pads[d] = plan.pad;
    stage.strides[d] = s.strides[d];
    stage.dilations[d] = s.dilations[d];
    cudnn_output[d] = plan.cudnn_output;
    crop[d] = plan.crop_begin;
    symmetric = symmetric && plan.crop_begin == 0 && plan.cudnn_output == s.output_spatial[d];
  }
  const Dims y_dims = ActivationDims(s.batch, s.out_channels, s.output_spatial, r);
  stage.y_user = PackedLayout(r, y_dims, s.channels_last);
  stage.y_direct = symmetric;
  if (symmetric) {
    stage.y_cudnn = stage.y_tf = stage.y_user;
    return stage;
  }
  stage.y_cudnn =
      PackedLayout(r, ActivationDims(s.batch, s.out_channels, cudnn_output, r), s.channels_last);
  stage.y_tf = stage.y_cudnn;
  stage.y_tf.dims = y_dims;
  // Saturates: an offset past int64 fails FitsInt.
  __int128 offset = 0;
  for (int d = 0; d < r; ++d)
    offset += static_cast<__int128>(crop[d]) * stage.y_cudnn.strides[2 + d];
  stage.y_offset =
      static_cast<int64_t>(std::min<__int128>(offset, std::numeric_limits<int64_t>::max()));
  return stage;
}

// separable's 1x1, stride-1, unpadded convolution of the depthwise y.
StageGeometry PointwiseStage(const ConvSpec& s, const TensorLayout& intermediate) {
  const int r = s.rank;
  StageGeometry stage;
  stage.spatial_rank = r;
  stage.groups = s.pointwise_groups;
  stage.x = intermediate;
  FilterLayouts(r, s.out_channels / s.pointwise_groups, s.pointwise_out_channels, {1, 1, 1},
                s.channels_last, stage);
  stage.y_user = PackedLayout(
      r, ActivationDims(s.batch, s.pointwise_out_channels, s.output_spatial, r), s.channels_last);
  stage.y_cudnn = stage.y_tf = stage.y_user;
  stage.y_direct = true;
  return stage;
}

bool FitsInt(int64_t value) { return value >= 0 && value <= std::numeric_limits<int>::max(); }

bool FitsInt(const TensorLayout& t) {
  if (!FitsInt(t.Elements()) || !FitsInt(t.Span())) return false;
  for (int i = 0; i < t.rank; ++i) {
    if (!FitsInt(t.dims[i]) || !FitsInt(t.strides[i])) return false;
  }
  return true;
}

}  // namespace

int64_t TensorLayout::Elements() const {
  int64_t elements = 1;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] == 0) return 0;
    if (elements > std::numeric_limits<int64_t>::max() / dims[i]) {
      return std::numeric_limits<int64_t>::max();
    }
    elements *= dims[i];
  }
  return elements;
}

int64_t TensorLayout::Span() const {
  if (Elements() == 0) return 0;
  int64_t last = 0;
  for (int i = 0; i < rank; ++i) {
    // Saturates: a span past int64 fails FitsInt all the same.
    const __int128 offset = static_cast<__int128>(dims[i] - 1) * strides[i] + last;
    if (offset >= std::numeric_limits<int64_t>::max()) return std::numeric_limits<int64_t>::max();
    last = static_cast<int64_t>(offset);
  }
  return last + 1;
}

TensorLayout PackedLayout(int rank, const Dims& dims, bool channels_last) {
  TensorLayout layout;
  layout.rank = rank + 2;
  layout.dims = dims;
  // Innermost first: channels last is C, W, H, (D,) N; channels first is W, H, (D,) C, N.
  std::vector<int> order;
  if (channels_last) order.push_back(1);
  for (int d = rank - 1; d >= 0; --d) order.push_back(2 + d);
  if (!channels_last) order.push_back(1);
  order.push_back(0);
  int64_t stride = 1;
  for (int index : order) {
    layout.strides[index] = stride;
    // Saturates: such a layout fails FitsInt.
    stride = dims[index] != 0 && stride > std::numeric_limits<int64_t>::max() / dims[index]
                 ? std::numeric_limits<int64_t>::max()
                 : stride * dims[index];
  }
  return layout;
}

CudnnGeometry PlanCudnnGeometry(const ConvSpec& spec) {
  CudnnGeometry geometry;
  geometry.stages.push_back(MainStage(spec));
  if (spec.pointwise_out_channels > 0) {
    geometry.intermediate = geometry.stages.front().y_user;
    geometry.stages.push_back(PointwiseStage(spec, geometry.intermediate));
  }
  return geometry;
}

bool FitsCudnn(const CudnnGeometry& geometry) {
  for (const StageGeometry& stage : geometry.stages) {
    for (const TensorLayout* t :
         {&stage.x, &stage.filter, &stage.filter_tf, &stage.y_cudnn, &stage.y_tf, &stage.y_user}) {
      if (!FitsInt(*t)) return false;
    }
    if (!FitsInt(stage.y_offset) || !FitsInt(stage.groups)) return false;
    for (int d = 0; d < stage.spatial_rank; ++d) {
      if (!FitsInt(stage.pads[d]) || !FitsInt(stage.strides[d]) || !FitsInt(stage.dilations[d])) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace convserve::cuda
