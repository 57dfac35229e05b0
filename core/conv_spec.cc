#include "core/conv_spec.h"

#include <initializer_list>
#include <limits>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"

namespace convserve {
namespace {

// The product of `factors`: 0 when any is 0, whatever the others (an empty
// tensor's other dimensions may be anything up to 2^63 - 1, and multiplying
// them first would overflow), INT64_MAX when it does not fit (never for a
// spec from MakeSpec, whose tensors all fit).
int64_t Product(std::initializer_list<int64_t> factors) {
  for (int64_t f : factors) {
    if (f == 0) return 0;
  }
  int64_t product = 1;
  for (int64_t f : factors) {
    std::optional<int64_t> next = CheckedMul(product, f);
    if (!next) return std::numeric_limits<int64_t>::max();
    product = *next;
  }
  return product;
}

// The spatial sizes in use, with 1 for the slots past `rank`.
std::array<int64_t, kMaxSpatialRank> Used(const std::array<int64_t, kMaxSpatialRank>& dims,
                                          int rank) {
  std::array<int64_t, kMaxSpatialRank> used{1, 1, 1};
  for (int i = 0; i < rank && i < kMaxSpatialRank; ++i) used[i] = dims[i];
  return used;
}

}  // namespace

int64_t ConvSpec::ResultChannels() const {
  if (transposed) return in_channels;
  return pointwise_out_channels > 0 ? pointwise_out_channels : out_channels;
}

int64_t ConvSpec::InputElements() const {
  const auto s = Used(input_spatial, rank);
  return Product({batch, s[0], s[1], s[2], in_channels});
}

int64_t ConvSpec::FilterElements() const {
  const auto s = Used(filter_spatial, rank);
  return Product({s[0], s[1], s[2], groups > 0 ? in_channels / groups : 0, out_channels});
}

int64_t ConvSpec::OutputElements() const {
  const auto s = Used(output_spatial, rank);
  return Product({batch, s[0], s[1], s[2], out_channels});
}

int64_t ConvSpec::ResultElements() const {
  for (int64_t dim : result_shape) {
    if (dim == 0) return 0;
  }
  int64_t product = 1;
  for (int64_t dim : result_shape) product *= dim;  // MakeSpec checked it fits
  return product;
}

double ConvSpec::Flops() const {
  // Every output point reads filter_spatial x in_channels / groups inputs.
  double macs = static_cast<double>(batch) * static_cast<double>(out_channels) *
                static_cast<double>(in_channels / groups);
  double points = static_cast<double>(batch);
  for (int d = 0; d < rank; ++d) {
    macs *= static_cast<double>(output_spatial[d]) * static_cast<double>(filter_spatial[d]);
    points *= static_cast<double>(output_spatial[d]);
  }
  if (pointwise_out_channels > 0) {
    macs += points * static_cast<double>(out_channels) *
            static_cast<double>(pointwise_out_channels / pointwise_groups);
  }
  return 2 * macs;
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
      has_bias ? " +bias" : "", allow_reduced_precision ? " reduced-precision" : "",
      " activation=", static_cast<int>(activation), " result=", ShapeString(result_shape));
}

}  // namespace convserve
