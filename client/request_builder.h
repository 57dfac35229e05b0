// The client side's one mapping from TensorFlow's op arguments to the wire:
// BuildRequest turns an op name, its TF-style arguments and its tensors into a
// v1::ConvRequest. ConvClient, convserve-cli, convserve-perf and convserve-load
// all build their requests here.
//
// Contract: BuildRequest checks only what the wire cannot express (an unknown
// op, an argument the op does not take, both forms of explicit padding); it
// leaves every value check (shapes, strides, padding names, data formats) to
// the server, which answers with TensorFlow's messages.
//
// Thread safety: BuildRequest is a pure function; the types are plain values.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convserve/v1/convserve.pb.h"

namespace convserve::client {

namespace v1 = ::convserve::v1;

// A dense tensor on the client: row-major little-endian bytes.
struct Tensor {
  v1::DataType dtype = v1::DATA_TYPE_FLOAT32;
  std::vector<int64_t> shape;
  std::string data;

  // float -> FLOAT32, double -> FLOAT64, int32_t -> INT32.
  template <typename T>
  static Tensor Of(std::vector<int64_t> shape, const std::vector<T>& values);
  // The elements as T; T must match the dtype's item size.
  template <typename T>
  std::vector<T> Values() const;
};

// A filter sent inline, or the id RegisterFilter returned.
using FilterRef = std::variant<Tensor, std::string>;

// TensorFlow's padding: "SAME", "VALID", or explicit (before, after) pairs
// for every dimension in data_format order (convolution, conv2d,
// depthwise_conv2d, conv2d_transpose, conv_transpose).
using PaddingArg = std::variant<std::string, std::vector<std::pair<int64_t, int64_t>>>;

// Fused epilogue applied by the server after the convolution.
struct Epilogue {
  std::optional<Tensor> bias;  // 1-D, one value per output channel
  v1::Activation activation = v1::ACTIVATION_NONE;
};

// An op's arguments, named as TensorFlow names them. Empty (or zero) means
// "not given": the wire's default, which the server reads as TensorFlow's.
// Every member has an initializer, so designated initializers may name any
// subset: BuildRequest("conv2d", {.strides = {2}, .padding = "SAME"}, ...).
struct OpArgs {
  std::vector<int64_t> strides = {};  // `stride` for conv1d
  // A name ("SAME", "VALID", "EXPLICIT"; empty or unknown: unspecified, which
  // the server refuses) or explicit (before, after) pairs, sent as EXPLICIT.
  PaddingArg padding = std::string();
  // tf.raw_ops' form of explicit padding: with padding "EXPLICIT", the flat
  // before/after values. Not together with pairs in `padding`.
  std::vector<int64_t> explicit_paddings = {};
  std::string data_format = {};
  std::vector<int64_t> dilations = {};
  std::vector<int64_t> output_shape = {};  // the transposed ops (conv2d_transpose: or (H, W))
  int64_t rate = 0;                        // atrous_conv2d
};

// The tensors of one request. BuildRequest takes them by value and moves their
// bytes into the request. As in OpArgs, designated initializers may omit any.
struct RequestTensors {
  Tensor input = {};      // TensorFlow's `input` (`value` for atrous_conv2d)
  FilterRef filter = {};  // `filters`; the depthwise filter of separable_conv2d
  std::optional<FilterRef> pointwise_filter = {};  // separable_conv2d only, and required there
  Epilogue epilogue = {};
};

// How the server may compute a request, beyond TensorFlow's arguments.
struct RequestOptions {
  // float32 only: the server may compute in a reduced precision with float32
  // in and out (TF32 on a GPU), faster but with a larger rounding error, as
  // TensorFlow's TF32 opt-in allows. Ignored for other dtypes.
  bool allow_reduced_precision = false;
  // The backend to compute on, as GetServerInfo names it; empty: the server chooses.
  std::string backend;
};

// The request for `op`, named as ConvRequest's `op` field names it and as
// tf.nn does ("conv2d", "separable_conv2d", "conv_transpose", ...).
// InvalidArgument for an unknown op, an argument `op` does not take, a
// pointwise filter given to or missing from separable_conv2d, or explicit
// padding given both as pairs and as `explicit_paddings`.
absl::StatusOr<v1::ConvRequest> BuildRequest(absl::string_view op, const OpArgs& args,
                                             RequestTensors tensors,
                                             const RequestOptions& options = {});

// The wire form of a tensor; Tensor's bytes are moved.
v1::Tensor ToWire(Tensor tensor);

template <typename T>
Tensor Tensor::Of(std::vector<int64_t> shape, const std::vector<T>& values) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, int32_t>,
                "Tensor::Of takes float, double or int32_t");
  Tensor tensor;
  tensor.dtype = std::is_same_v<T, float>    ? v1::DATA_TYPE_FLOAT32
                 : std::is_same_v<T, double> ? v1::DATA_TYPE_FLOAT64
                                             : v1::DATA_TYPE_INT32;
  tensor.shape = std::move(shape);
  tensor.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
  return tensor;
}

template <typename T>
std::vector<T> Tensor::Values() const {
  std::vector<T> values(data.size() / sizeof(T));
  std::memcpy(values.data(), data.data(), values.size() * sizeof(T));
  return values;
}

}  // namespace convserve::client
