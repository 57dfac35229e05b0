// One parameter struct per TensorFlow op, independent of any wire format.
// Fields mirror the TF 2 Python arguments; empty lists mean TF's defaults
// (all ones for strides and dilations), an empty data_format means channels last.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace convserve {

enum class Padding { kUnspecified, kSame, kValid, kExplicit };

// Fused epilogue applied after the optional bias.
enum class Activation { kNone, kRelu, kRelu6, kElu, kLeakyRelu, kSigmoid, kTanh };

struct ConvolutionParams {  // tf.nn.convolution, N = rank(filter) - 2
  std::vector<int64_t> strides;
  Padding padding = Padding::kUnspecified;
  std::vector<int64_t> explicit_paddings;
  std::string data_format;
  std::vector<int64_t> dilations;
};

struct Conv1DParams {  // tf.nn.conv1d
  std::vector<int64_t> stride;
  Padding padding = Padding::kUnspecified;
  std::string data_format;
  std::vector<int64_t> dilations;
};

struct Conv2DParams {  // tf.nn.conv2d
  std::vector<int64_t> strides;
  Padding padding = Padding::kUnspecified;
  std::vector<int64_t> explicit_paddings;
  std::string data_format;
  std::vector<int64_t> dilations;
};

struct Conv3DParams {  // tf.nn.conv3d
  std::vector<int64_t> strides;
  Padding padding = Padding::kUnspecified;
  std::string data_format;
  std::vector<int64_t> dilations;
};

struct DepthwiseConv2DParams {  // tf.nn.depthwise_conv2d (dilations == TF1 `rate`)
  std::vector<int64_t> strides;
  Padding padding = Padding::kUnspecified;
  std::vector<int64_t> explicit_paddings;
  std::string data_format;
  std::vector<int64_t> dilations;
};

struct SeparableConv2DParams {  // tf.nn.separable_conv2d
  std::vector<int64_t> strides;
  Padding padding = Padding::kUnspecified;
  std::string data_format;
  std::vector<int64_t> dilations;
};

struct AtrousConv2DParams {  // tf.nn.atrous_conv2d
  int64_t rate = 0;
  Padding padding = Padding::kUnspecified;
};

// tf.nn.conv1d_transpose, tf.nn.conv2d_transpose, tf.nn.conv3d_transpose and
// tf.nn.conv_transpose share their arguments; `rank` says which op: 1, 2, 3,
// or 0 for conv_transpose (whose spatial rank is len(output_shape) - 2).
// output_shape may hold only the spatial sizes where TensorFlow 2 accepts
// that; explicit_paddings exist on the wire for conv2d_transpose and
// conv_transpose only (empty for the others).
struct ConvTransposeParams {
  int rank = 0;
  std::vector<int64_t> output_shape;
  std::vector<int64_t> strides;
  Padding padding = Padding::kUnspecified;
  std::vector<int64_t> explicit_paddings;
  std::string data_format;
  std::vector<int64_t> dilations;
};

using OpParams =
    std::variant<ConvolutionParams, Conv1DParams, Conv2DParams, Conv3DParams, DepthwiseConv2DParams,
                 SeparableConv2DParams, AtrousConv2DParams, ConvTransposeParams>;

}  // namespace convserve
