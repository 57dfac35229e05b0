// Conformance of CudaBackend (cuDNN on CUDA device 0) with ReferenceBackend,
// the oracle, on every case of tests/conformance/conformance_cases.h, whose
// comment lists the cases and the tolerances. cuDNN accumulates float32,
// float16 and bfloat16 in float, as oneDNN does, and computes float64 itself
// in double, so each dtype it computes is compared with that dtype's
// tolerance (CompareOptions::native).
//
// Cases CudaBackend does not compute (int32, empty tensors, bfloat16 before
// compute capability 8.0: Computes is false, the server routes them to a CPU
// pool) are skipped with the reason, and CudaConformanceCases counts them; so
// are specs cuDNN finds no engine for at run time (UNIMPLEMENTED, which the
// server hands to the next pool).
//
// Also: determinism (a request gives the same bytes every time, on any
// instance), float32 without TF32 unless the spec allows it, the device filter
// cache (no stale weights), and a device ordinal that cannot be used.
//
// Without a GPU (ListCudaDevices fails) every test skips with its one-line
// reason. Nothing touches CUDA before a test body runs, so --gtest_list_tests
// (ctest's test discovery) works on any machine.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "core/cuda/cuda_backend.h"
#include "core/cuda/cuda_devices.h"
#include "core/weight_cache.h"
#include "gtest/gtest.h"
#include "tests/conformance/conformance_cases.h"

namespace convserve::cuda {
namespace {

using conformance::AllCases;
using conformance::Buffer;
using conformance::CacheGeometries;
using conformance::CacheGeometry;
using conformance::Case;
using conformance::Compare;
using conformance::CompareOptions;
using conformance::Describe;
using conformance::DtypeLabel;
using conformance::Geometry;
using conformance::MustPrepare;
using conformance::Op;
using conformance::Prepare;
using conformance::Problem;

// The one-line reason this machine has no GPU to test on; empty when it has one.
const std::string& NoGpuReason() {
  static const std::string reason = [] {
    const absl::StatusOr<std::vector<CudaDevice>> devices = ListCudaDevices();
    if (!devices.ok()) return std::string(devices.status().message());
    if (devices->empty()) return std::string("no CUDA device to use");
    return std::string();
  }();
  return reason;
}

// Tests that need a GPU: skipped, with the reason, without one.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!NoGpuReason().empty()) GTEST_SKIP() << NoGpuReason();
  }
};

// CudaBackend computes every dtype it computes at all itself.
CompareOptions CudaCompare(size_t limit = 5) { return {.limit = limit, .backend = "cuda"}; }

bool Empty(const ConvSpec& spec) { return spec.InputElements() == 0 || spec.OutputElements() == 0; }

// Why CudaBackend does not compute `spec`, as a skip message says it.
std::string NotComputedReason(const ConvSpec& spec) {
  if (spec.dtype == DataType::kInt32) return "int32";
  if (Empty(spec)) return "an empty tensor";
  if (spec.dtype == DataType::kBFloat16) return "bfloat16 on this GPU";
  return "other";
}

// Runs `p` with `operands`: the result, or a test failure and nothing. With
// `allow_unimplemented`, UNIMPLEMENTED (cuDNN has no engine for the spec; the
// server hands it on) is no failure, only a note.
std::optional<Buffer> RunOn(CudaBackend& backend, const Problem& p, const Operands& operands,
                            bool allow_unimplemented = false) {
  Buffer out = p.NewResult();
  const absl::Status status = backend.Run(p.spec, operands, out.mutable_view());
  if (allow_unimplemented && absl::IsUnimplemented(status)) {
    std::cout << "not run: " << p.label << ": " << status << "\n";
    return std::nullopt;
  }
  EXPECT_TRUE(status.ok()) << status << " | " << p.label << " | " << p.spec.DebugString();
  if (!status.ok()) return std::nullopt;
  return out;
}

// Runs `p` and expects the reference's answer.
std::optional<Buffer> RunAndCheck(CudaBackend& backend, const Problem& p) {
  std::optional<Buffer> out = RunOn(backend, p, p.operands());
  if (out) {
    for (const std::string& e : Compare(p, *out, CudaCompare())) ADD_FAILURE() << e;
  }
  return out;
}

// The largest |got - expected| / M over the elements (M as in the tolerances).
double WorstRelativeError(const Problem& p, const Buffer& got) {
  double worst = 0;
  for (int64_t i = 0; i < p.expected.size(); ++i) {
    const double magnitude = std::max(p.magnitude.Get(i), 1e-30);
    worst = std::max(worst, std::abs(got.Get(i) - p.expected.Get(i)) / magnitude);
  }
  return worst;
}

// ---------------------------------------------------------------------------
// Every case.

class CudaConformance : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (!NoGpuReason().empty()) GTEST_SKIP() << NoGpuReason();
    // One instance for the suite, as a server worker serves spec after spec
    // (its plans, buffers and filter cache are reused across the cases).
    if (!backend_) backend_ = std::make_unique<CudaBackend>(CudaOptions{});
  }
  static void TearDownTestSuite() { backend_.reset(); }

  static inline std::unique_ptr<CudaBackend> backend_;
};

TEST_P(CudaConformance, MatchesReference) {
  const Case& c = GetParam();
  absl::StatusOr<Problem> problem = Prepare(c.geometry, c.dtype, c.seed);
  ASSERT_TRUE(problem.ok()) << problem.status() << " for " << Describe(c.geometry);
  Problem& p = *problem;
  p.label = c.name;
  CudaBackend& backend = *backend_;

  // What cuda_backend.h promises: int32 and empty tensors never, float32,
  // float16 and float64 always (these cases are far below cuDNN's int sizes),
  // bfloat16 where the GPU has it.
  const bool computes = backend.Computes(p.spec);
  if (c.dtype == DataType::kInt32 || Empty(p.spec)) {
    EXPECT_FALSE(computes) << p.spec.DebugString();
  } else if (c.dtype != DataType::kBFloat16) {
    EXPECT_TRUE(computes) << p.spec.DebugString();
  }
  if (!computes) {
    Buffer refused = p.NewResult();
    EXPECT_TRUE(
        absl::IsFailedPrecondition(backend.Run(p.spec, p.operands(), refused.mutable_view())));
    GTEST_SKIP() << "CudaBackend does not compute " << NotComputedReason(p.spec)
                 << " (the server routes it to a CPU pool)";
  }

  Buffer first = p.NewResult();
  const absl::Status status = backend.Run(p.spec, p.operands(), first.mutable_view());
  if (absl::IsUnimplemented(status)) {
    EXPECT_TRUE(first.bytes == p.NewResult().bytes) << "UNIMPLEMENTED after writing the result";
    GTEST_SKIP() << "cuDNN has no engine for it (the server hands it to the next pool): "
                 << status.message();
  }
  ASSERT_TRUE(status.ok()) << status << " | " << p.spec.DebugString();
  for (const std::string& e : Compare(p, first, CudaCompare())) ADD_FAILURE() << e;

  // Again, on the cached plan and device filter: the same bytes.
  Buffer second = p.NewResult();
  ASSERT_TRUE(backend.Run(p.spec, p.operands(), second.mutable_view()).ok());
  EXPECT_TRUE(first.bytes == second.bytes) << "second run differs: " << p.spec.DebugString();
}

INSTANTIATE_TEST_SUITE_P(All, CudaConformance, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

using CudaConformanceCases = CudaTest;

TEST_F(CudaConformanceCases, CountsTheCasesCudaComputes) {
  CudaBackend backend(CudaOptions{});
  std::map<std::string, int> skipped;  // by reason
  std::map<DataType, int> computed;
  int total = 0, computed_total = 0;
  for (const Case& c : AllCases()) {
    const absl::StatusOr<ConvSpec> spec = conformance::SpecOf(c.geometry, c.dtype);
    ASSERT_TRUE(spec.ok()) << spec.status() << " for " << c.name;
    ++total;
    if (backend.Computes(*spec)) {
      ++computed[c.dtype];
      ++computed_total;
    } else {
      ++skipped[NotComputedReason(*spec)];
    }
  }
  std::vector<std::string> by_dtype, by_reason;
  for (const auto& [dtype, n] : computed)
    by_dtype.push_back(absl::StrCat(DtypeLabel(dtype), " ", n));
  for (const auto& [reason, n] : skipped) by_reason.push_back(absl::StrCat(reason, " ", n));
  const std::string line = absl::StrCat("CudaBackend computes ", computed_total, " of ", total,
                                        " conformance cases (", absl::StrJoin(by_dtype, ", "),
                                        "); not computed, skipped: ", total - computed_total, " (",
                                        absl::StrJoin(by_reason, ", "), ")");
  std::cout << line << "\n";
  RecordProperty("computed", computed_total);
  RecordProperty("skipped", total - computed_total);
  EXPECT_EQ(skipped.count("other"), 0u) << line;
  EXPECT_GT(computed[DataType::kFloat32], 0) << line;
  EXPECT_GT(computed[DataType::kFloat16], 0) << line;
  EXPECT_GT(computed[DataType::kFloat64], 0) << line;
}

// ---------------------------------------------------------------------------
// Determinism: the same request gives the same bytes, run after run and on a
// fresh instance (the algorithm chosen per spec is deterministic).

std::vector<Geometry> DeterminismGeometries() {
  return {
      {.op = Op::kConv2D,
       .n = 2,
       .batch = {2},
       .spatial = {16, 16},
       .kernel = {3, 3},
       .in_channels = 32,
       .out_channels = 64,
       .bias = true,
       .activation = Activation::kRelu},
      // Backward data with overlapping windows: where atomics would show.
      {.op = Op::kConv2DTranspose,
       .n = 2,
       .batch = {2},
       .spatial = {16, 16},
       .kernel = {3, 3},
       .strides = {2, 2},
       .in_channels = 16,
       .out_channels = 32},
      {.op = Op::kDepthwise,
       .n = 2,
       .spatial = {15, 15},
       .kernel = {3, 3},
       .strides = {2, 2},
       .in_channels = 32,
       .out_channels = 2},
      {.op = Op::kSeparable,
       .n = 2,
       .spatial = {12, 12},
       .kernel = {3, 3},
       .in_channels = 16,
       .out_channels = 1,
       .pointwise_out = 32},
      {.op = Op::kConv3D,
       .n = 3,
       .spatial = {6, 8, 8},
       .kernel = {3, 3, 3},
       .in_channels = 8,
       .out_channels = 16,
       .channels_last = false},
  };
}

using CudaDeterminism = CudaTest;

TEST_F(CudaDeterminism, SameRequestSameBytes) {
  CudaBackend a(CudaOptions{}), b(CudaOptions{});
  uint32_t seed = 100;
  for (const Geometry& g : DeterminismGeometries()) {
    for (DataType dtype :
         {DataType::kFloat32, DataType::kFloat16, DataType::kBFloat16, DataType::kFloat64}) {
      const Problem p = MustPrepare(g, dtype, ++seed);
      if (!a.Computes(p.spec)) continue;  // bfloat16 before Ampere
      const std::optional<Buffer> first = RunOn(a, p, p.operands(), true);
      if (!first) continue;
      for (const std::string& e : Compare(p, *first, CudaCompare())) ADD_FAILURE() << e;
      const std::optional<Buffer> again = RunOn(a, p, p.operands());
      const std::optional<Buffer> elsewhere = RunOn(b, p, p.operands());
      if (!again || !elsewhere) continue;
      EXPECT_TRUE(first->bytes == again->bytes) << "second run differs: " << p.label;
      EXPECT_TRUE(first->bytes == elsewhere->bytes) << "another instance differs: " << p.label;
    }
  }
}

// ---------------------------------------------------------------------------
// float32: full precision (FMA math) unless the spec allows reduced precision.
// These shapes have short reductions (K = 16 and 144), where TF32's 10-bit
// operands would miss the float32 tolerance (1e-5 * M) by far.

using CudaFloat32 = CudaTest;

TEST_F(CudaFloat32, FullPrecisionUnlessReducedPrecisionIsAllowed) {
  const Geometry geometries[] = {
      {.op = Op::kConv2D,
       .n = 2,
       .batch = {4},
       .spatial = {32, 32},
       .kernel = {1, 1},
       .in_channels = 16,
       .out_channels = 64},
      {.op = Op::kConv2D,
       .n = 2,
       .batch = {2},
       .spatial = {16, 16},
       .kernel = {3, 3},
       .in_channels = 16,
       .out_channels = 32},
      {.op = Op::kConv2DTranspose,
       .n = 2,
       .batch = {2},
       .spatial = {16, 16},
       .kernel = {3, 3},
       .strides = {2, 2},
       .in_channels = 16,
       .out_channels = 16},
  };
  CudaBackend backend(CudaOptions{});
  uint32_t seed = 200;
  for (const Geometry& g : geometries) {
    Problem p = MustPrepare(g, DataType::kFloat32, ++seed);
    ASSERT_FALSE(p.spec.allow_reduced_precision);
    const std::optional<Buffer> full = RunAndCheck(backend, p);  // float32's tolerance
    if (!full) continue;
    std::cout << p.label << " " << Describe(g) << ": worst |error| / M "
              << WorstRelativeError(p, *full) << " in float32";

    // Allowed: TF32's tolerance (the same tensor-core math the server's
    // reduced-precision requests get), from a plan of its own.
    p.spec.allow_reduced_precision = true;
    const std::optional<Buffer> reduced = RunAndCheck(backend, p);
    if (reduced) {
      std::cout << ", " << WorstRelativeError(p, *reduced) << " with reduced precision allowed";
    }
    std::cout << "\n";
    // And the strict plan is still the strict one.
    p.spec.allow_reduced_precision = false;
    const std::optional<Buffer> again = RunOn(backend, p, p.operands());
    if (again) {
      EXPECT_TRUE(full->bytes == again->bytes) << p.label;
    }
  }
}

// ---------------------------------------------------------------------------
// The device filter cache: the same filter again gives the same bytes, and a
// different filter of the same shape gives its own result, never the cached
// one; with the filter's hash given (a registered filter) or computed.

uint64_t HashOf(const Buffer& b) {
  return ContentHash(
      absl::string_view(reinterpret_cast<const char*>(b.bytes.data()), b.bytes.size()));
}

// Seeds 11, 12, 13 and 11 again through one instance, each run twice.
void CheckNoStaleFilters(CudaBackend& backend, bool registered) {
  for (const Geometry& g : CacheGeometries()) {
    for (DataType dtype : {DataType::kFloat32, DataType::kBFloat16, DataType::kFloat16}) {
      for (uint32_t seed : {11u, 12u, 13u, 11u}) {
        Problem p = MustPrepare(g, dtype, seed);
        if (!backend.Computes(p.spec)) break;  // bfloat16 before Ampere
        p.label = absl::StrCat(p.label, registered ? " (hash given)" : " (hash computed)");
        Operands operands = p.operands();
        if (registered) {
          operands.filter_hash = HashOf(p.filter);
          if (p.spec.pointwise_out_channels > 0)
            operands.pointwise_filter_hash = HashOf(p.pointwise);
        }
        const std::optional<Buffer> first = RunOn(backend, p, operands);
        if (!first) continue;
        for (const std::string& e : Compare(p, *first, CudaCompare())) ADD_FAILURE() << e;
        const std::optional<Buffer> second = RunOn(backend, p, operands);
        if (second) {
          EXPECT_TRUE(first->bytes == second->bytes) << "second run differs: " << p.label;
        }
      }
    }
  }
}

using CudaWeightCache = CudaTest;

TEST_F(CudaWeightCache, NewFilterNeverGetsStaleWeights) {
  for (bool registered : {false, true}) {
    CudaBackend backend(CudaOptions{});
    CheckNoStaleFilters(backend, registered);
    EXPECT_GT(backend.DeviceBytes(), 0);
  }
}

TEST_F(CudaWeightCache, BudgetTooSmallForAnyFilterStillComputes) {
  CudaBackend backend(CudaOptions{.weight_cache_bytes = 1});
  CheckNoStaleFilters(backend, true);
}

// ---------------------------------------------------------------------------
// The device.

using CudaBackendDevice = CudaTest;

TEST_F(CudaBackendDevice, DescribesDeviceZero) {
  CudaBackend backend(CudaOptions{});
  const BackendInfo info = backend.Describe();
  EXPECT_EQ(info.name, "cuda");
  EXPECT_EQ(info.device_id, "cuda:0");
  const absl::StatusOr<std::vector<CudaDevice>> devices = ListCudaDevices();
  ASSERT_TRUE(devices.ok());
  EXPECT_NE(info.device.find(devices->front().name), std::string::npos) << info.device;
  for (DataType dtype : {DataType::kFloat32, DataType::kFloat16, DataType::kFloat64}) {
    EXPECT_NE(std::find(info.native_dtypes.begin(), info.native_dtypes.end(), dtype),
              info.native_dtypes.end())
        << DtypeLabel(dtype);
  }
  EXPECT_EQ(std::find(info.native_dtypes.begin(), info.native_dtypes.end(), DataType::kInt32),
            info.native_dtypes.end());
}

TEST_F(CudaBackendDevice, UnusableOrdinalIsUnavailable) {
  const Problem p = MustPrepare(CacheGeometry(), DataType::kFloat32, 5);
  for (int ordinal : {9999, -1}) {
    CudaBackend backend(CudaOptions{.device = ordinal});
    EXPECT_EQ(backend.Describe().device_id, absl::StrCat("cuda:", ordinal));
    for (int attempt = 0; attempt < 2; ++attempt) {
      Buffer out = p.NewResult();
      const absl::Status status = backend.Run(p.spec, p.operands(), out.mutable_view());
      EXPECT_TRUE(absl::IsUnavailable(status)) << ordinal << ": " << status;
      EXPECT_FALSE(status.message().empty());
      EXPECT_TRUE(out.bytes == p.NewResult().bytes) << "wrote a result for device " << ordinal;
    }
    EXPECT_EQ(backend.DeviceBytes(), 0);
  }
}

}  // namespace
}  // namespace convserve::cuda
