#include "core/make_spec.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/op_attrs.h"
#include "core/status_macros.h"
#include "core/window.h"

namespace convserve {
namespace {

constexpr absl::string_view kNoInt32 =
    "Value for attr 'T' of int32 is not in the list of allowed values: half, bfloat16, "
    "float, double";

absl::Status DtypeMismatch(absl::string_view op, absl::string_view field, absl::string_view kernel,
                           int input_index, DataType expected, DataType actual) {
  return FieldError(op, field,
                    absl::StrCat("cannot compute ", kernel, " as input #", input_index,
                                 "(zero-based) was expected to be a ", TfTypeName(expected),
                                 " tensor but is a ", TfTypeName(actual), " tensor"));
}

absl::Status CheckNoZeroDims(absl::string_view op, absl::string_view field, const Shape& shape) {
  for (int64_t dim : shape) {
    if (dim == 0) {
      return FieldError(op, field,
                        "filter must not have zero elements (i.e. all dimensions must be "
                        "non-zero)");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckShapeValid(absl::string_view op, absl::string_view field, const Shape& shape) {
  absl::StatusOr<int64_t> elements = NumElements(shape);
  if (!elements.ok()) return FieldError(op, field, elements.status().message());
  return absl::OkStatus();
}

// Places spatial dimension i of an op of rank n in the spec, which has a dummy
// leading dimension of size 1 when n == 1.
int SpecDim(int n, int i) { return n == 1 ? i + 1 : i; }

// A forward op after its own attributes have been parsed.
struct ForwardConv {
  absl::string_view op;      // request field prefix, e.g. "conv2d"
  absl::string_view kernel;  // TensorFlow kernel named in dtype messages
  int n = 2;                 // spatial rank of the op
  bool channels_last = true;
  std::vector<int64_t> strides = {};
  std::vector<int64_t> dilations = {};
  Padding padding = Padding::kSame;
  SpatialPads pads = {};
  bool extra_batch_dims = true;  // input rank may exceed N+2, extra leading dims are batch
  bool depthwise = false;        // filter [k.., C, M]: groups = C
  bool int32_allowed = true;
};

// Validates the operands of a forward convolution and fills in the spec's
// geometry and result shape.
absl::StatusOr<ConvSpec> BuildForward(const ForwardConv& f, const OperandInfo& operands) {
  const TensorInfo& input = operands.input;
  const TensorInfo& filter = operands.filter;
  const int n = f.n;
  if (filter.dtype != input.dtype) {
    return DtypeMismatch(f.op, "filter", f.kernel, 1, input.dtype, filter.dtype);
  }
  if (input.dtype == DataType::kInt32 && !f.int32_allowed) {
    return FieldError(f.op, "input.dtype", kNoInt32);
  }
  CONVSERVE_RETURN_IF_ERROR(CheckShapeValid(f.op, "input.shape", input.shape));
  CONVSERVE_RETURN_IF_ERROR(CheckShapeValid(f.op, "filter.shape", filter.shape));
  const int rank = static_cast<int>(input.shape.size());
  if (rank < n + 2 || (!f.extra_batch_dims && rank != n + 2)) {
    return FieldError(f.op, "input.shape",
                      absl::StrCat("convolution input must be ", n + 2,
                                   "-dimensional: ", ShapeString(input.shape)));
  }
  if (static_cast<int>(filter.shape.size()) != n + 2) {
    return FieldError(f.op, "filter.shape",
                      absl::StrCat("convolution filter must be ", n + 2,
                                   "-dimensional: ", ShapeString(filter.shape)));
  }
  CONVSERVE_RETURN_IF_ERROR(CheckNoZeroDims(f.op, "filter.shape", filter.shape));

  // Input: leading batch dims, then spatial and channel in data-format order.
  const int lead = rank - (n + 1);  // batch dimensions
  ConvSpec spec;
  spec.dtype = input.dtype;
  spec.channels_last = f.channels_last;
  spec.rank = n == 1 ? 2 : n;
  spec.batch = 1;
  for (int i = 0; i < lead; ++i) spec.batch *= input.shape[i];  // bounded: shape is valid
  const int first_spatial = f.channels_last ? lead : lead + 1;
  const int64_t channels = f.channels_last ? input.shape[rank - 1] : input.shape[lead];
  const int64_t filter_in = filter.shape[n];
  const int64_t filter_out = filter.shape[n + 1];

  spec.in_channels = channels;
  if (f.depthwise) {
    if (channels != filter_in) {
      return FieldError(
          f.op, "filter.shape",
          absl::StrCat("input and filter must have the same depth: ", channels, " vs ", filter_in));
    }
    std::optional<int64_t> out = CheckedMul(channels, filter_out);
    if (!out) return FieldError(f.op, "filter.shape", "output depth overflows int64");
    spec.groups = channels;
    spec.out_channels = *out;
  } else {
    if (channels == 0 || channels % filter_in != 0) {
      return FieldError(f.op, "filter.shape",
                        absl::StrCat("input depth must be evenly divisible by filter depth: ",
                                     channels, " vs ", filter_in));
    }
    spec.groups = channels / filter_in;
    if (filter_out % spec.groups != 0) {
      return FieldError(f.op, "filter.shape",
                        absl::StrCat("output depth must be evenly divisible by number of "
                                     "groups: ",
                                     filter_out, " vs ", spec.groups));
    }
    spec.out_channels = filter_out;
  }

  for (int i = 0; i < n; ++i) {
    const int d = SpecDim(n, i);
    spec.input_spatial[d] = input.shape[first_spatial + i];
    spec.filter_spatial[d] = filter.shape[i];
    spec.strides[d] = f.strides[i];
    spec.dilations[d] = f.dilations[i];
    absl::StatusOr<Window> window =
        ComputeWindow(spec.input_spatial[d], spec.filter_spatial[d], f.strides[i], f.dilations[i],
                      f.padding, f.pads.before[i], f.pads.after[i]);
    if (!window.ok()) return FieldError(f.op, "input.shape", window.status().message());
    spec.output_spatial[d] = window->output_size;
    spec.pad_before[d] = window->pad_before;
    spec.pad_after[d] = window->pad_after;
  }

  spec.result_shape.assign(input.shape.begin(), input.shape.begin() + lead);
  if (!f.channels_last) spec.result_shape.push_back(spec.out_channels);
  for (int i = 0; i < n; ++i) spec.result_shape.push_back(spec.output_spatial[SpecDim(n, i)]);
  if (f.channels_last) spec.result_shape.push_back(spec.out_channels);
  return spec;
}

// Attributes common to the ops that map straight onto BuildForward.
struct ForwardAttrs {
  const std::vector<int64_t>& strides;
  absl::string_view strides_field;
  Padding padding;
  const std::vector<int64_t>* explicit_paddings;  // null: the op has no such field
  const std::string& data_format;
  const std::vector<int64_t>& dilations;
};

absl::Status ParseForwardAttrs(const ForwardAttrs& attrs, bool accept_2d_names_for_1d,
                               ForwardConv* f) {
  AttrContext ctx{f->op, f->n};
  CONVSERVE_ASSIGN_OR_RETURN(f->channels_last,
                             ParseDataFormat(ctx, attrs.data_format, accept_2d_names_for_1d));
  CONVSERVE_RETURN_IF_ERROR(CheckPadding(ctx, attrs.padding, attrs.explicit_paddings != nullptr));
  CONVSERVE_ASSIGN_OR_RETURN(
      f->strides, ExpandStrides(ctx, attrs.strides_field, attrs.strides, f->channels_last));
  CONVSERVE_ASSIGN_OR_RETURN(f->dilations, ExpandDilations(ctx, attrs.dilations, f->channels_last));
  static const std::vector<int64_t> kNone;
  CONVSERVE_ASSIGN_OR_RETURN(
      f->pads, ParseExplicitPaddings(ctx, attrs.padding,
                                     attrs.explicit_paddings ? *attrs.explicit_paddings : kNone,
                                     f->channels_last));
  f->padding = attrs.padding;
  return absl::OkStatus();
}

// tf.nn.convolution, atrous, depthwise and separable refuse strides and
// dilations > 1 together.
absl::Status CheckNotStridedAndDilated(const ForwardConv& f) {
  bool strided = false, dilated = false;
  for (int64_t s : f.strides) strided |= s > 1;
  for (int64_t d : f.dilations) dilated |= d > 1;
  if (strided && dilated) {
    return FieldError(f.op, "strides",
                      "strides > 1 not supported in conjunction with dilation_rate > 1");
  }
  return absl::OkStatus();
}

absl::string_view ForwardKernel(int n) { return n == 3 ? "Conv3D" : "Conv2D"; }

absl::StatusOr<ConvSpec> Forward(const ConvolutionParams& p, const OperandInfo& operands) {
  const int filter_rank = static_cast<int>(operands.filter.shape.size());
  const int n = filter_rank - 2;
  if (n < 1 || n > 3) {
    return FieldError("convolution", "filter.shape",
                      absl::StrCat("filters must be of rank 3, 4 or 5 but was ", filter_rank));
  }
  ForwardConv f{.op = "convolution", .kernel = ForwardKernel(n), .n = n, .int32_allowed = n < 3};
  CONVSERVE_RETURN_IF_ERROR(ParseForwardAttrs(
      {p.strides, "strides", p.padding, &p.explicit_paddings, p.data_format, p.dilations}, false,
      &f));
  CONVSERVE_RETURN_IF_ERROR(CheckNotStridedAndDilated(f));
  return BuildForward(f, operands);
}

absl::StatusOr<ConvSpec> Forward(const Conv1DParams& p, const OperandInfo& operands) {
  ForwardConv f{.op = "conv1d", .kernel = "Conv2D", .n = 1};
  CONVSERVE_RETURN_IF_ERROR(ParseForwardAttrs(
      {p.stride, "stride", p.padding, nullptr, p.data_format, p.dilations}, true, &f));
  return BuildForward(f, operands);
}

absl::StatusOr<ConvSpec> Forward(const Conv2DParams& p, const OperandInfo& operands) {
  ForwardConv f{.op = "conv2d", .kernel = "Conv2D", .n = 2};
  CONVSERVE_RETURN_IF_ERROR(ParseForwardAttrs(
      {p.strides, "strides", p.padding, &p.explicit_paddings, p.data_format, p.dilations}, false,
      &f));
  return BuildForward(f, operands);
}

absl::StatusOr<ConvSpec> Forward(const Conv3DParams& p, const OperandInfo& operands) {
  ForwardConv f{.op = "conv3d", .kernel = "Conv3D", .n = 3, .int32_allowed = false};
  CONVSERVE_RETURN_IF_ERROR(ParseForwardAttrs(
      {p.strides, "strides", p.padding, nullptr, p.data_format, p.dilations}, false, &f));
  return BuildForward(f, operands);
}

ForwardConv Depthwise(absl::string_view op) {
  return ForwardConv{.op = op,
                     .kernel = "DepthwiseConv2dNative",
                     .n = 2,
                     .extra_batch_dims = false,
                     .depthwise = true,
                     .int32_allowed = false};
}

absl::Status CheckEqualRowColStrides(const ForwardConv& f) {
  if (f.strides[0] != f.strides[1]) {
    return FieldError(f.op, "strides",
                      "Current implementation only supports equal length strides in the row "
                      "and column dimensions.");
  }
  return absl::OkStatus();
}

absl::StatusOr<ConvSpec> Forward(const DepthwiseConv2DParams& p, const OperandInfo& operands) {
  ForwardConv f = Depthwise("depthwise_conv2d");
  CONVSERVE_RETURN_IF_ERROR(ParseForwardAttrs(
      {p.strides, "strides", p.padding, &p.explicit_paddings, p.data_format, p.dilations}, false,
      &f));
  CONVSERVE_RETURN_IF_ERROR(CheckEqualRowColStrides(f));
  CONVSERVE_RETURN_IF_ERROR(CheckNotStridedAndDilated(f));
  return BuildForward(f, operands);
}

absl::StatusOr<ConvSpec> Forward(const SeparableConv2DParams& p, const OperandInfo& operands) {
  constexpr absl::string_view kOp = "separable_conv2d";
  ForwardConv f = Depthwise(kOp);
  CONVSERVE_RETURN_IF_ERROR(ParseForwardAttrs(
      {p.strides, "strides", p.padding, nullptr, p.data_format, p.dilations}, false, &f));
  CONVSERVE_RETURN_IF_ERROR(CheckEqualRowColStrides(f));
  CONVSERVE_RETURN_IF_ERROR(CheckNotStridedAndDilated(f));
  if (!operands.pointwise_filter) {
    return FieldError(kOp, "pointwise_filter", "separable_conv2d needs a pointwise_filter");
  }
  const TensorInfo& pointwise = *operands.pointwise_filter;
  CONVSERVE_ASSIGN_OR_RETURN(ConvSpec spec, BuildForward(f, operands));
  if (pointwise.dtype != spec.dtype) {
    return DtypeMismatch(kOp, "pointwise_filter", "Conv2D", 1, spec.dtype, pointwise.dtype);
  }
  CONVSERVE_RETURN_IF_ERROR(CheckShapeValid(kOp, "pointwise_filter.shape", pointwise.shape));
  const Shape& pw = pointwise.shape;
  if (pw.size() != 4 || pw[0] != 1 || pw[1] != 1) {
    return FieldError(kOp, "pointwise_filter.shape",
                      absl::StrCat("pointwise_filter must have shape [1, 1, in_channels * "
                                   "channel_multiplier, out_channels] but has ",
                                   ShapeString(pw)));
  }
  CONVSERVE_RETURN_IF_ERROR(CheckNoZeroDims(kOp, "pointwise_filter.shape", pw));
  const int64_t depth = spec.out_channels;  // in_channels * channel_multiplier
  if (depth % pw[2] != 0) {
    return FieldError(kOp, "pointwise_filter.shape",
                      absl::StrCat("input depth must be evenly divisible by filter depth: ", depth,
                                   " vs ", pw[2]));
  }
  spec.pointwise_groups = depth / pw[2];
  if (pw[3] % spec.pointwise_groups != 0) {
    return FieldError(kOp, "pointwise_filter.shape",
                      absl::StrCat("output depth must be evenly divisible by number of "
                                   "groups: ",
                                   pw[3], " vs ", spec.pointwise_groups));
  }
  spec.pointwise_out_channels = pw[3];
  spec.result_shape[f.channels_last ? 3 : 1] = pw[3];
  return spec;
}

absl::StatusOr<ConvSpec> Forward(const AtrousConv2DParams& p, const OperandInfo& operands) {
  constexpr absl::string_view kOp = "atrous_conv2d";
  if (p.rate < 1) {
    return FieldError(kOp, "rate", absl::StrCat("rate ", p.rate, " cannot be less than one"));
  }
  CONVSERVE_RETURN_IF_ERROR(CheckPadding({kOp, 2}, p.padding, false));
  ForwardConv f{.op = kOp,
                .kernel = "Conv2D",
                .n = 2,
                .channels_last = true,
                .strides = {1, 1},
                .dilations = {p.rate, p.rate},
                .padding = p.padding,
                .pads = {{0, 0}, {0, 0}},
                .extra_batch_dims = false};
  return BuildForward(f, operands);
}

// ---------------------------------------------------------------- transposed ops
//
// TF_SEMANTICS: how TensorFlow 2's Python entry points (nn_ops.py) hand a
// transposed convolution to the backprop-input kernels, which we follow:
// - conv_transpose dispatches on len(output_shape) alone: 3, 4 and 5 call
//   conv1d_transpose, conv2d_transpose and conv3d_transpose, any other length
//   is refused. So it never reads a spatial-only output_shape: 2 values are
//   refused by length, 3 values mean 1-D whatever the input's rank.
// - conv2d_transpose passes output_shape to Conv2DBackpropInput as
//   input_sizes, which takes 4 values, or 2 (the spatial sizes: the batch
//   comes from the input, the channels from filter.dim(2))
//   [conv_grad_shape_utils.cc: Conv2DBackpropComputeInputShape]. Its padding
//   may be a list of (before, after) pairs: EXPLICIT with explicit_paddings.
// - conv3d_transpose passes output_shape to Conv3DBackpropInputV2, which
//   takes it as the shape of dx: anything but 5 values fails the kernel's
//   rank check. Its padding is a string attribute, "SAME" or "VALID".
// - conv1d_transpose inserts a dummy height of 1 into input and filters, and
//   into strides, dilations and output_shape (output_shape[:i] + [1] +
//   output_shape[i:], i the first spatial position), then runs
//   Conv2DBackpropInput; its padding is passed on as a string. A 3-value
//   output_shape thus becomes 4 values; a 1-value (width-only) one becomes
//   the 2 spatial values (W, 1), which the kernel reads as height W, width 1:
//   accepted only where W is 1. We lift 1-D requests in exactly this way.

constexpr absl::string_view kBackprop2DLabel = "Conv2DCustomBackpropInput";
constexpr absl::string_view kBackprop3DLabel = "Conv3DBackpropInputOp";

// The spatial rank of a transposed op; conv_transpose's is len(output_shape) - 2.
absl::StatusOr<int> TransposedRank(const ConvTransposeParams& p, absl::string_view op) {
  if (p.rank != 0) return p.rank;
  const size_t length = p.output_shape.size();
  if (length < 3 || length > 5) {
    return FieldError(
        op, "output_shape",
        absl::StrCat("output_shape must be of length 3, 4 or 5 but was ", length, "."));
  }
  return static_cast<int>(length) - 2;
}

// TF's repr of a padding list: [[0, 0], [1, 1], ...].
std::string PaddingList(const std::vector<int64_t>& flat) {
  std::string out = "[";
  for (size_t i = 0; i < flat.size(); i += 2) {
    absl::StrAppend(&out, i == 0 ? "[" : ", [", flat[i]);
    if (i + 1 < flat.size()) absl::StrAppend(&out, ", ", flat[i + 1]);
    absl::StrAppend(&out, "]");
  }
  return absl::StrCat(out, "]");
}

// The data format, strides, dilations and padding of a transposed op of
// rank f->n, with the messages of the TF entry point that op runs.
absl::Status ParseTransposedAttrs(const ConvTransposeParams& p, ForwardConv* f) {
  const AttrContext ctx{f->op, f->n};
  if (f->n == 1) {
    // conv1d_transpose checks the format first, and names its strides
    // `stride` when their length is wrong.
    CONVSERVE_RETURN_IF_ERROR(ParseDataFormat(ctx, p.data_format).status());
    const size_t count = p.strides.size();
    if (count != 0 && count != 1 && count != 3) {
      return FieldError(f->op, "strides",
                        absl::StrCat("stride should be of length 1, 1 or 3 but was ", count));
    }
  }
  if (p.rank == 0 && f->n != 2 && p.padding == Padding::kExplicit) {
    return FieldError(
        f->op, "padding",
        absl::StrCat("Expected string for argument 'padding' not ",
                     PaddingList(p.explicit_paddings),
                     ". Explicit padding is for 2-D transposed convolutions only (an "
                     "output_shape of length 4): conv_transpose runs conv1d_transpose or "
                     "conv3d_transpose here, whose padding is \"SAME\" or \"VALID\"."));
  }
  const bool has_explicit_field = p.rank == 0 || p.rank == 2;
  return ParseForwardAttrs(
      {p.strides, "strides", p.padding, has_explicit_field ? &p.explicit_paddings : nullptr,
       p.data_format, p.dilations},
      false, f);
}

// What TF's backprop-input kernel is given: input_sizes (output_shape),
// out_backprop (the request's input), the filter and the spatial attributes,
// for a kernel of spatial rank `rank` (2 or 3).
struct BackpropInputs {
  int rank = 2;
  Shape input_sizes;
  Shape out_backprop;
  Shape filter;
  std::vector<int64_t> strides, dilations;
  SpatialPads pads;
};

// The kernel's inputs for a request whose operand ranks are checked; a 1-D
// request lifted to 2-D as conv1d_transpose does.
BackpropInputs KernelInputs(const ConvTransposeParams& p, const OperandInfo& operands,
                            const ForwardConv& f) {
  BackpropInputs b{.rank = f.n,
                   .input_sizes = p.output_shape,
                   .out_backprop = operands.input.shape,
                   .filter = operands.filter.shape,
                   .strides = f.strides,
                   .dilations = f.dilations,
                   .pads = f.pads};
  if (f.n != 1) return b;
  b.rank = 2;
  const size_t spatial = f.channels_last ? 1 : 2;  // TF's spatial_start_dim
  b.input_sizes.insert(b.input_sizes.begin() + std::min(spatial, b.input_sizes.size()), 1);
  b.out_backprop.insert(b.out_backprop.begin() + spatial, 1);
  b.filter.insert(b.filter.begin(), 1);
  b.strides.insert(b.strides.begin(), 1);
  b.dilations.insert(b.dilations.begin(), 1);
  b.pads.before.insert(b.pads.before.begin(), 0);
  b.pads.after.insert(b.pads.after.begin(), 0);
  return b;
}

// The shape of dx the kernel makes of input_sizes.
absl::StatusOr<Shape> InputShape(const BackpropInputs& b, bool channels_last,
                                 absl::string_view op) {
  const Shape& sizes = b.input_sizes;
  if (b.rank == 3) {
    if (sizes.size() != 5) {
      return FieldError(op, "output_shape",
                        absl::StrCat(kBackprop3DLabel, ": input must be 5-dimensional"));
    }
    return sizes;
  }
  if (sizes.size() == 4) return sizes;
  if (sizes.size() != 2) {
    return FieldError(op, "output_shape",
                      absl::StrCat("Conv2DBackpropInput requires input_sizes to contain 4 values "
                                   "or 2 values, but got: ",
                                   sizes.size()));
  }
  if (sizes[0] < 0 || sizes[1] < 0) {
    return FieldError(op, "output_shape",
                      absl::StrCat("Conv2DBackpropInput: elements of input_sizes must be >= 0, "
                                   "not ",
                                   sizes[0], "x", sizes[1]));
  }
  const int64_t batch = b.out_backprop[0];
  const int64_t depth = b.filter[2];  // the forward convolution's in_depth
  return channels_last ? Shape{batch, sizes[0], sizes[1], depth}
                       : Shape{batch, depth, sizes[0], sizes[1]};
}

// conv1d_transpose, conv2d_transpose, conv3d_transpose and conv_transpose.
absl::StatusOr<ConvSpec> Transposed(const ConvTransposeParams& p, const OperandInfo& operands) {
  const absl::string_view op = OpName(p);
  CONVSERVE_ASSIGN_OR_RETURN(const int n, TransposedRank(p, op));
  const absl::string_view label = n == 3 ? kBackprop3DLabel : kBackprop2DLabel;
  const absl::string_view kernel = n == 3 ? "Conv3DBackpropInputV2" : "Conv2DBackpropInput";
  auto error = [&](absl::string_view field, absl::string_view message) {
    return FieldError(op, field, absl::StrCat(label, ": ", message));
  };

  ForwardConv f{.op = op, .kernel = kernel, .n = n};
  CONVSERVE_RETURN_IF_ERROR(ParseTransposedAttrs(p, &f));
  const TensorInfo& input = operands.input;
  const TensorInfo& filter = operands.filter;
  if (input.dtype != filter.dtype) {
    return DtypeMismatch(op, "input", kernel, 2, filter.dtype, input.dtype);
  }
  if (input.dtype == DataType::kInt32 && n == 3) {
    return FieldError(op, "input.dtype", kNoInt32);
  }
  CONVSERVE_RETURN_IF_ERROR(CheckShapeValid(op, "input.shape", input.shape));
  CONVSERVE_RETURN_IF_ERROR(CheckShapeValid(op, "filter.shape", filter.shape));
  if (static_cast<int>(filter.shape.size()) != n + 2) {
    return error("filter.shape", absl::StrCat("filter must be ", n + 2, "-dimensional"));
  }
  if (static_cast<int>(input.shape.size()) != n + 2) {
    return error("input.shape", absl::StrCat("out_backprop must be ", n + 2, "-dimensional"));
  }
  CONVSERVE_RETURN_IF_ERROR(CheckNoZeroDims(op, "filter.shape", filter.shape));

  // Forward geometry: x has the shape the kernel makes of input_sizes, y the
  // request input's (both with the dummy height of a 1-D op).
  const BackpropInputs b = KernelInputs(p, operands, f);
  CONVSERVE_ASSIGN_OR_RETURN(const Shape x, InputShape(b, f.channels_last, op));
  CONVSERVE_RETURN_IF_ERROR(CheckShapeValid(op, "output_shape", x));
  const Shape& y = b.out_backprop;
  const Shape& w = b.filter;
  const int m = b.rank;
  const int channel = f.channels_last ? m + 1 : 1;
  const int first_spatial = f.channels_last ? 1 : 2;
  if (x[0] != y[0]) {
    return error("output_shape",
                 absl::StrCat("input and out_backprop must have the same batch size. Input "
                              "batch: ",
                              x[0], ", outbackprop batch: ", y[0], ", batch_dim: 0"));
  }
  const int64_t filter_in = w[m];
  const int64_t filter_out = w[m + 1];
  if (x[channel] == 0 || x[channel] % filter_in != 0) {
    return error("output_shape", "input depth must be evenly divisible by filter depth");
  }
  if (filter_out != y[channel]) {
    return error("filter.shape", "filter and out_backprop must have the same out_depth");
  }
  ConvSpec spec;
  spec.dtype = input.dtype;
  spec.channels_last = f.channels_last;
  spec.transposed = true;
  spec.rank = m;
  spec.batch = x[0];
  spec.in_channels = x[channel];
  spec.out_channels = filter_out;
  spec.groups = x[channel] / filter_in;
  if (filter_out % spec.groups != 0) {
    return FieldError(op, "filter.shape",
                      absl::StrCat("output depth must be evenly divisible by number of "
                                   "groups: ",
                                   filter_out, " vs ", spec.groups));
  }
  for (int i = 0; i < m; ++i) {
    const int dim = first_spatial + i;
    absl::StatusOr<Window> window = ComputeWindow(x[dim], w[i], b.strides[i], b.dilations[i],
                                                  f.padding, b.pads.before[i], b.pads.after[i]);
    if (!window.ok()) return FieldError(op, "output_shape", window.status().message());
    if (window->output_size != y[dim]) {
      return error("input.shape",
                   absl::StrCat("Size of out_backprop doesn't match computed: actual = ", y[dim],
                                ", computed = ", window->output_size, " spatial_dim: ", dim,
                                " input: ", x[dim], " filter: ", w[i], " output: ", y[dim],
                                " stride: ", b.strides[i], " dilation: ", b.dilations[i]));
    }
    spec.input_spatial[i] = x[dim];
    spec.filter_spatial[i] = w[i];
    spec.output_spatial[i] = y[dim];
    spec.strides[i] = b.strides[i];
    spec.dilations[i] = b.dilations[i];
    spec.pad_before[i] = window->pad_before;
    spec.pad_after[i] = window->pad_after;
  }
  spec.result_shape = x;
  if (n == 1) spec.result_shape.erase(spec.result_shape.begin() + first_spatial);
  return spec;
}

absl::Status CheckEpilogue(absl::string_view op, const OperandInfo& operands,
                           const ConvSpec& spec) {
  if (operands.bias) {
    const TensorInfo& bias = *operands.bias;
    if (bias.dtype != spec.dtype) {
      return DtypeMismatch(op, "bias", "BiasAdd", 1, spec.dtype, bias.dtype);
    }
    if (bias.shape.size() != 1) {
      return FieldError(op, "bias.shape",
                        absl::StrCat("Biases must be 1D: ", ShapeString(bias.shape)));
    }
    if (bias.shape[0] != spec.ResultChannels()) {
      return FieldError(
          op, "bias.shape",
          absl::StrCat("Must provide as many biases as the channel dimension "
                       "of the output tensor: ",
                       ShapeString(bias.shape), " vs. ", ShapeString(spec.result_shape)));
    }
  }
  const Activation a = operands.activation;
  if (spec.dtype == DataType::kInt32 && a != Activation::kNone && a != Activation::kRelu &&
      a != Activation::kRelu6) {
    return FieldError(op, "activation", kNoInt32);
  }
  return absl::OkStatus();
}

absl::Status CheckLimit(int64_t elements, const SpecLimits& limits, absl::string_view what) {
  if (elements > limits.max_output_elements) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, " would have ", elements,
        " elements, more than this server's max_output_elements of ", limits.max_output_elements));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view OpName(const OpParams& params) {
  struct Visitor {
    absl::string_view operator()(const ConvolutionParams&) { return "convolution"; }
    absl::string_view operator()(const Conv1DParams&) { return "conv1d"; }
    absl::string_view operator()(const Conv2DParams&) { return "conv2d"; }
    absl::string_view operator()(const Conv3DParams&) { return "conv3d"; }
    absl::string_view operator()(const DepthwiseConv2DParams&) { return "depthwise_conv2d"; }
    absl::string_view operator()(const SeparableConv2DParams&) { return "separable_conv2d"; }
    absl::string_view operator()(const AtrousConv2DParams&) { return "atrous_conv2d"; }
    absl::string_view operator()(const ConvTransposeParams& p) {
      switch (p.rank) {
        case 1: return "conv1d_transpose";
        case 2: return "conv2d_transpose";
        case 3: return "conv3d_transpose";
        default: return "conv_transpose";
      }
    }
  };
  return std::visit(Visitor{}, params);
}

absl::StatusOr<ConvSpec> MakeSpec(const OpParams& params, const OperandInfo& operands,
                                  const SpecLimits& limits) {
  absl::StatusOr<ConvSpec> spec = std::visit(
      [&operands](const auto& p) -> absl::StatusOr<ConvSpec> {
        if constexpr (std::is_same_v<std::decay_t<decltype(p)>, ConvTransposeParams>) {
          return Transposed(p, operands);
        } else {
          return Forward(p, operands);
        }
      },
      params);
  if (!spec.ok()) return spec;
  CONVSERVE_RETURN_IF_ERROR(CheckEpilogue(OpName(params), operands, *spec));
  spec->has_bias = operands.bias.has_value();
  spec->activation = operands.activation;

  absl::StatusOr<int64_t> result = NumElements(spec->result_shape);
  if (!result.ok()) return FieldError(OpName(params), "output_shape", result.status().message());
  CONVSERVE_RETURN_IF_ERROR(CheckLimit(*result, limits, "The result"));
  if (spec->pointwise_out_channels > 0) {
    // The depthwise result, materialised before the pointwise step.
    std::optional<int64_t> intermediate = CheckedMul(
        spec->batch * spec->output_spatial[0] * spec->output_spatial[1], spec->out_channels);
    CONVSERVE_RETURN_IF_ERROR(
        CheckLimit(intermediate.value_or(INT64_MAX), limits, "The depthwise intermediate"));
  }
  return spec;
}

}  // namespace convserve
