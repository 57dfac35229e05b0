// How the cuDNN backend honours TensorFlow's padding with cuDNN's symmetric
// padding. Pure arithmetic, no CUDA: built and tested on every machine.
//
// cuDNN pads each spatial dimension of a convolution's input by the same
// amount at both ends. TensorFlow's SAME padding puts the odd pixel at the
// end (pad_after = pad_before + 1), and explicit padding may split any way.
// For one spatial dimension the plan picks cuDNN's pad and, when that alone
// cannot reproduce TF's windows, the cheapest fix:
//   - pad = pad_before, when cuDNN's output then already holds TF's: keep its
//     first `output` entries (any extra entries at the end are dropped);
//   - pad = pad_after, when the difference is a whole number of strides: TF's
//     output starts `crop_begin` entries into cuDNN's;
//   - otherwise pad = pad_before and the input gets `extra_end` zeros
//     appended (a staging copy) so that TF's last windows fit.
// The same plan serves the transposed ops (cuDNN's backward data): dy is
// placed at [crop_begin, crop_begin + output) of a zeroed buffer of
// `cudnn_output` entries, and dx is the first `input` entries of cuDNN's
// `input + extra_end`.
#pragma once

#include <cstdint>

namespace convserve::cuda {

struct SymmetricPadding {
  int64_t pad = 0;           // cuDNN's padding at both ends
  int64_t extra_end = 0;     // zeros appended to the input before cuDNN runs
  int64_t crop_begin = 0;    // where TF's output starts in cuDNN's
  int64_t cudnn_output = 0;  // cuDNN's output size
};

// One spatial dimension of a forward convolution as MakeSpec gives it:
// `output` = floor((input + pad_before + pad_after - (filter - 1) * dilation
// - 1) / stride) + 1 >= 1, every size >= 1 and both pads >= 0.
SymmetricPadding PlanSymmetricPadding(int64_t input, int64_t filter, int64_t dilation,
                                      int64_t stride, int64_t pad_before, int64_t pad_after,
                                      int64_t output);

}  // namespace convserve::cuda
