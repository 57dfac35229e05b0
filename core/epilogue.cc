#include "core/epilogue.h"

#include <algorithm>
#include <cmath>

#include "core/element_types.h"

namespace convserve {
namespace {

// TensorFlow's activations on one rounded value; the math runs in float (double
// for double) and rounds once.
template <typename T>
T Activate(Activation activation, T value) {
  if constexpr (std::is_same_v<T, int32_t>) {
    if (activation == Activation::kRelu) return std::max(value, 0);
    if (activation == Activation::kRelu6) return std::min(std::max(value, 0), 6);
    return value;  // MakeSpec admits no other activation for int32
  } else {
    using Math = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const Math v = static_cast<Math>(value);
    switch (activation) {
      case Activation::kNone: return value;
      case Activation::kRelu: return static_cast<T>(std::max(v, Math{0}));
      case Activation::kRelu6: return static_cast<T>(std::min(std::max(v, Math{0}), Math{6}));
      case Activation::kElu: return static_cast<T>(v < 0 ? std::exp(v) - Math{1} : v);
      case Activation::kLeakyRelu: {
        const Math alpha = static_cast<Math>(0.2f);  // TF's default, a float attr
        return static_cast<T>(std::max(v, v * alpha));
      }
      case Activation::kSigmoid: return static_cast<T>(Math{1} / (Math{1} + std::exp(-v)));
      case Activation::kTanh: return static_cast<T>(std::tanh(v));
    }
    return value;
  }
}

// Adds the bias over the channel dimension, then applies the activation, in place.
template <typename T>
void EpilogueTyped(const ConvSpec& spec, const T* bias, T* out, int64_t elements) {
  if ((!bias && spec.activation == Activation::kNone) || elements == 0) return;
  const int64_t channels = spec.ResultChannels();
  const int64_t plane = spec.channels_last ? 1 : elements / (channels * spec.batch);
  for (int64_t i = 0; i < elements; ++i) {
    T value = out[i];
    if (bias) value = FromAcc<T>(ToAcc(value) + ToAcc(bias[(i / plane) % channels]));
    out[i] = Activate(spec.activation, value);
  }
}

}  // namespace

void ApplyEpilogue(const ConvSpec& spec, const ConstTensorView& bias, TensorView out) {
  int64_t elements = 1;
  for (int64_t dim : out.shape) elements *= dim;
  DispatchDataType(spec.dtype, [&](auto tag) {
    using T = decltype(tag);
    EpilogueTyped<T>(spec, spec.has_bias ? bias.as<T>() : nullptr, out.as<T>(), elements);
  });
}

}  // namespace convserve
