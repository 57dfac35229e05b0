// ComputeWindow: TensorFlow's output size and padding of one spatial dimension
// (GetWindowedOutputSizeVerbose), TF_SEMANTICS.md section 1.
#include "core/window.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convserve {
namespace {

using ::testing::StartsWith;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

// A window that must succeed; fails the test (and returns zeros) otherwise.
Window Ok(int64_t in, int64_t k, int64_t s, int64_t d, Padding padding, int64_t pb = 0,
          int64_t pa = 0) {
  absl::StatusOr<Window> w = ComputeWindow(in, k, s, d, padding, pb, pa);
  EXPECT_TRUE(w.ok()) << "in=" << in << " k=" << k << " s=" << s << " d=" << d << ": "
                      << w.status();
  return w.ok() ? *w : Window{};
}

// The message of a window that must fail with INVALID_ARGUMENT.
std::string Error(int64_t in, int64_t k, int64_t s, int64_t d, Padding padding, int64_t pb = 0,
                  int64_t pa = 0) {
  absl::StatusOr<Window> w = ComputeWindow(in, k, s, d, padding, pb, pa);
  EXPECT_FALSE(w.ok()) << "in=" << in << " k=" << k << " s=" << s << " d=" << d
                       << " unexpectedly gave output " << (w.ok() ? w->output_size : 0);
  if (w.ok()) return "";
  EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument) << w.status();
  return std::string(w.status().message());
}

// For extreme arguments: either INVALID_ARGUMENT or exactly `expected`.
void ExpectErrorOr(const absl::StatusOr<Window>& w, int64_t expected_size, int64_t expected_before,
                   int64_t expected_after) {
  if (!w.ok()) {
    EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument) << w.status();
    return;
  }
  EXPECT_EQ(w->output_size, expected_size);
  EXPECT_EQ(w->pad_before, expected_before);
  EXPECT_EQ(w->pad_after, expected_after);
}

void ExpectWindow(const Window& w, int64_t size, int64_t before, int64_t after) {
  EXPECT_EQ(w.output_size, size);
  EXPECT_EQ(w.pad_before, before);
  EXPECT_EQ(w.pad_after, after);
}

// ---------------------------------------------------------------- SAME

TEST(Window, SamePadsOddPixelAtEnd) {
  // The seed's example: pad_along_height 5 -> 2 at the top, 3 at the bottom.
  // in=10, k=7, s=2: out = 5, pad = (5-1)*2 + 7 - 10 = 5.
  ExpectWindow(Ok(10, 7, 2, 1, Padding::kSame), 5, 2, 3);
  // in=5, k=6, s=1: out = 5, pad = 4 + 6 - 5 = 5.
  ExpectWindow(Ok(5, 6, 1, 1, Padding::kSame), 5, 2, 3);
  // pad 1 -> 0 before, 1 after.
  ExpectWindow(Ok(6, 3, 2, 1, Padding::kSame), 3, 0, 1);
}

TEST(Window, SameEvenPaddingIsSymmetric) {
  ExpectWindow(Ok(5, 3, 1, 1, Padding::kSame), 5, 1, 1);
  ExpectWindow(Ok(7, 5, 1, 1, Padding::kSame), 7, 2, 2);
}

TEST(Window, SameOutputIsCeilOfInputOverStride) {
  EXPECT_EQ(Ok(7, 3, 2, 1, Padding::kSame).output_size, 4);
  EXPECT_EQ(Ok(8, 3, 2, 1, Padding::kSame).output_size, 4);
  EXPECT_EQ(Ok(9, 3, 2, 1, Padding::kSame).output_size, 5);
  EXPECT_EQ(Ok(1, 3, 5, 1, Padding::kSame).output_size, 1);
  EXPECT_EQ(Ok(10, 1, 3, 1, Padding::kSame).output_size, 4);
}

TEST(Window, SameIndependentOfFilterSizeAndDilation) {
  for (int64_t in = 0; in <= 12; ++in) {
    for (int64_t s = 1; s <= 4; ++s) {
      const int64_t expected_out = (in + s - 1) / s;
      for (int64_t k = 1; k <= 7; ++k) {
        for (int64_t d = 1; d <= 4; ++d) {
          SCOPED_TRACE(testing::Message() << "in=" << in << " k=" << k << " s=" << s << " d=" << d);
          const Window w = Ok(in, k, s, d, Padding::kSame);
          EXPECT_EQ(w.output_size, expected_out);
          const int64_t eff = (k - 1) * d + 1;
          const int64_t total = std::max<int64_t>(0, (expected_out - 1) * s + eff - in);
          EXPECT_EQ(w.pad_before, total / 2);
          EXPECT_EQ(w.pad_after, total - total / 2);
          EXPECT_GE(w.pad_after, w.pad_before);
          EXPECT_LE(w.pad_after - w.pad_before, 1);
        }
      }
    }
  }
}

TEST(Window, SameNegativePadTotalClampsToZero) {
  // in=10, k=1, s=4: out 3, (3-1)*4 + 1 - 10 = -1 -> no padding.
  ExpectWindow(Ok(10, 1, 4, 1, Padding::kSame), 3, 0, 0);
  ExpectWindow(Ok(10, 1, 3, 1, Padding::kSame), 4, 0, 0);
}

TEST(Window, SameUsesDilatedFilterForPadding) {
  // k=3, d=2: eff 5, in 10, s 1: pad 4 -> 2/2.
  ExpectWindow(Ok(10, 3, 1, 2, Padding::kSame), 10, 2, 2);
  // k=2, d=3: eff 4, pad 3 -> 1/2.
  ExpectWindow(Ok(10, 2, 1, 3, Padding::kSame), 10, 1, 2);
}

TEST(Window, SameEmptyInputGivesEmptyOutput) {
  // As in TF: out 0, pad = max(0, -s + eff - 0).
  ExpectWindow(Ok(0, 3, 1, 1, Padding::kSame), 0, 1, 1);
  ExpectWindow(Ok(0, 1, 1, 1, Padding::kSame), 0, 0, 0);
}

TEST(Window, SameIgnoresExplicitPadArguments) {
  ExpectWindow(Ok(5, 3, 1, 1, Padding::kSame, 7, 9), 5, 1, 1);
}

// ---------------------------------------------------------------- VALID

TEST(Window, ValidOutputSizes) {
  ExpectWindow(Ok(10, 3, 1, 1, Padding::kValid), 8, 0, 0);
  ExpectWindow(Ok(10, 3, 2, 1, Padding::kValid), 4, 0, 0);  // ceil(8/2)
  ExpectWindow(Ok(10, 3, 3, 1, Padding::kValid), 3, 0, 0);  // ceil(8/3)
  ExpectWindow(Ok(10, 10, 1, 1, Padding::kValid), 1, 0, 0);
  ExpectWindow(Ok(10, 1, 4, 1, Padding::kValid), 3, 0, 0);
}

TEST(Window, ValidMatchesSeedFormula) {
  // out = ceil((in - eff + 1) / s) whenever in >= eff.
  for (int64_t in = 1; in <= 15; ++in) {
    for (int64_t k = 1; k <= 5; ++k) {
      for (int64_t s = 1; s <= 4; ++s) {
        for (int64_t d = 1; d <= 3; ++d) {
          const int64_t eff = (k - 1) * d + 1;
          if (eff > in) continue;
          SCOPED_TRACE(testing::Message() << "in=" << in << " k=" << k << " s=" << s << " d=" << d);
          const int64_t span = in - eff + 1;
          ExpectWindow(Ok(in, k, s, d, Padding::kValid), (span + s - 1) / s, 0, 0);
        }
      }
    }
  }
}

TEST(Window, ValidFilterSlightlyLargerThanInputGivesEmptyOutput) {
  ExpectWindow(Ok(20, 21, 1, 1, Padding::kValid), 0, 0, 0);
  // (20 - 22 + 2) / 2 = 0.
  ExpectWindow(Ok(20, 22, 2, 1, Padding::kValid), 0, 0, 0);
  // (20 - 23 + 2) / 2 = -1 / 2, truncated toward zero: 0, not an error.
  ExpectWindow(Ok(20, 23, 2, 1, Padding::kValid), 0, 0, 0);
}

TEST(Window, ValidNegativeOutputMessage) {
  EXPECT_EQ(Error(3, 9, 1, 1, Padding::kValid),
            "Computed output size would be negative: -5 [input_size: 3, "
            "effective_filter_size: 9, stride: 1]");
  // (20 - 24 + 2) / 2 = -1.
  EXPECT_EQ(Error(20, 24, 2, 1, Padding::kValid),
            "Computed output size would be negative: -1 [input_size: 20, "
            "effective_filter_size: 24, stride: 2]");
  // (3 - 9 + 2) / 2 = -2.
  EXPECT_EQ(Error(3, 9, 2, 1, Padding::kValid),
            "Computed output size would be negative: -2 [input_size: 3, "
            "effective_filter_size: 9, stride: 2]");
}

TEST(Window, EmptyInputValid) {
  // k = 1: (0 - 1 + 1) / 1 = 0.
  ExpectWindow(Ok(0, 1, 1, 1, Padding::kValid), 0, 0, 0);
  EXPECT_EQ(Error(0, 3, 1, 1, Padding::kValid),
            "Computed output size would be negative: -2 [input_size: 0, "
            "effective_filter_size: 3, stride: 1]");
}

TEST(Window, DilationEffectiveFilterSize) {
  // k=3, d=2: eff 5; in 10 -> 6.
  ExpectWindow(Ok(10, 3, 1, 2, Padding::kValid), 6, 0, 0);
  // k=1: dilation has no effect.
  ExpectWindow(Ok(10, 1, 1, 7, Padding::kValid), 10, 0, 0);
  // k=3, d=3: eff 7 > 4 -> (4 - 7 + 1) = -2.
  EXPECT_EQ(Error(4, 3, 1, 3, Padding::kValid),
            "Computed output size would be negative: -2 [input_size: 4, "
            "effective_filter_size: 7, stride: 1]");
  // Exactly fits: in == eff -> 1.
  ExpectWindow(Ok(7, 3, 1, 3, Padding::kValid), 1, 0, 0);
}

TEST(Window, ValidIgnoresExplicitPadArguments) {
  ExpectWindow(Ok(10, 3, 1, 1, Padding::kValid, 4, 4), 8, 0, 0);
}

// ---------------------------------------------------------------- EXPLICIT

TEST(Window, ExplicitUsesGivenPads) {
  // (5 + 1 + 1 - 3 + 2) / 2 = 3.
  ExpectWindow(Ok(5, 3, 2, 1, Padding::kExplicit, 1, 1), 3, 1, 1);
  // Asymmetric: (5 + 0 + 3 - 3 + 1) / 1 = 6.
  ExpectWindow(Ok(5, 3, 1, 1, Padding::kExplicit, 0, 3), 6, 0, 3);
  // Zero pads behave like VALID.
  ExpectWindow(Ok(10, 3, 2, 1, Padding::kExplicit, 0, 0), 4, 0, 0);
  // Pads larger than the filter are allowed: (2 + 5 + 5 - 3 + 1) = 10.
  ExpectWindow(Ok(2, 3, 1, 1, Padding::kExplicit, 5, 5), 10, 5, 5);
}

TEST(Window, ExplicitWithDilation) {
  // eff 5: (6 + 2 + 2 - 5 + 1) = 6.
  ExpectWindow(Ok(6, 3, 1, 2, Padding::kExplicit, 2, 2), 6, 2, 2);
}

TEST(Window, ExplicitNegativeOutputMessage) {
  // (1 + 1 + 1 - 5 + 1) / 1 = -1.
  EXPECT_EQ(Error(1, 5, 1, 1, Padding::kExplicit, 1, 1),
            "Computed output size would be negative: -1 [input_size: 1, "
            "effective_filter_size: 5, stride: 1]");
}

// ---------------------------------------------------------------- arguments

TEST(Window, StrideBelowOneMessage) {
  EXPECT_EQ(Error(5, 3, 0, 1, Padding::kSame), "Stride must be > 0, but got 0");
  EXPECT_EQ(Error(5, 3, -2, 1, Padding::kValid), "Stride must be > 0, but got -2");
  EXPECT_EQ(Error(5, 3, kMin, 1, Padding::kExplicit),
            "Stride must be > 0, but got -9223372036854775808");
}

TEST(Window, DilationBelowOneMessage) {
  EXPECT_EQ(Error(5, 3, 1, 0, Padding::kSame), "Dilation rate must be >= 1, but got 0");
  EXPECT_EQ(Error(5, 3, 1, -4, Padding::kValid), "Dilation rate must be >= 1, but got -4");
}

TEST(Window, StrideCheckedBeforeDilation) {
  EXPECT_EQ(Error(5, 3, 0, 0, Padding::kSame), "Stride must be > 0, but got 0");
}

TEST(Window, UnspecifiedPaddingIsAnError) {
  EXPECT_FALSE(Error(5, 3, 1, 1, Padding::kUnspecified).empty());
}

// ---------------------------------------------------------------- int64 extremes
// Every call must either fail with INVALID_ARGUMENT or give the mathematically
// correct value; none may overflow (run under -fsanitize=undefined to check).

TEST(Window, HugeStride) {
  // SAME: ceil(10 / max) = 1, pad max(0, 0 + 3 - 10) = 0.
  ExpectWindow(Ok(10, 3, kMax, 1, Padding::kSame), 1, 0, 0);
  // VALID: ceil((10 - 3 + 1) / max) = 1.
  ExpectErrorOr(ComputeWindow(10, 3, kMax, 1, Padding::kValid), 1, 0, 0);
  ExpectErrorOr(ComputeWindow(kMax, 1, kMax, 1, Padding::kValid), 1, 0, 0);
  ExpectErrorOr(ComputeWindow(kMax, 1, kMax, 1, Padding::kSame), 1, 0, 0);
  // Empty input: out 0, pad max(0, -max + 1 - 0) = 0.
  ExpectErrorOr(ComputeWindow(0, 1, kMax, 1, Padding::kSame), 0, 0, 0);
  ExpectErrorOr(ComputeWindow(0, 5, kMax, 1, Padding::kSame), 0, 0, 0);
}

TEST(Window, HugeInput) {
  ExpectWindow(Ok(kMax, 1, 1, 1, Padding::kValid), kMax, 0, 0);
  ExpectWindow(Ok(kMax, 1, 1, 1, Padding::kSame), kMax, 0, 0);
  // pad_total = (max - 1) + 3 - max = 2.
  ExpectErrorOr(ComputeWindow(kMax, 3, 1, 1, Padding::kSame), kMax, 1, 1);
  ExpectErrorOr(ComputeWindow(kMax, 3, 1, 1, Padding::kValid), kMax - 2, 0, 0);
  // ceil(max / 2) = 2^62.
  ExpectErrorOr(ComputeWindow(kMax, 2, 2, 1, Padding::kSame), int64_t{1} << 62, 0, 1);
}

TEST(Window, HugeFilter) {
  // eff = max: (10 - max + 1) / 1 < 0.
  EXPECT_THAT(Error(10, kMax, 1, 1, Padding::kValid),
              StartsWith("Computed output size would be negative: "));
  ExpectErrorOr(ComputeWindow(10, kMax, 1, 1, Padding::kSame), 10, (kMax - 1) / 2,
                kMax - 1 - (kMax - 1) / 2);
  ExpectErrorOr(ComputeWindow(kMax, kMax, 1, 1, Padding::kValid), 1, 0, 0);
}

TEST(Window, HugeDilation) {
  // eff = (2 - 1) * max + 1 does not fit in int64.
  EXPECT_FALSE(Error(10, 2, 1, kMax, Padding::kValid).empty());
  EXPECT_FALSE(Error(10, 2, 1, kMax, Padding::kSame).empty());
  EXPECT_FALSE(Error(10, 3, 1, kMax, Padding::kValid).empty());
  EXPECT_FALSE(Error(10, kMax, 1, kMax, Padding::kSame).empty());
  // k = 1: the dilation does not matter.
  ExpectWindow(Ok(10, 1, 1, kMax, Padding::kValid), 10, 0, 0);
  ExpectWindow(Ok(10, 1, 1, kMax, Padding::kSame), 10, 0, 0);
  // eff = max - 1 + 1 = max exactly.
  EXPECT_THAT(Error(10, 2, 1, kMax - 1, Padding::kValid),
              StartsWith("Computed output size would be negative: "));
}

TEST(Window, HugeExplicitPads) {
  // (5 + max + 0 - 3 + 1) overflows the intermediate; out would be > max.
  EXPECT_FALSE(Error(5, 3, 1, 1, Padding::kExplicit, kMax, 0).empty());
  EXPECT_FALSE(Error(5, 3, 1, 1, Padding::kExplicit, kMax, kMax).empty());
  EXPECT_FALSE(Error(kMax, 1, 1, 1, Padding::kExplicit, 1, 0).empty());
  // Large but representable: (0 + (max-1) + 0 - 1 + 1) / 1 = max - 1.
  ExpectErrorOr(ComputeWindow(0, 1, 1, 1, Padding::kExplicit, kMax - 1, 0), kMax - 1, kMax - 1, 0);
  // With a huge stride the result is small: (5 + max - 3 + max) / max = 2 or an error.
  ExpectErrorOr(ComputeWindow(5, 3, kMax, 1, Padding::kExplicit, kMax, 0), 2, kMax, 0);
}

TEST(Window, NegativeAndDegenerateArgumentsNeverOverflow) {
  // Shapes are validated before ComputeWindow is called, but the function
  // itself must stay defined for every int64 argument.
  const int64_t values[] = {kMin, kMin + 1, -3, -1, 0, 1, 2, 3, kMax - 1, kMax};
  const Padding paddings[] = {Padding::kSame, Padding::kValid, Padding::kExplicit};
  for (int64_t in : values) {
    for (int64_t k : values) {
      for (int64_t s : {int64_t{1}, int64_t{2}, kMax}) {
        for (int64_t d : {int64_t{1}, int64_t{2}, kMax}) {
          for (Padding p : paddings) {
            for (int64_t pad : {int64_t{0}, kMax}) {
              absl::StatusOr<Window> w = ComputeWindow(in, k, s, d, p, pad, pad);
              if (w.ok()) {
                EXPECT_GE(w->output_size, 0);
              } else {
                EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
              }
            }
          }
        }
      }
    }
  }
}

TEST(Window, SameNegativeInputMatchesTensorFlow) {
  // TF: out = (in + s - 1) / s = (-3 + 1) / 2 = -1 -> negative output error.
  EXPECT_THAT(Error(-3, 1, 2, 1, Padding::kSame),
              StartsWith("Computed output size would be negative: -1 "));
  EXPECT_THAT(Error(-1, 1, 1, 1, Padding::kSame),
              StartsWith("Computed output size would be negative: -1 "));
  // (-4 + 1) / 2 truncates to -1 in TF's arithmetic.
  EXPECT_EQ(Error(-4, 1, 2, 1, Padding::kSame),
            "Computed output size would be negative: -1 [input_size: -4, "
            "effective_filter_size: 1, stride: 2]");
}

}  // namespace
}  // namespace convserve
