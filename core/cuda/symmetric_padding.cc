#include "core/cuda/symmetric_padding.h"

#include <algorithm>

namespace convserve::cuda {

SymmetricPadding PlanSymmetricPadding(int64_t input, int64_t filter, int64_t dilation,
                                      int64_t stride, int64_t pad_before, int64_t output) {
  const int64_t span = (filter - 1) * dilation + 1;  // the window's extent
  // TF's last window ends at (output - 1) * stride - pad_before + span - 1;
  // padded by pad_before at the end, the input falls this short of it.
  const int64_t shortfall =
      std::max<int64_t>(0, (output - 1) * stride + span - input - 2 * pad_before);
  // Padding whole strides more keeps cuDNN's windows on TF's, shifted by
  // crop_begin entries.
  SymmetricPadding plan;
  plan.crop_begin = (shortfall + stride - 1) / stride;
  plan.pad = pad_before + plan.crop_begin * stride;
  plan.cudnn_output = (input + 2 * plan.pad - span) / stride + 1;
  return plan;
}

}  // namespace convserve::cuda
