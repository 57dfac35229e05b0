// Whether a backend computes an image to the same bytes alone and inside a
// larger batch: the premise of dynamic batching (server/scheduler.h), which
// concatenates requests along the batch dimension and must never change a
// result's bytes. Each case runs one batch of several images, then each image
// alone (and pairs of images), and compares the bytes; Backend::BatchInvariant
// must hold only where they are equal.
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/element_types.h"
#include "core/make_spec.h"
#include "core/onednn/onednn_backend.h"
#include "core/reference/reference_backend.h"
#include "gtest/gtest.h"

namespace convserve {
namespace {

struct Case {
  std::string name;
  OpParams params;
  Shape input, filter;  // input with a batch of 1
  std::optional<Shape> pointwise = std::nullopt;
  bool bias = false;
  Activation activation = Activation::kNone;
};

std::vector<Case> Cases() {
  Conv2DParams same;
  same.strides = {1, 1, 1, 1};
  same.padding = Padding::kSame;
  Conv2DParams strided = same;
  strided.strides = {1, 2, 2, 1};
  Conv2DParams valid;
  valid.padding = Padding::kValid;
  Conv2DParams nchw = same;
  nchw.data_format = "NCHW";
  DepthwiseConv2DParams depthwise;
  depthwise.strides = {1, 1, 1, 1};
  depthwise.padding = Padding::kSame;
  SeparableConv2DParams separable;
  separable.strides = {1, 1, 1, 1};
  separable.padding = Padding::kValid;
  ConvTransposeParams transpose;
  transpose.rank = 2;
  transpose.output_shape = {1, 9, 9, 16};
  transpose.strides = {1, 2, 2, 1};
  transpose.padding = Padding::kSame;
  Conv3DParams conv3d;
  conv3d.strides = {1, 1, 1, 1, 1};
  conv3d.padding = Padding::kSame;
  Conv1DParams conv1d;
  conv1d.stride = {1};
  conv1d.padding = Padding::kSame;
  return {
      {"resnet_3x3_256", same, {1, 14, 14, 256}, {3, 3, 256, 256}},
      {"resnet_1x1_256", same, {1, 14, 14, 256}, {1, 1, 256, 1024}},
      {"strided_3x3_64", strided, {1, 28, 28, 64}, {3, 3, 64, 128}},
      {"small_valid", valid, {1, 5, 5, 3}, {2, 2, 3, 4}},
      {"odd_channels", same, {1, 7, 7, 13}, {3, 3, 13, 17}, std::nullopt, true, Activation::kRelu},
      {"nchw", nchw, {1, 32, 9, 9}, {3, 3, 32, 48}},
      {"depthwise", depthwise, {1, 14, 14, 64}, {3, 3, 64, 1}},
      {"separable", separable, {1, 8, 8, 16}, {3, 3, 16, 2}, Shape{1, 1, 32, 24}},
      {"transpose", transpose, {1, 5, 5, 8}, {3, 3, 16, 8}},
      {"conv3d", conv3d, {1, 4, 6, 6, 16}, {3, 3, 3, 16, 32}},
      {"conv1d", conv1d, {1, 50, 32}, {5, 32, 64}},
      {"large_ic_1x1", same, {1, 7, 7, 2048}, {1, 1, 2048, 512}},
  };
}

int64_t Elements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Random values in [-1, 1) as `dtype` bytes: sums of them round, so a
// different order of summation shows in the bytes.
std::vector<std::byte> Random(DataType dtype, int64_t elements, std::mt19937& rng) {
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  return DispatchDataType(dtype, [&](auto zero) {
    using T = decltype(zero);
    std::vector<std::byte> bytes(elements * sizeof(T));
    T* out = reinterpret_cast<T*>(bytes.data());
    for (int64_t i = 0; i < elements; ++i) out[i] = static_cast<T>(value(rng));
    return bytes;
  });
}

// The spec of `spec` (batch 1) for `batch` images, as the batcher makes it.
ConvSpec WithBatch(ConvSpec spec, int64_t batch) {
  spec.batch = batch;
  spec.result_shape[0] = batch;
  return spec;
}

// Runs `batch` images together, then each alone and in pairs; returns what
// differed, and sets `claimed` to whether the backend claims the batch invariant.
std::vector<std::string> Compare(Backend& backend, const Case& c, DataType dtype, bool reduced,
                                 int64_t batch, bool& claimed) {
  OperandInfo info;
  info.input = {dtype, c.input};
  info.filter = {dtype, c.filter};
  if (c.pointwise) info.pointwise_filter = TensorInfo{dtype, *c.pointwise};
  info.activation = c.activation;
  OpParams params = c.params;
  if (auto* t = std::get_if<ConvTransposeParams>(&params)) t->output_shape[0] = 1;
  absl::StatusOr<ConvSpec> one = MakeSpec(params, info, SpecLimits{});
  if (one.ok() && c.bias) {
    info.bias = TensorInfo{dtype, {one->ResultChannels()}};
    one = MakeSpec(params, info, SpecLimits{});
  }
  EXPECT_TRUE(one.ok()) << one.status();
  if (!one.ok()) return {"no spec"};
  one->allow_reduced_precision = reduced;
  claimed = backend.BatchInvariant(WithBatch(*one, batch));
  std::mt19937 rng(11);
  const int64_t item = ItemSize(dtype);
  // The request's input: x, or dy when transposed.
  const int64_t in_elements = one->transposed ? one->OutputElements() : one->InputElements();
  const int64_t in_image = in_elements * item;
  const int64_t out_image = one->ResultElements() * item;
  const std::vector<std::byte> x = Random(dtype, in_elements * batch, rng);
  const std::vector<std::byte> w = Random(dtype, one->FilterElements(), rng);
  const std::vector<std::byte> pw =
      c.pointwise ? Random(dtype, Elements(*c.pointwise), rng) : std::vector<std::byte>{};
  const std::vector<std::byte> b =
      c.bias ? Random(dtype, one->ResultChannels(), rng) : std::vector<std::byte>{};

  auto run = [&](int64_t first, int64_t count) {
    const ConvSpec spec = WithBatch(*one, count);
    Shape in_shape = c.input;
    in_shape[0] = count;
    Operands ops;
    ops.input = {dtype, in_shape, x.data() + first * in_image};
    ops.filter = {dtype, c.filter, w.data()};
    if (c.pointwise) ops.pointwise_filter = {dtype, *c.pointwise, pw.data()};
    if (c.bias) ops.bias = {dtype, {one->ResultChannels()}, b.data()};
    std::vector<std::byte> out(count * out_image);
    const absl::Status status = backend.Run(spec, ops, {dtype, spec.result_shape, out.data()});
    EXPECT_TRUE(status.ok()) << status;
    return out;
  };
  const std::vector<std::byte> all = run(0, batch);
  std::vector<std::string> differing;
  for (int64_t i = 0; i < batch; ++i) {
    const std::vector<std::byte> alone = run(i, 1);
    if (std::memcmp(alone.data(), all.data() + i * out_image, out_image) != 0) {
      differing.push_back("image " + std::to_string(i) + " alone");
    }
  }
  for (int64_t i = 0; i + 1 < batch; i += 2) {
    const std::vector<std::byte> pair = run(i, 2);
    if (std::memcmp(pair.data(), all.data() + i * out_image, 2 * out_image) != 0) {
      differing.push_back("images " + std::to_string(i) + "," + std::to_string(i + 1));
    }
  }
  return differing;
}

std::string DtypeName(DataType dtype, bool reduced) {
  return std::string(TfTypeName(dtype)) + (reduced ? "+reduced" : "");
}

void CheckBackend(Backend& backend, const std::vector<int64_t>& batches, bool small_only = false) {
  const std::pair<DataType, bool> dtypes[] = {{DataType::kFloat32, false},
                                              {DataType::kFloat32, true},
                                              {DataType::kBFloat16, false},
                                              {DataType::kFloat16, false}};
  int variant = 0, invariant = 0;
  for (const Case& c : Cases()) {
    if (small_only && c.filter.back() * c.input.back() > 64 * 64) continue;
    for (const auto& [dtype, reduced] : dtypes) {
      for (int64_t batch : batches) {
        SCOPED_TRACE(c.name + " " + DtypeName(dtype, reduced) + " batch " + std::to_string(batch));
        bool claimed = false;
        const std::vector<std::string> differing =
            Compare(backend, c, dtype, reduced, batch, claimed);
        // Whatever the backend claims must hold; what it does not claim is reported.
        if (differing.empty()) {
          ++invariant;
        } else {
          ++variant;
          std::string list;
          for (const std::string& d : differing) list += " [" + d + "]";
          std::printf("batch-variant: %s %s batch %lld:%s\n", c.name.c_str(),
                      DtypeName(dtype, reduced).c_str(), static_cast<long long>(batch),
                      list.c_str());
        }
        if (claimed) {
          EXPECT_TRUE(differing.empty())
              << backend.Name() << " claims batch invariance but results differ";
        }
      }
    }
  }
  std::printf("%s (%s): %d batch-invariant, %d batch-variant case/dtype/batch combinations\n",
              std::string(backend.Name()).c_str(), backend.Describe().device.c_str(), invariant,
              variant);
}

TEST(BatchInvariance, Reference) {
  ReferenceBackend reference;
  CheckBackend(reference, {3}, /*small_only=*/true);
}

TEST(BatchInvariance, OneDnnOneThread) {
  OneDnnBackend onednn(OneDnnOptions{.threads = 1, .weight_cache = nullptr});
  CheckBackend(onednn, {2, 5, 8, 16});
}

TEST(BatchInvariance, OneDnnAllThreads) {
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  OneDnnBackend onednn(OneDnnOptions{.threads = threads, .weight_cache = nullptr});
  CheckBackend(onednn, {2, 5, 8, 16});
}

}  // namespace
}  // namespace convserve
