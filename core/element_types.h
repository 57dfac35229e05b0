// C++ element types for each DataType and the arithmetic TensorFlow uses on
// them: Eigen's half and bfloat16 (the types TensorFlow itself uses, so
// rounding matches), accumulation in float for both, wrapping int32.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <type_traits>

#include "core/dtype.h"

namespace convserve {

using half = Eigen::half;
using bfloat16 = Eigen::bfloat16;

// Acc: the accumulator type of a reduction over T. For int32 it is uint32,
// whose modular arithmetic gives two's-complement wrapping without UB.
template <typename T>
struct ElementTraits {
  using Acc = T;
};
template <>
struct ElementTraits<half> {
  using Acc = float;
};
template <>
struct ElementTraits<bfloat16> {
  using Acc = float;
};
template <>
struct ElementTraits<int32_t> {
  using Acc = uint32_t;
};

template <typename T>
using AccType = typename ElementTraits<T>::Acc;

template <typename T>
AccType<T> ToAcc(T value) {
  return static_cast<AccType<T>>(value);
}

// Rounds (half, bfloat16: to nearest even) or wraps (int32) an accumulator.
template <typename T>
T FromAcc(AccType<T> value) {
  return static_cast<T>(value);
}

// Calls fn(T{}) with the C++ type of `dtype`.
template <typename Fn>
decltype(auto) DispatchDataType(DataType dtype, Fn&& fn) {
  switch (dtype) {
    case DataType::kFloat32: return fn(float{});
    case DataType::kFloat64: return fn(double{});
    case DataType::kFloat16: return fn(half{});
    case DataType::kBFloat16: return fn(bfloat16{});
    case DataType::kInt32: break;
  }
  return fn(int32_t{});
}

}  // namespace convserve
