#include "core/conv_spec.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"

namespace convserve {
namespace {

int64_t Product(const std::array<int64_t, kMaxSpatialRank>& dims, int rank) {
  int64_t product = 1;
  for (int i = 0; i < rank; ++i) product *= dims[i];
  return product;
}

}  // namespace

int64_t ConvSpec::ResultChannels() const {
  if (transposed) return in_channels;
  return pointwise_out_channels > 0 ? pointwise_out_channels : out_channels;
}

int64_t ConvSpec::InputElements() const {
  return batch * Product(input_spatial, rank) * in_channels;
}

int64_t ConvSpec::FilterElements() const {
  return Product(filter_spatial, rank) * (in_channels / groups) * out_channels;
}

int64_t ConvSpec::OutputElements() const {
  return batch * Product(output_spatial, rank) * out_channels;
}

int64_t ConvSpec::ResultElements() const {
  int64_t product = 1;
  for (int64_t dim : result_shape) product *= dim;
  return product;
}

std::string ConvSpec::DebugString() const {
  auto dims = [this](const std::array<int64_t, kMaxSpatialRank>& a) {
    return absl::StrJoin(absl::MakeConstSpan(a.data(), rank), "x");
  };
  return absl::StrCat(
      transposed ? "conv_transpose" : "conv", rank, "d ", TfTypeName(dtype),
      channels_last ? " channels_last" : " channels_first", " batch=", batch,
      " in=", dims(input_spatial), "x", in_channels, " filter=", dims(filter_spatial),
      " out=", dims(output_spatial), "x", out_channels, " groups=", groups,
      " strides=", dims(strides), " dilations=", dims(dilations), " pads=", dims(pad_before), "/",
      dims(pad_after),
      pointwise_out_channels > 0
          ? absl::StrCat(" pointwise=", pointwise_out_channels, "/g", pointwise_groups)
          : "",
      has_bias ? " +bias" : "", " activation=", static_cast<int>(activation),
      " result=", ShapeString(result_shape));
}

}  // namespace convserve
