#include "core/window.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/shape.h"

namespace convserve {
namespace {

absl::Status Overflow() {
  return absl::InvalidArgumentError("integer overflow in the output size computation");
}

}  // namespace

absl::StatusOr<Window> ComputeWindow(int64_t input_size, int64_t filter_size, int64_t stride,
                                     int64_t dilation, Padding padding, int64_t explicit_pad_before,
                                     int64_t explicit_pad_after) {
  if (stride <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("Stride must be > 0, but got ", stride));
  }
  if (dilation < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("Dilation rate must be >= 1, but got ", dilation));
  }
  // eff = (k - 1) * d + 1
  std::optional<int64_t> effective_or = CheckedSub(filter_size, 1);
  if (effective_or) effective_or = CheckedMul(*effective_or, dilation);
  if (effective_or) effective_or = CheckedAdd(*effective_or, 1);
  if (!effective_or) return Overflow();
  const int64_t effective = *effective_or;

  Window window;
  switch (padding) {
    case Padding::kSame: {
      // out = (in + s - 1) / s as TF computes it: ceil(in / s) for in >= 0.
      window.output_size = input_size >= 0
                               ? input_size / stride + (input_size % stride != 0 ? 1 : 0)
                               : (input_size + (stride - 1)) / stride;
      // pad_total = max(0, (out - 1) * s + eff - in), summed as ((out - 1) * s - in) + eff
      // so that in-range results never overflow an intermediate.
      std::optional<int64_t> pad_total = CheckedSub(window.output_size, 1);
      if (pad_total) pad_total = CheckedMul(*pad_total, stride);
      if (pad_total) pad_total = CheckedSub(*pad_total, input_size);
      if (pad_total) pad_total = CheckedAdd(*pad_total, effective);
      if (!pad_total) return Overflow();
      const int64_t total = std::max<int64_t>(0, *pad_total);
      window.pad_before = total / 2;
      window.pad_after = total - window.pad_before;
      break;
    }
    case Padding::kValid:
    case Padding::kExplicit: {
      if (padding == Padding::kExplicit) {
        window.pad_before = explicit_pad_before;
        window.pad_after = explicit_pad_after;
      }
      // out = (in + pb + pa - eff + s) / s, truncating toward zero; with
      // x = in - eff + pb + pa that is x / s + 1 for x >= 0 and (x + s) / s otherwise.
      std::optional<int64_t> x = CheckedSub(input_size, effective);
      if (x) x = CheckedAdd(*x, window.pad_before);
      if (x) x = CheckedAdd(*x, window.pad_after);
      if (!x) return Overflow();
      std::optional<int64_t> out = *x >= 0 ? CheckedAdd(*x / stride, 1) : (*x + stride) / stride;
      if (!out) return Overflow();
      window.output_size = *out;
      break;
    }
    case Padding::kUnspecified:
      return absl::InvalidArgumentError("padding must be SAME, VALID or EXPLICIT");
  }
  if (window.output_size < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Computed output size would be negative: ", window.output_size, " [input_size: ",
        input_size, ", effective_filter_size: ", effective, ", stride: ", stride, "]"));
  }
  return window;
}

}  // namespace convserve
