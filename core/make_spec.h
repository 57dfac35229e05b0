// Validation of a request with TensorFlow's rules and canonicalisation of its
// op into one ConvSpec.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/conv_spec.h"
#include "core/dtype.h"
#include "core/op_params.h"
#include "core/shape.h"

namespace convserve {

struct TensorInfo {
  DataType dtype = DataType::kFloat32;
  Shape shape;
};

// The dtypes and shapes of a request's operands.
struct OperandInfo {
  TensorInfo input;
  TensorInfo filter;
  std::optional<TensorInfo> pointwise_filter;  // separable_conv2d only
  std::optional<TensorInfo> bias;              // fused epilogue, optional
  Activation activation = Activation::kNone;
};

struct SpecLimits {
  // Largest result, or separable intermediate, a request may produce.
  int64_t max_output_elements = int64_t{1} << 28;
};

// The request field that holds the op: "conv2d", "conv_transpose", ...
absl::string_view OpName(const OpParams& params);

// The ConvSpec of `params` applied to `operands`, or INVALID_ARGUMENT with
// TensorFlow's message and the offending field, or RESOURCE_EXHAUSTED when the
// result would exceed `limits`. Safe for any int64 shape values.
absl::StatusOr<ConvSpec> MakeSpec(const OpParams& params, const OperandInfo& operands,
                                  const SpecLimits& limits);

}  // namespace convserve
