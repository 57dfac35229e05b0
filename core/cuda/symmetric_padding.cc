#include "core/cuda/symmetric_padding.h"

#include <algorithm>

namespace convserve::cuda {
namespace {

// cuDNN's output size for `input` padded by `pad` at both ends.
int64_t CudnnOutput(int64_t input, int64_t pad, int64_t span, int64_t stride) {
  const int64_t padded = input + 2 * pad;
  return padded < span ? 0 : (padded - span) / stride + 1;
}

}  // namespace

SymmetricPadding PlanSymmetricPadding(int64_t input, int64_t filter, int64_t dilation,
                                      int64_t stride, int64_t pad_before, int64_t pad_after,
                                      int64_t output) {
  const int64_t span = (filter - 1) * dilation + 1;  // the window's extent
  SymmetricPadding plan;
  plan.pad = pad_before;
  plan.cudnn_output = CudnnOutput(input, pad_before, span, stride);
  if (plan.cudnn_output >= output) return plan;

  const int64_t shift = pad_after - pad_before;  // > 0 here
  if (shift % stride == 0) {
    plan.pad = pad_after;
    plan.crop_begin = shift / stride;
    plan.cudnn_output = CudnnOutput(input, pad_after, span, stride);
    return plan;
  }
  // The last TF window ends at (output - 1) * stride - pad_before + span - 1,
  // which the padded input must reach.
  plan.extra_end = std::max<int64_t>(0, (output - 1) * stride + span - input - 2 * pad_before);
  plan.cudnn_output = CudnnOutput(input + plan.extra_end, pad_before, span, stride);
  return plan;
}

}  // namespace convserve::cuda
