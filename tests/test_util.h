// Helpers shared by the kernel tests: run one op through MakeSpec and the
// reference backend on std::vector data, make seeded test data, index and
// transpose dense row-major tensors. Nothing here computes a convolution: the
// expected values of a test come from literals or loops written in the test.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <random>
#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"
#include "core/element_types.h"
#include "core/make_spec.h"
#include "core/op_params.h"
#include "core/reference/reference_backend.h"
#include "core/shape.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace convserve {
namespace test {

template <typename T>
constexpr DataType DataTypeOf() {
  if constexpr (std::is_same_v<T, float>) {
    return DataType::kFloat32;
  } else if constexpr (std::is_same_v<T, double>) {
    return DataType::kFloat64;
  } else if constexpr (std::is_same_v<T, half>) {
    return DataType::kFloat16;
  } else if constexpr (std::is_same_v<T, bfloat16>) {
    return DataType::kBFloat16;
  } else {
    static_assert(std::is_same_v<T, int32_t>, "unsupported element type");
    return DataType::kInt32;
  }
}

// A dense row-major tensor owning its values.
template <typename T>
struct Tensor {
  Shape shape;
  std::vector<T> values;
};

// The optional operands of a request beyond input and filter.
template <typename T>
struct Extras {
  std::optional<Tensor<T>> pointwise = std::nullopt;  // separable_conv2d
  std::optional<std::vector<T>> bias = std::nullopt;
  Activation activation = Activation::kNone;
};

inline int64_t Elements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Row-major offset of `index` in a tensor of `shape`.
inline int64_t Offset(const Shape& shape, std::initializer_list<int64_t> index) {
  EXPECT_EQ(shape.size(), index.size());
  int64_t offset = 0;
  size_t d = 0;
  for (int64_t i : index) {
    offset = offset * shape[d] + i;
    ++d;
  }
  return offset;
}

template <typename T>
ConstTensorView View(const Tensor<T>& t) {
  return ConstTensorView{DataTypeOf<T>(), t.shape,
                         reinterpret_cast<const std::byte*>(t.values.data())};
}

// MakeSpec + ReferenceBackend::Run. The first error of either is returned.
template <typename T>
absl::StatusOr<Tensor<T>> TryRun(const OpParams& params, const Tensor<T>& input,
                                 const Tensor<T>& filter, const Extras<T>& extras = {}) {
  constexpr DataType dtype = DataTypeOf<T>();
  OperandInfo info;
  info.input = {dtype, input.shape};
  info.filter = {dtype, filter.shape};
  if (extras.pointwise) info.pointwise_filter = TensorInfo{dtype, extras.pointwise->shape};
  Tensor<T> bias;
  if (extras.bias) {
    bias = {{static_cast<int64_t>(extras.bias->size())}, *extras.bias};
    info.bias = TensorInfo{dtype, bias.shape};
  }
  info.activation = extras.activation;
  absl::StatusOr<ConvSpec> spec = MakeSpec(params, info, SpecLimits{});
  if (!spec.ok()) return spec.status();

  Operands operands;
  operands.input = View(input);
  operands.filter = View(filter);
  if (extras.pointwise) operands.pointwise_filter = View(*extras.pointwise);
  if (extras.bias) operands.bias = View(bias);
  Tensor<T> result{spec->result_shape, std::vector<T>(static_cast<size_t>(spec->ResultElements()))};
  TensorView out{dtype, result.shape, reinterpret_cast<std::byte*>(result.values.data())};
  ReferenceBackend backend;
  absl::Status status = backend.Run(*spec, operands, out);
  if (!status.ok()) return status;
  return result;
}

// RunOp: TryRun that records a test failure on error and then returns an empty tensor.
template <typename T>
Tensor<T> RunOp(const OpParams& params, const Tensor<T>& input, const Tensor<T>& filter,
                const Extras<T>& extras = {}) {
  absl::StatusOr<Tensor<T>> result = TryRun(params, input, filter, extras);
  if (!result.ok()) {
    ADD_FAILURE() << "run failed: " << result.status();
    return {};
  }
  return *std::move(result);
}

// Values k / 8 with k uniform in [-16, 16]: few enough bits that float sums of
// a few thousand such products are exact in any order.
template <typename T>
std::vector<T> RandomGrid(int64_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> dist(-16, 16);
  std::vector<T> v(static_cast<size_t>(n));
  for (T& x : v) x = static_cast<T>(static_cast<float>(dist(rng)) / 8.0f);
  return v;
}

template <typename T>
Tensor<T> RandomGridTensor(Shape shape, std::mt19937& rng) {
  const int64_t n = Elements(shape);
  return {std::move(shape), RandomGrid<T>(n, rng)};
}

// Standard normal values.
template <typename T>
Tensor<T> RandomNormalTensor(Shape shape, std::mt19937& rng) {
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<T> v(static_cast<size_t>(Elements(shape)));
  for (T& x : v) x = static_cast<T>(dist(rng));
  return {std::move(shape), std::move(v)};
}

// 1, 2, 3, ... in a tensor of `shape`.
template <typename T>
Tensor<T> Iota(Shape shape, int start = 1) {
  std::vector<T> v(static_cast<size_t>(Elements(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<T>(start + static_cast<int>(i));
  return {std::move(shape), std::move(v)};
}

// [B, S..., C] -> [B, C, S...].
template <typename T>
Tensor<T> ToChannelsFirst(const Tensor<T>& t) {
  const int64_t batch = t.shape.front();
  const int64_t channels = t.shape.back();
  const int64_t plane = batch == 0 || channels == 0 ? 0 : Elements(t.shape) / (batch * channels);
  Shape shape{batch, channels};
  shape.insert(shape.end(), t.shape.begin() + 1, t.shape.end() - 1);
  std::vector<T> v(t.values.size());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t p = 0; p < plane; ++p)
      for (int64_t c = 0; c < channels; ++c)
        v[(b * channels + c) * plane + p] = t.values[(b * plane + p) * channels + c];
  return {std::move(shape), std::move(v)};
}

// [B, C, S...] -> [B, S..., C].
template <typename T>
Tensor<T> ToChannelsLast(const Tensor<T>& t) {
  const int64_t batch = t.shape[0];
  const int64_t channels = t.shape[1];
  const int64_t plane = batch == 0 || channels == 0 ? 0 : Elements(t.shape) / (batch * channels);
  Shape shape{batch};
  shape.insert(shape.end(), t.shape.begin() + 2, t.shape.end());
  shape.push_back(channels);
  std::vector<T> v(t.values.size());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t p = 0; p < plane; ++p)
      for (int64_t c = 0; c < channels; ++c)
        v[(b * plane + p) * channels + c] = t.values[(b * channels + c) * plane + p];
  return {std::move(shape), std::move(v)};
}

// Sum of a[i] * b[i] in double.
template <typename T>
double Dot(const std::vector<T>& a, const std::vector<T>& b) {
  EXPECT_EQ(a.size(), b.size());
  double sum = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    sum += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  }
  return sum;
}

template <typename T>
std::vector<double> ToDouble(const std::vector<T>& v) {
  std::vector<double> d(v.size());
  for (size_t i = 0; i < v.size(); ++i) d[i] = static_cast<double>(v[i]);
  return d;
}

}  // namespace test
}  // namespace convserve
