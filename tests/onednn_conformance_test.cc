// Conformance of OneDnnBackend with ReferenceBackend, the oracle, on every
// case of tests/conformance/conformance_cases.h (whose comment lists the cases
// and the tolerances), plus oneDNN's shared weight cache and workers running
// concurrently on it.
//
// oneDNN computes float32, bfloat16 and float16 itself (their tolerances
// apply); float64 and int32 it hands to the reference (OneDnnBackend::
// ComputesDtype is false), so those results must be identical, and specs with
// an empty tensor the server routes to the reference pool.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/onednn/onednn_backend.h"
#include "core/reference/reference_backend.h"
#include "core/weight_cache.h"
#include "gtest/gtest.h"
#include "tests/conformance/conformance_cases.h"

namespace convserve {
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
using conformance::kAllOps;
using conformance::MustPrepare;
using conformance::Op;
using conformance::OpLabel;
using conformance::Prepare;
using conformance::Problem;

OneDnnOptions Options(std::shared_ptr<WeightCache> cache, int threads = 2) {
  return OneDnnOptions{.threads = threads, .weight_cache = std::move(cache)};
}

// How to compare a result of `dtype`: with its tolerance where oneDNN computes
// it, identical where OneDnnBackend hands it to the reference.
CompareOptions OneDnnCompare(DataType dtype, size_t limit = 5) {
  return {.native = OneDnnBackend::ComputesDtype(dtype), .limit = limit, .backend = "onednn"};
}

// Runs `p` on `backend` and expects the reference's answer.
void RunAndCheck(OneDnnBackend& backend, const Problem& p) {
  conformance::RunAndCheck(backend, p, OneDnnCompare(p.spec.dtype));
}

// ---------------------------------------------------------------------------
// The parameterised conformance test.

class OneDnnConformance : public ::testing::TestWithParam<Case> {};

TEST_P(OneDnnConformance, MatchesReference) {
  const Case& c = GetParam();
  absl::StatusOr<Problem> problem = Prepare(c.geometry, c.dtype, c.seed);
  ASSERT_TRUE(problem.ok()) << problem.status() << " for " << Describe(c.geometry);
  Problem& p = *problem;
  p.label = c.name;

  auto cache = std::make_shared<WeightCache>(int64_t{64} << 20);
  OneDnnBackend backend(Options(cache));
  const bool empty = p.spec.InputElements() == 0 || p.spec.OutputElements() == 0;
  const bool on_onednn = OneDnnBackend::ComputesDtype(c.dtype) && !empty;
  EXPECT_EQ(backend.Computes(p.spec), on_onednn) << p.spec.DebugString();
  // What oneDNN does not compute, the server routes to the reference pool.
  ReferenceBackend reference;
  Backend& runner = on_onednn ? static_cast<Backend&>(backend) : reference;
  if (!on_onednn) {
    Buffer refused = p.NewResult();
    EXPECT_TRUE(
        absl::IsFailedPrecondition(backend.Run(p.spec, p.operands(), refused.mutable_view())));
  }

  Buffer first = p.NewResult();
  ASSERT_TRUE(runner.Run(p.spec, p.operands(), first.mutable_view()).ok());
  for (const std::string& e : Compare(p, first, OneDnnCompare(c.dtype))) {
    ADD_FAILURE() << e;
  }
  const int64_t stages = p.spec.pointwise_out_channels > 0 ? 2 : 1;
  EXPECT_EQ(cache->entries(), on_onednn ? stages : 0);

  // Again, on the cached plan and weights: the same bytes, no new cache entry.
  Buffer second = p.NewResult();
  ASSERT_TRUE(runner.Run(p.spec, p.operands(), second.mutable_view()).ok());
  EXPECT_TRUE(first.bytes == second.bytes) << "second run differs: " << p.spec.DebugString();
  EXPECT_EQ(cache->entries(), on_onednn ? stages : 0);
}

INSTANTIATE_TEST_SUITE_P(All, OneDnnConformance, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

TEST(OneDnnConformanceCases, CoverEveryOpDtypeAndLayout) {
  // Guards the generator: every op with each of its dtypes in each of its layouts.
  const std::vector<Case> cases = AllCases();
  for (Op op : kAllOps) {
    for (bool channels_last : {true, false}) {
      if (!channels_last && !conformance::HasDataFormat(op)) continue;
      for (DataType dtype :
           {DataType::kFloat32, DataType::kBFloat16, DataType::kFloat16, DataType::kFloat64}) {
        const bool found = std::any_of(cases.begin(), cases.end(), [&](const Case& c) {
          return c.geometry.op == op && c.dtype == dtype &&
                 c.geometry.channels_last == channels_last;
        });
        EXPECT_TRUE(found) << OpLabel(op) << " " << DtypeLabel(dtype) << " " << channels_last;
      }
    }
  }
}

TEST(OneDnnConformanceCases, CoverTransposedExplicitAndSpatialOnlyInEveryLayout) {
  // Guards the generator: TF 2's forms of the transposed ops in both layouts.
  const std::vector<Case> cases = AllCases();
  auto has = [&](Op op, bool channels_last, auto predicate) {
    return std::any_of(cases.begin(), cases.end(), [&](const Case& c) {
      return c.geometry.op == op && c.geometry.channels_last == channels_last &&
             predicate(c.geometry);
    });
  };
  auto explicit_pads = [](const Geometry& g) { return g.padding == Padding::kExplicit; };
  auto spatial_only = [](const Geometry& g) { return g.spatial_output_shape; };
  for (bool channels_last : {true, false}) {
    EXPECT_TRUE(has(Op::kConv2DTranspose, channels_last, explicit_pads)) << channels_last;
    EXPECT_TRUE(has(Op::kConvTranspose, channels_last, explicit_pads)) << channels_last;
    EXPECT_TRUE(has(Op::kConv2DTranspose, channels_last, spatial_only)) << channels_last;
    EXPECT_TRUE(has(Op::kConv1DTranspose, channels_last, spatial_only)) << channels_last;
    EXPECT_TRUE(has(Op::kConv1DTranspose, channels_last, [](const Geometry&) { return true; }));
  }
}

// ---------------------------------------------------------------------------
// The weight cache.

// The calling thread's OpenMP team size after running `g` on a 2-thread backend.
int ThreadsUsedFor(const Geometry& g) {
  OneDnnBackend backend(Options(nullptr, /*threads=*/2));
  const Problem p = MustPrepare(g, DataType::kFloat32, 1);
  RunAndCheck(backend, p);
  return omp_get_max_threads();
}

TEST(OneDnnThreads, ConvolutionsUnderOneMegaflopRunOnTheCallingThreadAlone) {
  Geometry small{.spatial = {14, 14}, .kernel = {3, 3}, .in_channels = 16, .out_channels = 16};
  Geometry large = small;
  large.in_channels = large.out_channels = 32;
  ASSERT_LT(MustPrepare(small, DataType::kFloat32, 1).spec.Flops(), 1e6);
  ASSERT_GT(MustPrepare(large, DataType::kFloat32, 1).spec.Flops(), 1e6);
  EXPECT_EQ(ThreadsUsedFor(small), 1);
  EXPECT_EQ(ThreadsUsedFor(large), 2);
  // What Threads() reports is what Run used.
  OneDnnBackend backend(Options(nullptr, /*threads=*/2));
  EXPECT_EQ(backend.Threads(MustPrepare(small, DataType::kFloat32, 1).spec), 1);
  EXPECT_EQ(backend.Threads(MustPrepare(large, DataType::kFloat32, 1).spec), 2);
}

TEST(OneDnnWeightCache, SecondRunHitsAndNewFilterAddsEntry) {
  auto cache = std::make_shared<WeightCache>(int64_t{64} << 20);
  OneDnnBackend backend(Options(cache));
  const Problem a = MustPrepare(CacheGeometry(), DataType::kFloat32, 1);
  const Problem b = MustPrepare(CacheGeometry(), DataType::kFloat32, 2);
  ASSERT_EQ(a.spec, b.spec);
  ASSERT_FALSE(a.filter.bytes == b.filter.bytes);

  RunAndCheck(backend, a);
  EXPECT_EQ(cache->entries(), 1);
  const int64_t bytes = cache->bytes();
  EXPECT_GT(bytes, 0);
  RunAndCheck(backend, a);
  EXPECT_EQ(cache->entries(), 1);
  EXPECT_EQ(cache->bytes(), bytes);

  // Same spec, different filter: a new entry and b's answer, not a's.
  RunAndCheck(backend, b);
  EXPECT_EQ(cache->entries(), 2);
  RunAndCheck(backend, a);
  RunAndCheck(backend, b);
  EXPECT_EQ(cache->entries(), 2);
}

TEST(OneDnnWeightCache, NewFilterNeverGetsStaleWeights) {
  // Per dtype and path (forward, separable's two stages, transposed), with the
  // cache and without it.
  const std::vector<Geometry> geometries = CacheGeometries();
  for (bool cached : {true, false}) {
    for (const Geometry& g : geometries) {
      for (DataType dtype : {DataType::kFloat32, DataType::kBFloat16, DataType::kFloat16}) {
        auto cache = cached ? std::make_shared<WeightCache>(int64_t{64} << 20) : nullptr;
        OneDnnBackend backend(Options(cache));
        for (uint32_t seed : {11u, 12u, 13u, 11u}) {
          RunAndCheck(backend, MustPrepare(g, dtype, seed));
        }
        if (cached) {
          const int64_t stages = g.op == Op::kSeparable ? 2 : 1;
          EXPECT_EQ(cache->entries(), 3 * stages) << OpLabel(g.op) << " " << DtypeLabel(dtype);
        }
      }
    }
  }
}

TEST(OneDnnWeightCache, SeparableStoresBothStages) {
  auto cache = std::make_shared<WeightCache>(int64_t{64} << 20);
  OneDnnBackend backend(Options(cache));
  RunAndCheck(backend, MustPrepare({.op = Op::kSeparable,
                                    .n = 2,
                                    .spatial = {5, 5},
                                    .kernel = {3, 3},
                                    .in_channels = 4,
                                    .out_channels = 2,
                                    .pointwise_out = 6,
                                    .pointwise_groups = 2},
                                   DataType::kFloat32, 3));
  EXPECT_EQ(cache->entries(), 2);
}

// The key under which OneDnnBackend stores the reordered filter of p's first stage.
WeightKey FilterKey(const Problem& p) {
  const absl::string_view bytes(reinterpret_cast<const char*>(p.filter.bytes.data()),
                                p.filter.bytes.size());
  return WeightKey{ContentHash(bytes), static_cast<int64_t>(bytes.size()), p.spec, 0};
}

TEST(OneDnnWeightCache, TinyBudgetEvictsLeastRecentlyUsed) {
  const Problem a = MustPrepare(CacheGeometry(), DataType::kFloat32, 21);
  const Problem b = MustPrepare(CacheGeometry(), DataType::kFloat32, 22);
  const Problem c = MustPrepare(CacheGeometry(), DataType::kFloat32, 23);
  int64_t entry_bytes = 0;
  {
    auto probe = std::make_shared<WeightCache>(int64_t{64} << 20);
    OneDnnBackend backend(Options(probe));
    RunAndCheck(backend, a);
    entry_bytes = probe->bytes();
    EXPECT_NE(probe->Find(FilterKey(a)), nullptr);
  }
  ASSERT_GT(entry_bytes, 0);
  // Room for two entries, not three.
  const int64_t budget = 2 * entry_bytes + entry_bytes / 2;
  auto cache = std::make_shared<WeightCache>(budget);
  OneDnnBackend backend(Options(cache));
  RunAndCheck(backend, a);
  RunAndCheck(backend, b);
  EXPECT_EQ(cache->entries(), 2);
  RunAndCheck(backend, a);  // a is now the most recently used
  RunAndCheck(backend, c);  // evicts b
  EXPECT_EQ(cache->entries(), 2);
  EXPECT_LE(cache->bytes(), budget);
  EXPECT_EQ(cache->Find(FilterKey(b)), nullptr);
  EXPECT_NE(cache->Find(FilterKey(a)), nullptr);
  EXPECT_NE(cache->Find(FilterKey(c)), nullptr);  // now LRU order: c, a
  RunAndCheck(backend, b);                        // evicts a
  EXPECT_EQ(cache->Find(FilterKey(a)), nullptr);
  EXPECT_NE(cache->Find(FilterKey(b)), nullptr);
  EXPECT_NE(cache->Find(FilterKey(c)), nullptr);
}

TEST(OneDnnWeightCache, ValueLargerThanBudgetIsNotStored) {
  auto cache = std::make_shared<WeightCache>(16);
  OneDnnBackend backend(Options(cache));
  const Problem a = MustPrepare(CacheGeometry(), DataType::kFloat32, 31);
  RunAndCheck(backend, a);
  RunAndCheck(backend, a);
  EXPECT_EQ(cache->entries(), 0);
  EXPECT_EQ(cache->bytes(), 0);
}

WeightKey Key(uint64_t hash) {
  WeightKey key;
  key.content_hash = hash;
  key.content_bytes = 100;
  return key;
}

TEST(WeightCache, LruOrderAndBudget) {
  WeightCache cache(250);
  auto value = [] { return std::make_shared<const int>(0); };
  cache.Insert(Key(1), value(), 100);
  cache.Insert(Key(2), value(), 100);
  EXPECT_EQ(cache.entries(), 2);
  EXPECT_NE(cache.Find(Key(1)), nullptr);  // 1 becomes the most recently used
  cache.Insert(Key(3), value(), 100);      // evicts 2
  EXPECT_EQ(cache.entries(), 2);
  EXPECT_EQ(cache.bytes(), 200);
  EXPECT_EQ(cache.Find(Key(2)), nullptr);
  EXPECT_NE(cache.Find(Key(1)), nullptr);
  EXPECT_NE(cache.Find(Key(3)), nullptr);
  // Larger than the whole budget: not stored, nothing evicted.
  cache.Insert(Key(4), value(), 251);
  EXPECT_EQ(cache.Find(Key(4)), nullptr);
  EXPECT_EQ(cache.entries(), 2);
  // Exactly the budget: everything else goes.
  cache.Insert(Key(5), value(), 250);
  EXPECT_EQ(cache.entries(), 1);
  EXPECT_NE(cache.Find(Key(5)), nullptr);
  EXPECT_EQ(cache.bytes(), 250);
}

// ---------------------------------------------------------------------------
// Concurrency: workers with their own backends share one weight cache.

TEST(OneDnnConcurrency, WorkersSharingWeightCacheMatchReference) {
  const std::vector<Problem> problems = [] {
    std::vector<Problem> ps;
    ps.push_back(MustPrepare(CacheGeometry(), DataType::kFloat32, 41));
    ps.push_back(MustPrepare(CacheGeometry(), DataType::kFloat32, 42));  // same spec
    ps.push_back(MustPrepare({.op = Op::kDepthwise,
                              .n = 2,
                              .spatial = {7, 7},
                              .kernel = {3, 3},
                              .in_channels = 17,
                              .out_channels = 2,
                              .bias = true,
                              .activation = Activation::kRelu},
                             DataType::kBFloat16, 43));
    ps.push_back(MustPrepare({.op = Op::kSeparable,
                              .n = 2,
                              .spatial = {6, 6},
                              .kernel = {3, 3},
                              .in_channels = 4,
                              .out_channels = 2,
                              .pointwise_out = 8,
                              .pointwise_groups = 2,
                              .bias = true},
                             DataType::kFloat16, 44));
    ps.push_back(MustPrepare({.op = Op::kConv2DTranspose,
                              .n = 2,
                              .spatial = {8, 8},
                              .kernel = {3, 3},
                              .strides = {2, 2},
                              .in_channels = 5,
                              .out_channels = 6,
                              .channels_last = false},
                             DataType::kFloat32, 45));
    ps.push_back(MustPrepare({.op = Op::kConv3D,
                              .n = 3,
                              .spatial = {4, 4, 4},
                              .kernel = {2, 2, 2},
                              .in_channels = 3,
                              .out_channels = 17,
                              .groups = 1,
                              .channels_last = false},
                             DataType::kBFloat16, 46));
    ps.push_back(MustPrepare({.op = Op::kConv2D,
                              .n = 2,
                              .spatial = {6, 6},
                              .kernel = {3, 3},
                              .in_channels = 6,
                              .out_channels = 9,
                              .groups = 3},
                             DataType::kFloat64, 47));
    return ps;
  }();
  constexpr int kWorkers = 3, kRounds = 12;
  auto cache = std::make_shared<WeightCache>(int64_t{64} << 20);
  std::atomic<int> failures{0};
  std::vector<std::string> first_errors(kWorkers);
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      OneDnnBackend backend(Options(cache, 1));
      ReferenceBackend reference;  // for float64, as the server's fallback pool
      for (int round = 0; round < kRounds; ++round) {
        for (size_t i = 0; i < problems.size(); ++i) {
          const Problem& p = problems[(i + static_cast<size_t>(w) * 2) % problems.size()];
          Buffer out = p.NewResult();
          Backend& runner = backend.Computes(p.spec) ? static_cast<Backend&>(backend) : reference;
          const absl::Status status = runner.Run(p.spec, p.operands(), out.mutable_view());
          std::vector<std::string> errors = status.ok()
                                                ? Compare(p, out, OneDnnCompare(p.spec.dtype, 1))
                                                : std::vector<std::string>{status.ToString()};
          if (errors.empty()) continue;
          failures.fetch_add(1);
          if (first_errors[w].empty()) first_errors[w] = absl::StrJoin(errors, "; ");
        }
      }
    });
  }
  for (std::thread& t : workers) t.join();
  EXPECT_EQ(failures.load(), 0) << absl::StrJoin(first_errors, "\n");
  // One entry per (filter, stage) of the oneDNN problems, whoever inserted it.
  EXPECT_EQ(cache->entries(), 7);
}

}  // namespace
}  // namespace convserve
