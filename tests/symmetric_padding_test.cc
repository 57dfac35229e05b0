// PlanSymmetricPadding against brute force: a 1-D convolution with TF's
// padding and the same convolution as cuDNN computes it under the plan
// (symmetric pad, then a crop), forward and backward data, on integers so
// that any misplaced window shows.
#include "core/cuda/symmetric_padding.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace convserve::cuda {
namespace {

struct Dimension {
  int64_t input, filter, dilation, stride, pad_before, pad_after;
  int64_t Span() const { return (filter - 1) * dilation + 1; }
  int64_t Output() const {
    const int64_t padded = input + pad_before + pad_after;
    return padded < Span() ? 0 : (padded - Span()) / stride + 1;
  }
};

std::vector<int64_t> Iota(int64_t n, int64_t first) {
  std::vector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = first + 3 * i;
  return v;
}

// y[o] = sum_j x[o * stride - pad + j * dilation] * w[j], zero outside x,
// for o in [0, outputs).
std::vector<int64_t> Forward(const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                             int64_t dilation, int64_t stride, int64_t pad, int64_t outputs) {
  std::vector<int64_t> y(outputs, 0);
  for (int64_t o = 0; o < outputs; ++o) {
    for (int64_t j = 0; j < static_cast<int64_t>(w.size()); ++j) {
      const int64_t i = o * stride - pad + j * dilation;
      if (i >= 0 && i < static_cast<int64_t>(x.size())) y[o] += x[i] * w[j];
    }
  }
  return y;
}

// The gradient of Forward with respect to x, for x of `inputs` entries.
std::vector<int64_t> BackwardData(const std::vector<int64_t>& dy, const std::vector<int64_t>& w,
                                  int64_t dilation, int64_t stride, int64_t pad, int64_t inputs) {
  std::vector<int64_t> dx(inputs, 0);
  for (int64_t o = 0; o < static_cast<int64_t>(dy.size()); ++o) {
    for (int64_t j = 0; j < static_cast<int64_t>(w.size()); ++j) {
      const int64_t i = o * stride - pad + j * dilation;
      if (i >= 0 && i < inputs) dx[i] += dy[o] * w[j];
    }
  }
  return dx;
}

void ExpectPlanReproducesTf(const Dimension& d) {
  const int64_t output = d.Output();
  const SymmetricPadding plan =
      PlanSymmetricPadding(d.input, d.filter, d.dilation, d.stride, d.pad_before, output);
  SCOPED_TRACE(testing::Message() << "input " << d.input << " filter " << d.filter << " dilation "
                                  << d.dilation << " stride " << d.stride << " pads "
                                  << d.pad_before << "," << d.pad_after << " -> pad " << plan.pad
                                  << " crop_begin " << plan.crop_begin << " cudnn_output "
                                  << plan.cudnn_output);
  ASSERT_GE(plan.pad, d.pad_before);
  ASSERT_LE(plan.pad, std::max(d.pad_before, d.pad_after + d.stride - 1))
      << "pads more than promised";
  // cuDNN's output size, as cuDNN computes it, holds TF's output.
  ASSERT_EQ(plan.cudnn_output, (d.input + 2 * plan.pad - d.Span()) / d.stride + 1);
  ASSERT_GE(plan.cudnn_output, plan.crop_begin + output);

  const std::vector<int64_t> w = Iota(d.filter, 2);
  const std::vector<int64_t> x = Iota(d.input, 1);
  const std::vector<int64_t> tf_y = Forward(x, w, d.dilation, d.stride, d.pad_before, output);
  const std::vector<int64_t> cudnn_y =
      Forward(x, w, d.dilation, d.stride, plan.pad, plan.cudnn_output);
  for (int64_t o = 0; o < output; ++o) {
    ASSERT_EQ(cudnn_y[plan.crop_begin + o], tf_y[o]) << "forward output " << o;
  }

  const std::vector<int64_t> dy = Iota(output, 5);
  std::vector<int64_t> placed_dy(plan.cudnn_output, 0);
  for (int64_t o = 0; o < output; ++o) placed_dy[plan.crop_begin + o] = dy[o];
  const std::vector<int64_t> tf_dx =
      BackwardData(dy, w, d.dilation, d.stride, d.pad_before, d.input);
  const std::vector<int64_t> cudnn_dx =
      BackwardData(placed_dy, w, d.dilation, d.stride, plan.pad, d.input);
  for (int64_t i = 0; i < d.input; ++i) {
    ASSERT_EQ(cudnn_dx[i], tf_dx[i]) << "backward-data input " << i;
  }
}

TEST(SymmetricPadding, ReproducesTfForEverySmallGeometry) {
  int planned = 0;
  for (int64_t input = 1; input <= 11; ++input) {
    for (int64_t filter = 1; filter <= 4; ++filter) {
      for (int64_t dilation = 1; dilation <= 3; ++dilation) {
        for (int64_t stride = 1; stride <= 4; ++stride) {
          for (int64_t before = 0; before <= 4; ++before) {
            for (int64_t after = 0; after <= 4; ++after) {
              const Dimension d{input, filter, dilation, stride, before, after};
              if (d.Output() < 1) continue;
              ExpectPlanReproducesTf(d);
              if (testing::Test::HasFatalFailure()) return;
              ++planned;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(planned, 10000);
}

// TF's SAME: pad_after = pad_before + 1 when the total is odd.
TEST(SymmetricPadding, SameWithAnOddTotalPadsOneStrideMoreAndCrops) {
  // input 5, filter 2, stride 1: output 5, pads 0 and 1. cuDNN pads 1 and
  // TF's output starts one entry in.
  SymmetricPadding plan = PlanSymmetricPadding(5, 2, 1, 1, 0, 5);
  EXPECT_EQ(plan.pad, 1);
  EXPECT_EQ(plan.crop_begin, 1);
  EXPECT_EQ(plan.cudnn_output, 6);
  // input 4, filter 3, stride 2: output 2, pads 0 and 1. Padding 1 would shift
  // the windows by half a stride; padding a whole stride (2) does not.
  plan = PlanSymmetricPadding(4, 3, 1, 2, 0, 2);
  EXPECT_EQ(plan.pad, 2);
  EXPECT_EQ(plan.crop_begin, 1);
  EXPECT_EQ(plan.cudnn_output, 3);
}

TEST(SymmetricPadding, SymmetricOrLargerLeadingPadsNeedNoCrop) {
  for (const auto& [before, after] : {std::pair<int64_t, int64_t>{1, 1}, {3, 1}, {2, 0}}) {
    const SymmetricPadding plan = PlanSymmetricPadding(7, 3, 1, 1, before, 7 + before + after - 2);
    EXPECT_EQ(plan.pad, before);
    EXPECT_EQ(plan.crop_begin, 0);
  }
}

// Explicit padding may be huge; the plan stays within a stride of it and
// never grows with it beyond that.
TEST(SymmetricPadding, HugeTrailingPadsCostAtMostAStride) {
  // input 1, filter 1, stride 1000, pads 0 and 1500: output 2.
  const SymmetricPadding plan = PlanSymmetricPadding(1, 1, 1, 1000, 0, 2);
  EXPECT_EQ(plan.pad, 1000);
  EXPECT_EQ(plan.crop_begin, 1);
  EXPECT_EQ(plan.cudnn_output, 3);
}

}  // namespace
}  // namespace convserve::cuda
