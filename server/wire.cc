#include "server/wire.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace convserve::server {
namespace {

std::vector<int64_t> ToVector(const google::protobuf::RepeatedField<int64_t>& field) {
  return {field.begin(), field.end()};
}

// An unset or unknown padding maps to kUnspecified, which MakeSpec reports
// with the op's field name.
Padding FromProto(v1::Padding padding) {
  switch (padding) {
    case v1::PADDING_SAME: return Padding::kSame;
    case v1::PADDING_VALID: return Padding::kValid;
    case v1::PADDING_EXPLICIT: return Padding::kExplicit;
    default: return Padding::kUnspecified;
  }
}

absl::StatusOr<Activation> FromProto(v1::Activation activation) {
  switch (activation) {
    case v1::ACTIVATION_NONE: return Activation::kNone;
    case v1::ACTIVATION_RELU: return Activation::kRelu;
    case v1::ACTIVATION_RELU6: return Activation::kRelu6;
    case v1::ACTIVATION_ELU: return Activation::kElu;
    case v1::ACTIVATION_LEAKY_RELU: return Activation::kLeakyRelu;
    case v1::ACTIVATION_SIGMOID: return Activation::kSigmoid;
    case v1::ACTIVATION_TANH: return Activation::kTanh;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown activation ", static_cast<int>(activation), " (field: activation)"));
  }
}

// The op's parameters; every op message maps field by field.
absl::StatusOr<OpParams> ParseOp(const v1::ConvRequest& request) {
  switch (request.op_case()) {
    case v1::ConvRequest::kConvolution: {
      const v1::Convolution& p = request.convolution();
      return ConvolutionParams{ToVector(p.strides()), FromProto(p.padding()),
                               ToVector(p.explicit_paddings()), p.data_format(),
                               ToVector(p.dilations())};
    }
    case v1::ConvRequest::kConv1D: {
      const v1::Conv1D& p = request.conv1d();
      return Conv1DParams{ToVector(p.stride()), FromProto(p.padding()), p.data_format(),
                          ToVector(p.dilations())};
    }
    case v1::ConvRequest::kConv2D: {
      const v1::Conv2D& p = request.conv2d();
      return Conv2DParams{ToVector(p.strides()), FromProto(p.padding()),
                          ToVector(p.explicit_paddings()), p.data_format(),
                          ToVector(p.dilations())};
    }
    case v1::ConvRequest::kConv3D: {
      const v1::Conv3D& p = request.conv3d();
      return Conv3DParams{ToVector(p.strides()), FromProto(p.padding()), p.data_format(),
                          ToVector(p.dilations())};
    }
    case v1::ConvRequest::kDepthwiseConv2D: {
      const v1::DepthwiseConv2D& p = request.depthwise_conv2d();
      return DepthwiseConv2DParams{ToVector(p.strides()), FromProto(p.padding()),
                                   ToVector(p.explicit_paddings()), p.data_format(),
                                   ToVector(p.dilations())};
    }
    case v1::ConvRequest::kSeparableConv2D: {
      const v1::SeparableConv2D& p = request.separable_conv2d();
      return SeparableConv2DParams{ToVector(p.strides()), FromProto(p.padding()), p.data_format(),
                                   ToVector(p.dilations())};
    }
    case v1::ConvRequest::kAtrousConv2D: {
      const v1::AtrousConv2D& p = request.atrous_conv2d();
      return AtrousConv2DParams{p.rate(), FromProto(p.padding())};
    }
    case v1::ConvRequest::kConv1DTranspose: {
      const v1::Conv1DTranspose& p = request.conv1d_transpose();
      return ConvTransposeParams{1,
                                 ToVector(p.output_shape()),
                                 ToVector(p.strides()),
                                 FromProto(p.padding()),
                                 {},
                                 p.data_format(),
                                 ToVector(p.dilations())};
    }
    case v1::ConvRequest::kConv2DTranspose: {
      const v1::Conv2DTranspose& p = request.conv2d_transpose();
      return ConvTransposeParams{2,
                                 ToVector(p.output_shape()),
                                 ToVector(p.strides()),
                                 FromProto(p.padding()),
                                 ToVector(p.explicit_paddings()),
                                 p.data_format(),
                                 ToVector(p.dilations())};
    }
    case v1::ConvRequest::kConv3DTranspose: {
      const v1::Conv3DTranspose& p = request.conv3d_transpose();
      return ConvTransposeParams{3,
                                 ToVector(p.output_shape()),
                                 ToVector(p.strides()),
                                 FromProto(p.padding()),
                                 {},
                                 p.data_format(),
                                 ToVector(p.dilations())};
    }
    case v1::ConvRequest::kConvTranspose: {
      const v1::ConvTranspose& p = request.conv_transpose();
      return ConvTransposeParams{0,
                                 ToVector(p.output_shape()),
                                 ToVector(p.strides()),
                                 FromProto(p.padding()),
                                 ToVector(p.explicit_paddings()),
                                 p.data_format(),
                                 ToVector(p.dilations())};
    }
    case v1::ConvRequest::OP_NOT_SET: break;
  }
  return absl::InvalidArgumentError(
      "the request names no op: set one of convolution, conv1d, conv2d, conv3d, "
      "depthwise_conv2d, separable_conv2d, atrous_conv2d, conv1d_transpose, "
      "conv2d_transpose, conv3d_transpose, conv_transpose (field: op)");
}

// A view of a TensorRef: the inline tensor, or the registered one, which
// `registered` then keeps alive and whose content hash goes to `hash`.
absl::StatusOr<ConstTensorView> ViewTensorRef(
    const v1::TensorRef& ref, absl::string_view field, const FilterStore& filters,
    std::vector<std::shared_ptr<const v1::Tensor>>* registered,
    std::optional<uint64_t>* hash = nullptr) {
  switch (ref.ref_case()) {
    case v1::TensorRef::kTensor: return ViewTensor(ref.tensor(), field);
    case v1::TensorRef::kFilterId: {
      const FilterStore::Registered filter = filters.Find(ref.filter_id());
      if (!filter.tensor) {
        return absl::NotFoundError(absl::StrCat("no filter is registered under id \"",
                                                ref.filter_id(), "\" (field: ", field,
                                                ".filter_id)"));
      }
      registered->push_back(filter.tensor);
      if (hash) *hash = filter.content_hash;
      return ViewTensor(*filter.tensor, field);
    }
    case v1::TensorRef::REF_NOT_SET: break;
  }
  return absl::InvalidArgumentError(absl::StrCat(field, " is required (field: ", field, ")"));
}

TensorInfo Info(const ConstTensorView& view) { return {view.dtype, view.shape}; }

}  // namespace

absl::StatusOr<ConstTensorView> ViewTensor(const v1::Tensor& tensor, absl::string_view field) {
  absl::StatusOr<DataType> dtype = FromProto(tensor.dtype());
  if (!dtype.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(dtype.status().message(), " (field: ", field, ".dtype)"));
  }
  return MakeConstTensorView(*dtype, Shape(tensor.shape().begin(), tensor.shape().end()),
                             tensor.data().data(), tensor.data().size(), field);
}

absl::StatusOr<DataType> FromProto(v1::DataType dtype) {
  switch (dtype) {
    case v1::DATA_TYPE_FLOAT32: return DataType::kFloat32;
    case v1::DATA_TYPE_FLOAT64: return DataType::kFloat64;
    case v1::DATA_TYPE_FLOAT16: return DataType::kFloat16;
    case v1::DATA_TYPE_BFLOAT16: return DataType::kBFloat16;
    case v1::DATA_TYPE_INT32: return DataType::kInt32;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported data type ", v1::DataType_Name(dtype).empty()
                                                     ? absl::StrCat(static_cast<int>(dtype))
                                                     : v1::DataType_Name(dtype)));
  }
}

v1::DataType ToProto(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32: return v1::DATA_TYPE_FLOAT32;
    case DataType::kFloat64: return v1::DATA_TYPE_FLOAT64;
    case DataType::kFloat16: return v1::DATA_TYPE_FLOAT16;
    case DataType::kBFloat16: return v1::DATA_TYPE_BFLOAT16;
    case DataType::kInt32: return v1::DATA_TYPE_INT32;
  }
  return v1::DATA_TYPE_UNSPECIFIED;
}

absl::StatusOr<ParsedRequest> ParseConvRequest(const v1::ConvRequest& request,
                                               const SpecLimits& limits,
                                               const FilterStore& filters) {
  CONVSERVE_ASSIGN_OR_RETURN(const OpParams params, ParseOp(request));
  const bool separable = request.op_case() == v1::ConvRequest::kSeparableConv2D;
  if (!request.has_input()) {
    return absl::InvalidArgumentError("input is required (field: input)");
  }
  ParsedRequest parsed;
  Operands& operands = parsed.operands;
  OperandInfo info;
  CONVSERVE_ASSIGN_OR_RETURN(operands.input, ViewTensor(request.input(), "input"));
  CONVSERVE_ASSIGN_OR_RETURN(operands.filter,
                             ViewTensorRef(request.filter(), "filter", filters, &parsed.registered,
                                           &operands.filter_hash));
  info.input = Info(operands.input);
  info.filter = Info(operands.filter);
  if (separable) {
    CONVSERVE_ASSIGN_OR_RETURN(
        operands.pointwise_filter,
        ViewTensorRef(request.pointwise_filter(), "pointwise_filter", filters, &parsed.registered,
                      &operands.pointwise_filter_hash));
    info.pointwise_filter = Info(operands.pointwise_filter);
  } else if (request.has_pointwise_filter()) {
    return absl::InvalidArgumentError(
        "pointwise_filter is only used by separable_conv2d (field: pointwise_filter)");
  }
  if (request.has_bias()) {
    CONVSERVE_ASSIGN_OR_RETURN(operands.bias,
                               ViewTensorRef(request.bias(), "bias", filters, &parsed.registered));
    info.bias = Info(operands.bias);
  }
  CONVSERVE_ASSIGN_OR_RETURN(info.activation, FromProto(request.activation()));
  CONVSERVE_ASSIGN_OR_RETURN(parsed.spec, MakeSpec(params, info, limits));
  // A float32 opt-in; other dtypes ignore it.
  parsed.spec.allow_reduced_precision =
      request.allow_reduced_precision() && parsed.spec.dtype == DataType::kFloat32;
  parsed.backend = request.backend();
  return parsed;
}

void ToProto(const BackendInfo& info, v1::BackendInfo* proto) {
  proto->set_name(info.name);
  proto->set_version(info.version);
  proto->set_device(info.device);
  for (DataType dtype : info.native_dtypes) proto->add_dtypes(ToProto(dtype));
  proto->set_notes(info.notes);
}

void ToProto(const DeviceInfo& info, v1::GpuInfo* proto) {
  proto->set_id(info.id);
  proto->set_ordinal(info.ordinal);
  proto->set_name(info.name);
  proto->set_memory_bytes(info.memory_bytes);
  proto->set_compute_capability(info.compute_capability);
  proto->set_driver_version(info.driver_version);
  proto->set_runtime_version(info.runtime_version);
  proto->set_cudnn_version(info.cudnn_version);
}

TensorView AllocateOutput(const ConvSpec& spec, v1::ConvResponse* response) {
  v1::Tensor* output = response->mutable_output();
  output->set_dtype(ToProto(spec.dtype));
  output->mutable_shape()->Assign(spec.result_shape.begin(), spec.result_shape.end());
  std::string* data = output->mutable_data();
  // MakeSpec bounded the result's size.
  data->resize(static_cast<size_t>(spec.ResultElements() * ItemSize(spec.dtype)));
  return TensorView{spec.dtype, spec.result_shape, reinterpret_cast<std::byte*>(data->data())};
}

}  // namespace convserve::server
