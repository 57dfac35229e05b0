// How the cuDNN backend honours TensorFlow's padding with the symmetric
// padding of cuDNN's convolution descriptors. Pure arithmetic, no CUDA: built
// and tested on every machine.
//
// cuDNN's convolution descriptor pads each spatial dimension of the input by
// the same amount at both ends. TensorFlow's SAME padding puts the odd pixel
// at the end (pad_after = pad_before + 1), and explicit padding may split any
// way. For one spatial dimension the plan pads pad_before plus a whole number
// of strides (so cuDNN's windows fall on TF's), enough that TF's last window
// fits, and says where TF's output lies in cuDNN's:
//   - forward: TF's output is cuDNN's entries [crop_begin, crop_begin + output);
//   - transposed (cuDNN's backward data): dy goes to those entries of a zeroed
//     buffer of `cudnn_output` entries, and cuDNN's dx is TF's.
// The input is never copied; the outputs cuDNN computes before and after
// TF's are dropped.
#pragma once

#include <cstdint>

namespace convserve::cuda {

struct SymmetricPadding {
  int64_t pad = 0;           // cuDNN's padding at both ends
  int64_t crop_begin = 0;    // where TF's output starts in cuDNN's
  int64_t cudnn_output = 0;  // cuDNN's output size, >= crop_begin + output
};

// One spatial dimension of a forward convolution as MakeSpec gives it:
// `output` = floor((input + pad_before + pad_after - (filter - 1) * dilation
// - 1) / stride) + 1 >= 1 for TF's pad_after, every size >= 1 and pad_before
// >= 0. The plan's pad is at most max(pad_before, pad_after + stride - 1);
// callers keep that within cuDNN's int.
SymmetricPadding PlanSymmetricPadding(int64_t input, int64_t filter, int64_t dilation,
                                      int64_t stride, int64_t pad_before, int64_t output);

}  // namespace convserve::cuda
