// Parsing and validation of the attributes shared by the convolution ops:
// data_format, strides, dilations, padding and explicit_paddings, with
// TensorFlow's error messages. Every error names the request field it is about.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/op_params.h"

namespace convserve {

// INVALID_ARGUMENT "<message> (field: <op>.<field>)".
absl::Status FieldError(absl::string_view op, absl::string_view field, absl::string_view message);

// Names the request fields of the op being validated.
struct AttrContext {
  absl::string_view op;  // e.g. "conv2d"
  int spatial_rank;      // N, 1 to 3
};

// True for channels last ("NWC", "NHWC", "NDHWC", or empty), false for
// channels first. conv1d also accepts TF's legacy "NHWC"/"NCHW" when
// `accept_2d_names_for_1d`.
absl::StatusOr<bool> ParseDataFormat(const AttrContext& ctx, absl::string_view data_format,
                                     bool accept_2d_names_for_1d = false);

// The N spatial values of a strides or dilations list given in 1, N or N+2 form
// (empty means all ones). The N+2 form must hold 1 at the batch and channel
// positions. `field` is the request's field name ("strides", "stride", "dilations").
absl::StatusOr<std::vector<int64_t>> ExpandStrides(const AttrContext& ctx, absl::string_view field,
                                                   const std::vector<int64_t>& values,
                                                   bool channels_last);
absl::StatusOr<std::vector<int64_t>> ExpandDilations(const AttrContext& ctx,
                                                     const std::vector<int64_t>& values,
                                                     bool channels_last);

// Checks `padding` is set and, unless `explicit_allowed`, not EXPLICIT.
absl::Status CheckPadding(const AttrContext& ctx, Padding padding, bool explicit_allowed);

// Per-spatial-dimension (before, after) pads from explicit_paddings, which must
// hold 2*(N+2) values in data-format order when padding is EXPLICIT and be
// empty otherwise. Returns pads of zero for SAME and VALID.
struct SpatialPads {
  std::vector<int64_t> before, after;
};
absl::StatusOr<SpatialPads> ParseExplicitPaddings(const AttrContext& ctx, Padding padding,
                                                  const std::vector<int64_t>& paddings,
                                                  bool channels_last);

}  // namespace convserve
