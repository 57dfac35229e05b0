#include "client/request_builder.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace convserve::client {
namespace {

using Pairs = std::vector<std::pair<int64_t, int64_t>>;

void SetFilter(FilterRef filter, v1::TensorRef* out) {
  if (std::string* id = std::get_if<std::string>(&filter)) {
    out->set_filter_id(std::move(*id));
  } else {
    *out->mutable_tensor() = ToWire(std::move(std::get<Tensor>(filter)));
  }
}

v1::Padding ToPadding(const std::string& padding) {
  if (padding == "SAME") return v1::PADDING_SAME;
  if (padding == "VALID") return v1::PADDING_VALID;
  if (padding == "EXPLICIT") return v1::PADDING_EXPLICIT;
  return v1::PADDING_UNSPECIFIED;  // the server names the problem
}

absl::Status NotTaken(absl::string_view op, absl::string_view argument) {
  return absl::InvalidArgumentError(absl::StrCat(op, " takes no ", argument));
}

template <typename Repeated>
void Assign(const std::vector<int64_t>& values, Repeated* field) {
  field->Assign(values.begin(), values.end());
}

// Sets the fields of op message `Op` from `args`; an argument the message has
// no field for must be empty.
template <typename Op>
absl::Status SetArgs(absl::string_view name, const OpArgs& args, Op* op) {
  if constexpr (requires { op->mutable_stride(); }) {
    Assign(args.strides, op->mutable_stride());
  } else if constexpr (requires { op->mutable_strides(); }) {
    Assign(args.strides, op->mutable_strides());
  } else {
    if (!args.strides.empty()) return NotTaken(name, "strides");
  }

  const Pairs* pairs = std::get_if<Pairs>(&args.padding);
  if (pairs != nullptr && !args.explicit_paddings.empty()) {
    return absl::InvalidArgumentError(
        "explicit padding given both as pairs and as explicit_paddings");
  }
  if constexpr (requires { op->add_explicit_paddings(0); }) {
    if (pairs != nullptr) {
      op->set_padding(v1::PADDING_EXPLICIT);
      for (const auto& [before, after] : *pairs) {
        op->add_explicit_paddings(before);
        op->add_explicit_paddings(after);
      }
    } else {
      op->set_padding(ToPadding(std::get<std::string>(args.padding)));
      Assign(args.explicit_paddings, op->mutable_explicit_paddings());
    }
  } else {
    if (pairs != nullptr) return NotTaken(name, "explicit padding pairs");
    if (!args.explicit_paddings.empty()) return NotTaken(name, "explicit_paddings");
    op->set_padding(ToPadding(std::get<std::string>(args.padding)));
  }

  if constexpr (requires { op->set_data_format(""); }) {
    op->set_data_format(args.data_format);
  } else {
    if (!args.data_format.empty()) return NotTaken(name, "data_format");
  }
  if constexpr (requires { op->mutable_dilations(); }) {
    Assign(args.dilations, op->mutable_dilations());
  } else {
    if (!args.dilations.empty()) return NotTaken(name, "dilations");
  }
  if constexpr (requires { op->mutable_output_shape(); }) {
    Assign(args.output_shape, op->mutable_output_shape());
  } else {
    if (!args.output_shape.empty()) return NotTaken(name, "output_shape");
  }
  if constexpr (requires { op->set_rate(0); }) {
    op->set_rate(args.rate);
  } else {
    if (args.rate != 0) return NotTaken(name, "rate");
  }
  return absl::OkStatus();
}

// Sets the request's op (the `op` oneof) from `args`.
absl::Status SetOp(absl::string_view op, const OpArgs& args, v1::ConvRequest* request) {
  if (op == "convolution") return SetArgs(op, args, request->mutable_convolution());
  if (op == "conv1d") return SetArgs(op, args, request->mutable_conv1d());
  if (op == "conv2d") return SetArgs(op, args, request->mutable_conv2d());
  if (op == "conv3d") return SetArgs(op, args, request->mutable_conv3d());
  if (op == "depthwise_conv2d") return SetArgs(op, args, request->mutable_depthwise_conv2d());
  if (op == "separable_conv2d") return SetArgs(op, args, request->mutable_separable_conv2d());
  if (op == "atrous_conv2d") return SetArgs(op, args, request->mutable_atrous_conv2d());
  if (op == "conv1d_transpose") return SetArgs(op, args, request->mutable_conv1d_transpose());
  if (op == "conv2d_transpose") return SetArgs(op, args, request->mutable_conv2d_transpose());
  if (op == "conv3d_transpose") return SetArgs(op, args, request->mutable_conv3d_transpose());
  if (op == "conv_transpose") return SetArgs(op, args, request->mutable_conv_transpose());
  return absl::InvalidArgumentError(absl::StrCat("unknown op \"", op, "\""));
}

}  // namespace

v1::Tensor ToWire(Tensor tensor) {
  v1::Tensor out;
  out.set_dtype(tensor.dtype);
  Assign(tensor.shape, out.mutable_shape());
  out.set_data(std::move(tensor.data));
  return out;
}

absl::StatusOr<v1::ConvRequest> BuildRequest(absl::string_view op, const OpArgs& args,
                                             RequestTensors tensors,
                                             const RequestOptions& options) {
  v1::ConvRequest request;
  if (absl::Status status = SetOp(op, args, &request); !status.ok()) return status;
  const bool separable = op == "separable_conv2d";
  if (tensors.pointwise_filter.has_value() != separable) {
    return absl::InvalidArgumentError(separable ? "separable_conv2d needs a pointwise filter"
                                                : absl::StrCat(op, " takes no pointwise filter"));
  }
  *request.mutable_input() = ToWire(std::move(tensors.input));
  SetFilter(std::move(tensors.filter), request.mutable_filter());
  if (tensors.pointwise_filter) {
    SetFilter(std::move(*tensors.pointwise_filter), request.mutable_pointwise_filter());
  }
  if (tensors.epilogue.bias) {
    *request.mutable_bias()->mutable_tensor() = ToWire(std::move(*tensors.epilogue.bias));
  }
  request.set_activation(tensors.epilogue.activation);
  request.set_allow_reduced_precision(options.allow_reduced_precision);
  request.set_backend(options.backend);
  return request;
}

}  // namespace convserve::client
