// convserve-bench: how close ConvServe's oneDNN path comes to bare oneDNN.
//
// For a fixed set of real layer shapes, each benchmark measures, interleaved in
// the same iterations:
//   ours: MakeSpec from the op's TensorFlow parameters (as the server does) and
//         OneDnnBackend::Run with a warm shared WeightCache, 2 threads;
//   bare: the same convolution as a bare oneDNN primitive in its best setup
//         (channels-last activations, format_tag::any weights reordered once,
//         primitive created once, default scratchpad).
// FLOPs are 2 x the multiply-adds of the direct convolution. The machine's FMA
// peak is measured once at start-up and used for the pct_peak counter.
// A last benchmark sends a small conv through an in-process server with its
// filter inline and by a registered filter_id.
//
// Run it with scripts/bench.sh (README.md, "Benchmarks", explains the columns).

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "convserve/v1/convserve.grpc.pb.h"
#include "core/conv_spec.h"
#include "core/make_spec.h"
#include "core/onednn/onednn_backend.h"
#include "core/weight_cache.h"
#include "grpcpp/grpcpp.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "server/server.h"
#include "server/server_config.h"
#include "tests/bench/bench_stats.h"
#include "tests/bench/resnet50_layers.h"

namespace convserve {
namespace {

using bench::Clock;
using bench::Median;
using bench::Seconds;
using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

constexpr int kThreads = 2;

// ---------------------------------------------------------------------------
// FMA peak: independent accumulator chains of vector FMAs on kThreads threads.

__attribute__((target("avx512f"))) float FmaLoopAvx512(int64_t iterations) {
  constexpr int kAcc = 16;  // 2 FMA ports x 4-cycle latency, with margin
  __m512 acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_set1_ps(0.001f * static_cast<float>(j));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
  }
  __m512 sum = acc[0];
  for (int j = 1; j < kAcc; ++j) sum = _mm512_add_ps(sum, acc[j]);
  alignas(64) float lanes[16];  // not _mm512_reduce_add_ps: GCC 12 warns inside it
  _mm512_store_ps(lanes, sum);
  float total = 0;
  for (float v : lanes) total += v;
  return total;
}
constexpr double kFlopsPerIterationAvx512 = 16.0 * 16 * 2;

__attribute__((target("avx2,fma"))) float FmaLoopAvx2(int64_t iterations) {
  constexpr int kAcc = 12;
  __m256 acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = _mm256_set1_ps(0.001f * static_cast<float>(j));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kAcc; ++j) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
  }
  __m256 sum = acc[0];
  for (int j = 1; j < kAcc; ++j) sum = _mm256_add_ps(sum, acc[j]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  float total = 0;
  for (float v : lanes) total += v;
  return total;
}
constexpr double kFlopsPerIterationAvx2 = 12.0 * 8 * 2;

bool HasAvx512() { return __builtin_cpu_supports("avx512f"); }
const char* FmaIsa() { return HasAvx512() ? "avx512f" : "avx2+fma"; }

std::atomic<float> g_fma_sink{0};

// GFLOP/s of `iterations` loop trips on each of kThreads threads, wall clock.
double FmaGflops(int64_t iterations) {
  const bool avx512 = HasAvx512();
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      const float r = avx512 ? FmaLoopAvx512(iterations) : FmaLoopAvx2(iterations);
      g_fma_sink.store(r, std::memory_order_relaxed);
    });
  }
  while (ready.load() < kThreads) {
  }
  const Clock::time_point start = Clock::now();
  go.store(true, std::memory_order_release);
  for (std::thread& t : threads) t.join();
  const double seconds = Seconds(start, Clock::now());
  const double per_iteration = avx512 ? kFlopsPerIterationAvx512 : kFlopsPerIterationAvx2;
  return per_iteration * static_cast<double>(iterations) * kThreads / seconds * 1e-9;
}

double g_peak_gflops = 0;  // set once in main

// Best of many short runs, so that a moment when another process holds a
// core does not decide the result.
double MeasurePeak() {
  const int64_t iterations = HasAvx512() ? 8'000'000 : 12'000'000;
  double best = 0;
  for (int i = 0; i < 20; ++i) best = std::max(best, FmaGflops(iterations));
  return best;
}

void BM_FmaPeak(benchmark::State& state) {
  double gflops = 0;
  for (auto _ : state) gflops = std::max(gflops, FmaGflops(8'000'000));
  state.counters["GFLOPs"] = gflops;  // the best iteration
  state.counters["pct_peak"] = 100.0 * gflops / g_peak_gflops;
  state.SetLabel(FmaIsa());
}

// ---------------------------------------------------------------------------
// Buffers and data.

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// 64-byte aligned, zero-initialised bytes.
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t bytes) : bytes_(bytes) {
    const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    data_.reset(static_cast<std::byte*>(std::aligned_alloc(64, rounded)));
    std::memset(data_.get(), 0, rounded);
  }
  std::byte* data() const { return data_.get(); }
  size_t bytes() const { return bytes_; }

 private:
  std::unique_ptr<std::byte, FreeDeleter> data_;
  size_t bytes_ = 0;
};

Buffer CopyOf(const Buffer& buffer) {
  Buffer copy(buffer.bytes());
  if (buffer.bytes() > 0) std::memcpy(copy.data(), buffer.data(), buffer.bytes());
  return copy;
}

uint16_t ToBf16Bits(float f) {  // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

float FromBf16Bits(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Random values in [-scale, scale], as float32 or bfloat16 (then exactly the
// same values in `as_float`, if given).
Buffer RandomBuffer(int64_t elements, DataType dtype, float scale, uint32_t seed,
                    Buffer* as_float = nullptr) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  Buffer out(static_cast<size_t>(elements) * (dtype == DataType::kBFloat16 ? 2 : 4));
  if (as_float) *as_float = Buffer(static_cast<size_t>(elements) * 4);
  for (int64_t i = 0; i < elements; ++i) {
    float v = dist(rng);
    if (dtype == DataType::kBFloat16) {
      const uint16_t b = ToBf16Bits(v);
      reinterpret_cast<uint16_t*>(out.data())[i] = b;
      v = FromBf16Bits(b);
    } else {
      reinterpret_cast<float*>(out.data())[i] = v;
    }
    if (as_float) reinterpret_cast<float*>(as_float->data())[i] = v;
  }
  return out;
}

float Element(const Buffer& b, DataType dtype, int64_t i) {
  return dtype == DataType::kBFloat16 ? FromBf16Bits(reinterpret_cast<const uint16_t*>(b.data())[i])
                                      : reinterpret_cast<const float*>(b.data())[i];
}

// max |a - b| / max |b|.
double RelativeError(const Buffer& a, const Buffer& b, DataType dtype, int64_t elements) {
  return bench::MaxRelativeError(
      elements, [&](int64_t i) { return Element(a, dtype, i); },
      [&](int64_t i) { return Element(b, dtype, i); });
}

// ---------------------------------------------------------------------------
// Layers: the request as a TensorFlow user writes it.

enum class Op { kConv1D, kConv2D, kConv3D, kDepthwise, kSeparable, kAtrous, kTranspose2D };

struct Layer {
  std::string name;
  Op op;
  int64_t batch;
  std::vector<int64_t> in_spatial;  // the request's input (dy for transposed)
  int64_t in_channels;              // the request's input channels
  std::vector<int64_t> kernel;
  // Result channels: conv out; depthwise multiplier is separate; separable:
  // pointwise out; transposed: output_shape's channels.
  int64_t out_channels;
  int64_t stride = 1;
  int64_t rate = 1;  // dilation
  int64_t multiplier = 1;
};

// The forward convolution x (*) w -> y the layer computes, derived here
// independently of MakeSpec (TensorFlow SAME padding).
struct Geometry {
  bool transposed = false;
  int rank = 2;
  int64_t batch = 1, groups = 1, x_channels = 0, y_channels = 0, pointwise_out = 0;
  std::vector<int64_t> x, y, kernel, strides, dilations, pad_l, pad_r;

  int64_t Macs() const {
    int64_t y_points = batch, k = 1;
    for (int i = 0; i < rank; ++i) {
      y_points *= y[i];
      k *= kernel[i];
    }
    int64_t macs = y_points * y_channels * (x_channels / groups) * k;
    if (pointwise_out > 0) macs += y_points * pointwise_out * y_channels;
    return macs;
  }
};

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

Geometry LayerGeometry(const Layer& l) {
  Geometry g;
  g.rank = static_cast<int>(l.in_spatial.size());
  g.batch = l.batch;
  g.kernel = l.kernel;
  g.strides.assign(g.rank, l.stride);
  g.dilations.assign(g.rank, l.rate);
  switch (l.op) {
    case Op::kDepthwise:
      g.groups = l.in_channels;
      g.x_channels = l.in_channels;
      g.y_channels = l.in_channels * l.multiplier;
      break;
    case Op::kSeparable:
      g.groups = l.in_channels;
      g.x_channels = l.in_channels;
      g.y_channels = l.in_channels * l.multiplier;
      g.pointwise_out = l.out_channels;
      break;
    case Op::kTranspose2D:
      g.transposed = true;
      g.x_channels = l.out_channels;
      g.y_channels = l.in_channels;
      break;
    default: g.x_channels = l.in_channels; g.y_channels = l.out_channels;
  }
  for (int i = 0; i < g.rank; ++i) {
    int64_t x, y;
    if (g.transposed) {
      y = l.in_spatial[i];
      x = y * l.stride;  // output_shape = input * stride, as TF's SAME gives
    } else {
      x = l.in_spatial[i];
      y = CeilDiv(x, l.stride);
    }
    const int64_t window = (g.kernel[i] - 1) * g.dilations[i] + 1;
    const int64_t pad = std::max<int64_t>((y - 1) * l.stride + window - x, 0);
    g.x.push_back(x);
    g.y.push_back(y);
    g.pad_l.push_back(pad / 2);
    g.pad_r.push_back(pad - pad / 2);
  }
  return g;
}

int64_t SpecMacs(const ConvSpec& s) {
  int64_t y_points = s.batch, k = 1;
  for (int i = 0; i < s.rank; ++i) {
    y_points *= s.output_spatial[i];
    k *= s.filter_spatial[i];
  }
  int64_t macs = y_points * s.out_channels * (s.in_channels / s.groups) * k;
  if (s.pointwise_out_channels > 0) {
    macs += y_points * s.pointwise_out_channels * (s.out_channels / s.pointwise_groups);
  }
  return macs;
}

int64_t Product(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// The request: op parameters and operand shapes.
struct Request {
  OpParams params;
  Shape input, filter, pointwise_filter, result;
};

Request LayerRequest(const Layer& l, const Geometry& g) {
  Request r;
  const std::vector<int64_t> strides4 = {1, l.stride, l.stride, 1};
  r.input = {l.batch};
  r.input.insert(r.input.end(), l.in_spatial.begin(), l.in_spatial.end());
  r.input.push_back(l.in_channels);
  r.filter = l.kernel;
  r.result = {l.batch};
  r.result.insert(r.result.end(), g.transposed ? g.x.begin() : g.y.begin(),
                  g.transposed ? g.x.end() : g.y.end());
  switch (l.op) {
    case Op::kConv1D: {
      Conv1DParams p;
      p.stride = {l.stride};
      p.padding = Padding::kSame;
      p.dilations = {l.rate};
      r.params = p;
      r.filter.insert(r.filter.end(), {l.in_channels, l.out_channels});
      r.result.push_back(l.out_channels);
      break;
    }
    case Op::kConv2D: {
      Conv2DParams p;
      p.strides = strides4;
      p.padding = Padding::kSame;
      p.dilations = {1, l.rate, l.rate, 1};
      r.params = p;
      r.filter.insert(r.filter.end(), {l.in_channels, l.out_channels});
      r.result.push_back(l.out_channels);
      break;
    }
    case Op::kConv3D: {
      Conv3DParams p;
      p.strides = {1, l.stride, l.stride, l.stride, 1};
      p.padding = Padding::kSame;
      r.params = p;
      r.filter.insert(r.filter.end(), {l.in_channels, l.out_channels});
      r.result.push_back(l.out_channels);
      break;
    }
    case Op::kDepthwise: {
      DepthwiseConv2DParams p;
      p.strides = strides4;
      p.padding = Padding::kSame;
      r.params = p;
      r.filter.insert(r.filter.end(), {l.in_channels, l.multiplier});
      r.result.push_back(l.in_channels * l.multiplier);
      break;
    }
    case Op::kSeparable: {
      SeparableConv2DParams p;
      p.strides = strides4;
      p.padding = Padding::kSame;
      r.params = p;
      r.filter.insert(r.filter.end(), {l.in_channels, l.multiplier});
      r.pointwise_filter = {1, 1, l.in_channels * l.multiplier, l.out_channels};
      r.result.push_back(l.out_channels);
      break;
    }
    case Op::kAtrous: {
      AtrousConv2DParams p;
      p.rate = l.rate;
      p.padding = Padding::kSame;
      r.params = p;
      r.filter.insert(r.filter.end(), {l.in_channels, l.out_channels});
      r.result.push_back(l.out_channels);
      break;
    }
    case Op::kTranspose2D: {
      ConvTransposeParams p;
      p.rank = 2;
      p.output_shape = {l.batch, g.x[0], g.x[1], l.out_channels};
      p.strides = strides4;
      p.padding = Padding::kSame;
      r.params = p;
      r.filter.insert(r.filter.end(), {l.out_channels, l.in_channels});
      r.result.push_back(l.out_channels);
      break;
    }
  }
  return r;
}

// ---------------------------------------------------------------------------
// The bare oneDNN primitive(s) for a layer.

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

memory::dims Dims(const std::vector<int64_t>& v) { return memory::dims(v.begin(), v.end()); }

Tag ChannelsLast(int rank) { return rank == 1 ? Tag::nwc : rank == 2 ? Tag::nhwc : Tag::ndhwc; }

memory::desc ActivationDesc(int64_t batch, int64_t channels, const std::vector<int64_t>& spatial,
                            Dt type) {
  memory::dims dims{batch, channels};
  dims.insert(dims.end(), spatial.begin(), spatial.end());
  return memory::desc(dims, type, ChannelsLast(static_cast<int>(spatial.size())));
}

// oneDNN weight dims [(G,) rows, cols, spatial...] over TensorFlow's filter
// bytes [spatial..., in/G, out], where rows/cols are out/G and in/G (`swap`
// false, convolution) or in and out (`swap` true, deconvolution).
memory::desc TfFilter(int64_t groups, int64_t in_per_group, int64_t out,
                      const std::vector<int64_t>& kernel, Dt type, bool swap) {
  const int rank = static_cast<int>(kernel.size());
  memory::dims spatial_strides(rank);
  int64_t stride = in_per_group * out;
  for (int i = rank - 1; i >= 0; --i) {
    spatial_strides[i] = stride;
    stride *= kernel[i];
  }
  memory::dims dims, strides;
  if (groups > 1) {
    dims = {groups, out / groups, in_per_group};
    strides = {out / groups, 1, out};
  } else if (swap) {
    dims = {in_per_group, out};
    strides = {out, 1};
  } else {
    dims = {out, in_per_group};
    strides = {1, out};
  }
  dims.insert(dims.end(), kernel.begin(), kernel.end());
  strides.insert(strides.end(), spatial_strides.begin(), spatial_strides.end());
  return memory::desc(dims, type, strides);
}

memory::desc AnyWeights(int64_t groups, int64_t rows, int64_t cols,
                        const std::vector<int64_t>& kernel, Dt type) {
  memory::dims dims =
      groups > 1 ? memory::dims{groups, rows / groups, cols / groups} : memory::dims{rows, cols};
  dims.insert(dims.end(), kernel.begin(), kernel.end());
  return memory::desc(dims, type, Tag::any);
}

memory::dims Minus1(const std::vector<int64_t>& v) {
  memory::dims out;
  for (int64_t x : v) out.push_back(x - 1);
  return out;
}

struct BareStage {
  dnnl::primitive primitive;
  std::unordered_map<int, memory> args;
  std::string impl;
};

struct Bare {
  std::vector<BareStage> stages;
  memory intermediate;
  std::string impl;

  void Run(dnnl::stream& stream) {
    for (BareStage& s : stages) s.primitive.execute(stream, s.args);
    stream.wait();
  }
};

// The weights reordered once, from TF's layout into what the primitive wants.
memory ReorderedWeights(const memory::desc& user, const memory::desc& wanted,
                        const std::byte* data) {
  memory src(user, Engine(), const_cast<std::byte*>(data));
  memory dst(wanted, Engine());
  dnnl::stream stream(Engine());
  dnnl::reorder(src, dst).execute(stream, src, dst);
  stream.wait();
  return dst;
}

BareStage ForwardConv(int64_t groups, int64_t x_channels, int64_t y_channels,
                      const memory::desc& src, const memory::desc& dst,
                      const std::vector<int64_t>& kernel, const memory::dims& strides,
                      const memory::dims& dilations, const memory::dims& pad_l,
                      const memory::dims& pad_r, Dt type, const std::byte* filter) {
  dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                       dnnl::algorithm::convolution_direct, src,
                                       AnyWeights(groups, y_channels, x_channels, kernel, type),
                                       dst, strides, dilations, pad_l, pad_r);
  dnnl::convolution_forward::primitive_desc pd(desc, Engine());
  BareStage stage;
  stage.primitive = dnnl::convolution_forward(pd);
  stage.args[DNNL_ARG_WEIGHTS] =
      ReorderedWeights(TfFilter(groups, x_channels / groups, y_channels, kernel, type, false),
                       pd.weights_desc(), filter);
  stage.impl = pd.impl_info_str();
  return stage;
}

// input/output: the caller's buffers (channels-last, `type`).
Bare MakeBare(const Geometry& g, Dt type, const std::byte* input, const std::byte* filter,
              const std::byte* pointwise_filter, std::byte* output) {
  Bare bare;
  const memory::desc x = ActivationDesc(g.batch, g.x_channels, g.x, type);
  const memory::desc y = ActivationDesc(g.batch, g.y_channels, g.y, type);
  const memory::dims strides = Dims(g.strides), dilations = Minus1(g.dilations),
                     pad_l = Dims(g.pad_l), pad_r = Dims(g.pad_r);
  if (g.transposed) {
    // Deconvolution: src = dy (y_channels), dst = dx (x_channels); weights
    // [x_channels, y_channels, k...] over TF's [k..., x_channels, y_channels].
    dnnl::deconvolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct, y,
        AnyWeights(1, g.x_channels, g.y_channels, g.kernel, type), x, strides, dilations, pad_l,
        pad_r);
    dnnl::deconvolution_forward::primitive_desc pd(desc, Engine());
    BareStage stage;
    stage.primitive = dnnl::deconvolution_forward(pd);
    stage.args[DNNL_ARG_WEIGHTS] = ReorderedWeights(
        TfFilter(1, g.x_channels, g.y_channels, g.kernel, type, true), pd.weights_desc(), filter);
    stage.args[DNNL_ARG_SRC] = memory(y, Engine(), const_cast<std::byte*>(input));
    stage.args[DNNL_ARG_DST] = memory(x, Engine(), output);
    stage.impl = pd.impl_info_str();
    bare.stages.push_back(std::move(stage));
  } else if (g.pointwise_out > 0) {
    const memory::desc z = ActivationDesc(g.batch, g.pointwise_out, g.y, type);
    bare.intermediate = memory(y, Engine());
    BareStage dw = ForwardConv(g.groups, g.x_channels, g.y_channels, x, y, g.kernel, strides,
                               dilations, pad_l, pad_r, type, filter);
    dw.args[DNNL_ARG_SRC] = memory(x, Engine(), const_cast<std::byte*>(input));
    dw.args[DNNL_ARG_DST] = bare.intermediate;
    const memory::dims ones(g.rank, 1), zeros(g.rank, 0);
    BareStage pw =
        ForwardConv(1, g.y_channels, g.pointwise_out, y, z, std::vector<int64_t>(g.rank, 1), ones,
                    zeros, zeros, zeros, type, pointwise_filter);
    pw.args[DNNL_ARG_SRC] = bare.intermediate;
    pw.args[DNNL_ARG_DST] = memory(z, Engine(), output);
    bare.stages.push_back(std::move(dw));
    bare.stages.push_back(std::move(pw));
  } else {
    BareStage stage = ForwardConv(g.groups, g.x_channels, g.y_channels, x, y, g.kernel, strides,
                                  dilations, pad_l, pad_r, type, filter);
    stage.args[DNNL_ARG_SRC] = memory(x, Engine(), const_cast<std::byte*>(input));
    stage.args[DNNL_ARG_DST] = memory(y, Engine(), output);
    bare.stages.push_back(std::move(stage));
  }
  for (const BareStage& s : bare.stages) {
    absl::StrAppend(&bare.impl, bare.impl.empty() ? "" : "+", s.impl);
  }
  return bare;
}

// ---------------------------------------------------------------------------
// Our path, as the server runs it.

std::shared_ptr<WeightCache>& SharedWeightCache() {
  static auto cache = std::make_shared<WeightCache>(int64_t{2} << 30);
  return cache;
}

OneDnnBackend& OurBackend() {
  static OneDnnBackend backend(OneDnnOptions{kThreads, SharedWeightCache()});
  return backend;
}

// One dtype's worth of a layer's operands, and our path over them. The
// filters are used as registered filters are: their content hashes are known
// up front, so the backend finds their reordered weights without rehashing.
struct Ours {
  DataType dtype;
  Request request;
  Buffer input, filter, pointwise_filter, output;
  uint64_t filter_hash = 0, pointwise_filter_hash = 0;
  SpecLimits limits;
  bool allow_reduced_precision = false;  // float32 only: the request's opt-in

  // MakeSpec + Run. Returns the status of either.
  absl::Status Run(ConvSpec* spec_out = nullptr) {
    OperandInfo info;
    info.input = {dtype, request.input};
    info.filter = {dtype, request.filter};
    if (!request.pointwise_filter.empty()) {
      info.pointwise_filter = TensorInfo{dtype, request.pointwise_filter};
    }
    absl::StatusOr<ConvSpec> spec = MakeSpec(request.params, info, limits);
    if (!spec.ok()) return spec.status();
    spec->allow_reduced_precision = allow_reduced_precision;
    Operands operands;
    operands.input = {dtype, request.input, input.data()};
    operands.filter = {dtype, request.filter, filter.data()};
    operands.filter_hash = filter_hash;
    if (!request.pointwise_filter.empty()) {
      operands.pointwise_filter = {dtype, request.pointwise_filter, pointwise_filter.data()};
      operands.pointwise_filter_hash = pointwise_filter_hash;
    }
    TensorView out{dtype, spec->result_shape, output.data()};
    if (spec_out) *spec_out = *spec;
    return OurBackend().Run(*spec, operands, out);
  }
};

struct LayerFixture {
  std::string name;
  DataType dtype;
  Geometry geometry;
  int64_t macs = 0;
  Ours ours;
  std::unique_ptr<Ours> ours_f32;  // bf16 rows: the same values in float32
  // float32 rows: the same request allowing reduced precision, and the
  // precision it ran in ("bfloat16" where the CPU has bfloat16 hardware).
  std::unique_ptr<Ours> ours_reduced;
  std::string reduced_precision;
  double reduced_rel_err = 0;  // its result against strict float32
  Buffer bare_output;
  Bare bare;
  dnnl::stream stream{Engine()};
  double rel_err = 0;
  std::string error;  // set when the layer cannot be benchmarked
};

uint64_t HashOf(const Buffer& buffer) {
  return ContentHash(
      absl::string_view(reinterpret_cast<const char*>(buffer.data()), buffer.bytes()));
}

void FillOperands(Ours& o, DataType dtype, Ours* f32_copy) {
  o.dtype = dtype;
  const int64_t in_n = Product(o.request.input), f_n = Product(o.request.filter);
  // Scales keep results O(1) whatever the fan-in.
  const float f_scale =
      1.0f / std::sqrt(static_cast<float>(std::max<int64_t>(f_n / o.request.filter.back(), 1)));
  Buffer f32_in, f32_f, f32_pw;
  o.input = RandomBuffer(in_n, dtype, 1.0f, 1, f32_copy ? &f32_in : nullptr);
  o.filter = RandomBuffer(f_n, dtype, f_scale, 2, f32_copy ? &f32_f : nullptr);
  if (!o.request.pointwise_filter.empty()) {
    const int64_t pw_n = Product(o.request.pointwise_filter);
    const float pw_scale = 1.0f / std::sqrt(static_cast<float>(o.request.pointwise_filter[2]));
    o.pointwise_filter = RandomBuffer(pw_n, dtype, pw_scale, 3, f32_copy ? &f32_pw : nullptr);
  }
  const size_t item = dtype == DataType::kBFloat16 ? 2 : 4;
  o.output = Buffer(static_cast<size_t>(Product(o.request.result)) * item);
  o.filter_hash = HashOf(o.filter);
  o.pointwise_filter_hash = HashOf(o.pointwise_filter);
  if (f32_copy) {
    f32_copy->dtype = DataType::kFloat32;
    f32_copy->request = o.request;
    f32_copy->input = std::move(f32_in);
    f32_copy->filter = std::move(f32_f);
    f32_copy->pointwise_filter = std::move(f32_pw);
    f32_copy->output = Buffer(static_cast<size_t>(Product(o.request.result)) * 4);
    f32_copy->filter_hash = HashOf(f32_copy->filter);
    f32_copy->pointwise_filter_hash = HashOf(f32_copy->pointwise_filter);
  }
}

std::unique_ptr<LayerFixture> MakeFixture(const std::string& name, const Layer& layer,
                                          DataType dtype) {
  auto f = std::make_unique<LayerFixture>();
  f->name = name;
  f->dtype = dtype;
  f->geometry = LayerGeometry(layer);
  f->macs = f->geometry.Macs();
  f->ours.request = LayerRequest(layer, f->geometry);
  if (dtype == DataType::kBFloat16) f->ours_f32 = std::make_unique<Ours>();
  FillOperands(f->ours, dtype, f->ours_f32.get());
  f->bare_output = Buffer(f->ours.output.bytes());

  // Warm our path (plan, weight cache).
  ConvSpec spec;
  absl::Status status = f->ours.Run(&spec);
  if (status.ok() && f->ours_f32) status = f->ours_f32->Run();
  if (!status.ok()) {
    f->error = absl::StrCat("ours: ", status.ToString());
    return f;
  }
  if (SpecMacs(spec) != f->macs || spec.result_shape != f->ours.request.result) {
    f->error = absl::StrCat("MakeSpec disagrees with the layer: ", spec.DebugString());
    return f;
  }

  // The bare primitive, on the threads our backend gives this spec (oneDNN
  // fixes a primitive's thread count when it is created); then our result
  // against its.
  omp_set_num_threads(OurBackend().Threads(spec));
  try {
    f->bare = MakeBare(f->geometry, dtype == DataType::kBFloat16 ? Dt::bf16 : Dt::f32,
                       f->ours.input.data(), f->ours.filter.data(), f->ours.pointwise_filter.data(),
                       f->bare_output.data());
    f->bare.Run(f->stream);
  } catch (const dnnl::error& e) {
    f->error = absl::StrCat("bare oneDNN: ", e.what());
    return f;
  }
  f->rel_err = RelativeError(f->ours.output, f->bare_output, dtype, spec.ResultElements());
  if (dtype == DataType::kFloat32) {
    f->ours_reduced = std::make_unique<Ours>();
    Ours& reduced = *f->ours_reduced;
    reduced.dtype = dtype;
    reduced.request = f->ours.request;
    reduced.input = CopyOf(f->ours.input);
    reduced.filter = CopyOf(f->ours.filter);
    reduced.pointwise_filter = CopyOf(f->ours.pointwise_filter);
    reduced.output = Buffer(f->ours.output.bytes());
    reduced.filter_hash = f->ours.filter_hash;
    reduced.pointwise_filter_hash = f->ours.pointwise_filter_hash;
    reduced.allow_reduced_precision = true;
    ConvSpec reduced_spec;
    status = f->ours_reduced->Run(&reduced_spec);
    if (!status.ok()) {
      f->error = absl::StrCat("ours, reduced precision: ", status.ToString());
      return f;
    }
    f->reduced_precision = OurBackend().Precision(reduced_spec);
    f->reduced_rel_err =
        RelativeError(f->ours_reduced->output, f->ours.output, dtype, spec.ResultElements());
  }
  const double tolerance = dtype == DataType::kBFloat16 ? 3e-2 : 1e-4;
  if (!(f->rel_err <= tolerance)) {
    std::fprintf(stderr, "WARNING: %s: ours differs from bare oneDNN: max|diff|/max|bare| = %g\n",
                 name.c_str(), f->rel_err);
  }
  return f;
}

// Google Benchmark calls a function several times while it sizes the run;
// keep the current layer's fixture across those calls.
std::unique_ptr<LayerFixture> g_fixture;

LayerFixture& FixtureFor(const std::string& name, const Layer& layer, DataType dtype) {
  if (!g_fixture || g_fixture->name != name) {
    g_fixture.reset();  // free the previous layer's buffers first
    g_fixture = MakeFixture(name, layer, dtype);
  }
  return *g_fixture;
}

void BM_Layer(benchmark::State& state, const std::string& name, const Layer& layer,
              DataType dtype) {
  LayerFixture& f = FixtureFor(name, layer, dtype);
  if (!f.error.empty()) {
    state.SkipWithError(f.error.c_str());
    return;
  }
  omp_set_num_threads(kThreads);
  std::vector<double> ours_s, bare_s, f32_s, reduced_s;
  absl::Status status;
  auto time_ours = [&](Ours& o, std::vector<double>* times) {
    const Clock::time_point start = Clock::now();
    status.Update(o.Run());
    times->push_back(Seconds(start, Clock::now()));
  };
  auto time_bare = [&] {
    const Clock::time_point start = Clock::now();
    f.bare.Run(f.stream);
    bare_s.push_back(Seconds(start, Clock::now()));
  };
  // Each path runs a burst of calls back to back, as a server does for a
  // stream of requests for one layer; the bursts alternate in order so that
  // neither path always starts on the other's warm caches.
  constexpr int kBurst = 8;
  auto burst = [&](auto&& call) {
    for (int i = 0; i < kBurst; ++i) call();
  };
  for (auto _ : state) {
    if (ours_s.size() % (2 * kBurst) == 0) {
      burst([&] { time_ours(f.ours, &ours_s); });
      burst(time_bare);
    } else {
      burst(time_bare);
      burst([&] { time_ours(f.ours, &ours_s); });
    }
    if (f.ours_f32) burst([&] { time_ours(*f.ours_f32, &f32_s); });
    if (f.ours_reduced) burst([&] { time_ours(*f.ours_reduced, &reduced_s); });
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      break;
    }
  }
  if (ours_s.empty() || !status.ok()) return;
  const double ours = Median(ours_s), bare = Median(bare_s);
  const double flops = 2.0 * static_cast<double>(f.macs);
  state.counters["GFLOP"] = flops * 1e-9;
  state.counters["ours_ms"] = ours * 1e3;
  state.counters["bare_ms"] = bare * 1e3;
  state.counters["ours_GFLOPs"] = flops / ours * 1e-9;
  state.counters["bare_GFLOPs"] = flops / bare * 1e-9;
  state.counters["ours_vs_bare"] = bare / ours;
  state.counters["pct_peak"] = 100.0 * flops / ours * 1e-9 / g_peak_gflops;
  state.counters["rel_err"] = f.rel_err;
  if (f.ours_f32) state.counters["bf16_speedup"] = Median(f32_s) / ours;
  if (f.ours_reduced) {
    state.counters["reduced_speedup"] = ours / Median(reduced_s);
    state.counters["reduced_rel_err"] = f.reduced_rel_err;
  }
  state.SetLabel(
      absl::StrCat("bare=", f.bare.impl, f.ours_reduced ? " reduced=" + f.reduced_precision : ""));
}

// The content hash a request with an INLINE filter costs to find its reordered
// weights (WeightKey), on a filter the size of resnet50 7x7x512's; registered
// filters are hashed once, at registration.
void BM_WeightKeyHash(benchmark::State& state) {
  const Buffer filter = RandomBuffer(3 * 3 * 512 * 512, DataType::kFloat32, 1.0f, 5);
  const absl::string_view bytes(reinterpret_cast<const char*>(filter.data()), filter.bytes());
  uint64_t hash = 0;
  for (auto _ : state) {
    hash ^= ContentHash(bytes);
    benchmark::DoNotOptimize(hash);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(filter.bytes()));
  state.SetLabel("ContentHash of 9 MiB (3x3x512x512 f32)");
}

// ---------------------------------------------------------------------------
// Registered vs inline filter through an in-process server.

struct ServerFixture {
  std::unique_ptr<server::RunningServer> server;
  std::unique_ptr<v1::ConvService::Stub> stub;
  v1::ConvRequest inline_request, id_request;
  std::string error;
};

std::unique_ptr<ServerFixture> g_server;

void FillTensor(v1::Tensor* t, const Shape& shape, float scale, uint32_t seed) {
  t->set_dtype(v1::DATA_TYPE_FLOAT32);
  for (int64_t d : shape) t->add_shape(d);
  Buffer b = RandomBuffer(Product(shape), DataType::kFloat32, scale, seed);
  t->set_data(reinterpret_cast<const char*>(b.data()), b.bytes());
}

grpc::Status Call(ServerFixture& s, const v1::ConvRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::ConvResponse response;
  return s.stub->Conv(&context, request, &response);
}

ServerFixture& Server() {
  if (g_server) return *g_server;
  g_server = std::make_unique<ServerFixture>();
  ServerFixture& s = *g_server;
  server::ServerConfig config;
  config.address = "127.0.0.1:0";
  config.backend = "onednn";
  config.cuda_devices = "none";  // served vs in-process oneDNN, even on a GPU machine
  config.workers = 1;
  config.threads_per_worker = kThreads;
  auto started = server::StartServer(config);
  if (!started.ok()) {
    s.error = started.status().ToString();
    return s;
  }
  s.server = std::move(*started);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  s.stub = v1::ConvService::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", s.server->port()), grpc::InsecureChannelCredentials(), args));

  // conv2d 1x14x14x256 (*) 3x3x256x256, SAME.
  v1::ConvRequest& r = s.inline_request;
  r.mutable_conv2d()->set_padding(v1::PADDING_SAME);
  FillTensor(r.mutable_input(), {1, 14, 14, 256}, 1.0f, 11);
  FillTensor(r.mutable_filter()->mutable_tensor(), {3, 3, 256, 256}, 1.0f / 48, 12);

  v1::RegisterFilterRequest reg;
  *reg.mutable_filter() = r.filter().tensor();
  v1::RegisterFilterResponse reg_response;
  grpc::ClientContext context;
  const grpc::Status status = s.stub->RegisterFilter(&context, reg, &reg_response);
  if (!status.ok()) {
    s.error = absl::StrCat("RegisterFilter: ", status.error_message());
    return s;
  }
  s.id_request = r;
  s.id_request.mutable_filter()->set_filter_id(reg_response.filter_id());
  for (int i = 0; i < 3; ++i) {  // warm both paths (plan, weight cache, channel)
    for (const v1::ConvRequest* q : {&s.inline_request, &s.id_request}) {
      const grpc::Status warm = Call(s, *q);
      if (!warm.ok()) {
        s.error = absl::StrCat("Conv: ", warm.error_message());
        return s;
      }
    }
  }
  return s;
}

void BM_FilterInlineVsRegistered(benchmark::State& state) {
  ServerFixture& s = Server();
  if (!s.error.empty()) {
    state.SkipWithError(s.error.c_str());
    return;
  }
  std::vector<double> inline_s, id_s;
  grpc::Status status;
  auto timed = [&](const v1::ConvRequest& request, std::vector<double>* times) {
    const Clock::time_point start = Clock::now();
    const grpc::Status st = Call(s, request);
    times->push_back(Seconds(start, Clock::now()));
    if (!st.ok()) status = st;
  };
  for (auto _ : state) {
    if (id_s.size() % 2 == 0) {
      timed(s.inline_request, &inline_s);
      timed(s.id_request, &id_s);
    } else {
      timed(s.id_request, &id_s);
      timed(s.inline_request, &inline_s);
    }
    if (!status.ok()) {
      state.SkipWithError(status.error_message().c_str());
      break;
    }
  }
  if (id_s.empty() || !status.ok()) return;
  state.counters["inline_us"] = Median(inline_s) * 1e6;
  state.counters["filter_id_us"] = Median(id_s) * 1e6;
  state.counters["inline_vs_id"] = Median(inline_s) / Median(id_s);
  state.SetLabel("conv2d 1x14x14x256 * 3x3x256x256 f32, filter 2.25 MiB");
}

// ---------------------------------------------------------------------------
// The layer set.

std::vector<Layer> F32Layers() {
  // ResNet-50 3x3 (one per stage, batch 4) and 1x1 bottleneck layers (batch
  // 8), shared with convserve-cuda-bench; then the others.
  std::vector<Layer> layers;
  for (const bench::ResNet50Layer& r : bench::kResNet50Layers) {
    Layer layer{r.name,        Op::kConv2D,          r.kernel == 1 ? 8 : 4, {r.size, r.size},
                r.in_channels, {r.kernel, r.kernel}, r.out_channels};
    layers.push_back(std::move(layer));
  }
  const std::vector<Layer> others = {
      // MobileNet v1 depthwise 3x3 and pointwise layers.
      {"mobilenet_dw3x3_112x112x32_s1", Op::kDepthwise, 16, {112, 112}, 32, {3, 3}, 32, 1},
      {"mobilenet_dw3x3_112x112x32_s2", Op::kDepthwise, 32, {112, 112}, 32, {3, 3}, 32, 2},
      {"mobilenet_dw3x3_14x14x512_s1", Op::kDepthwise, 64, {14, 14}, 512, {3, 3}, 512, 1},
      {"mobilenet_dw3x3_14x14x512_s2", Op::kDepthwise, 128, {14, 14}, 512, {3, 3}, 512, 2},
      {"mobilenet_pw1x1_112x112x32_64", Op::kConv2D, 8, {112, 112}, 32, {1, 1}, 64},
      {"mobilenet_pw1x1_14x14x512_512", Op::kConv2D, 8, {14, 14}, 512, {1, 1}, 512},
      // Audio: conv1d over 1000 frames of 256 features, kernel 11.
      {"audio_conv1d_1000x256_k11_256", Op::kConv1D, 1, {1000}, 256, {11}, 256},
      // Video: conv3d 8x56x56x64, 3x3x3 -> 64.
      {"video_conv3d_8x56x56x64_3x3x3_64", Op::kConv3D, 1, {8, 56, 56}, 64, {3, 3, 3}, 64},
      // U-Net decoder: conv2d_transpose 32x32x256 -> 64x64x128, stride 2.
      {"unet_transpose2x2_s2_32x32x256_128", Op::kTranspose2D, 4, {32, 32}, 256, {2, 2}, 128, 2},
      {"unet_transpose3x3_s2_32x32x256_128", Op::kTranspose2D, 2, {32, 32}, 256, {3, 3}, 128, 2},
      // Xception middle flow: separable 3x3 depthwise + 1x1 pointwise, 728 -> 728.
      {"xception_separable3x3_19x19x728_728", Op::kSeparable, 4, {19, 19}, 728, {3, 3}, 728},
      // DeepLab ASPP branch: atrous 3x3, rate 6.
      {"deeplab_atrous3x3_r6_33x33x256_256", Op::kAtrous, 1, {33, 33}, 256, {3, 3}, 256, 1, 6},
      // The service benchmarks' small request: a kernel of a few microseconds,
      // next to which our path's per-call cost shows.
      {"small_conv2d_8x8x4_4", Op::kConv2D, 1, {8, 8}, 4, {3, 3}, 4},
  };
  layers.insert(layers.end(), others.begin(), others.end());
  return layers;
}

std::vector<Layer> Bf16Layers() {
  std::vector<Layer> layers;
  for (const Layer& l : F32Layers()) {
    if (l.name.rfind("resnet50_3x3", 0) == 0) layers.push_back(l);
  }
  return layers;
}

void RegisterAll() {
  for (const auto& [dtype, prefix, layers] :
       {std::tuple{DataType::kFloat32, "f32", F32Layers()},
        std::tuple{DataType::kBFloat16, "bf16", Bf16Layers()}}) {
    for (const Layer& layer : layers) {
      const std::string name =
          absl::StrCat(prefix, "/", layer.name, "/", absl::StrCat("b", layer.batch));
      benchmark::RegisterBenchmark(name.c_str(),
                                   [name, layer, dtype = dtype](benchmark::State& state) {
                                     BM_Layer(state, name, layer, dtype);
                                   })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
  benchmark::RegisterBenchmark("fma_peak", BM_FmaPeak)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("weight_key_hash", BM_WeightKeyHash)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("server/filter_inline_vs_registered", BM_FilterInlineVsRegistered)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
}

}  // namespace
}  // namespace convserve

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  convserve::g_peak_gflops = convserve::MeasurePeak();
  std::printf("FMA peak: %.1f GFLOP/s fp32 (%s, %d threads)\n", convserve::g_peak_gflops,
              convserve::FmaIsa(), convserve::kThreads);
  std::printf(
      "oneDNN %s, ISA %s; ours = MakeSpec + OneDnnBackend::Run (threads=%d, warm "
      "weight cache); bare = one oneDNN primitive, NHWC, weights pre-reordered\n",
      convserve::OneDnnBackend::LibraryVersion().c_str(), convserve::OneDnnBackend::Isa().c_str(),
      convserve::kThreads);
  std::fflush(stdout);
  convserve::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  // Other processes on these 2 cores make OpenMP wait for its time slices
  // (per-call times quantised to ~8 ms): say so rather than let it pass.
  const double peak_after = convserve::MeasurePeak();
  std::printf("FMA peak after the run: %.1f GFLOP/s%s\n", peak_after,
              peak_after < 0.9 * convserve::g_peak_gflops
                  ? " -- WARNING: other processes competed for the cores; timings are unreliable"
                  : "");
  convserve::g_fixture.reset();
  convserve::g_server.reset();
  benchmark::Shutdown();
  return 0;
}
