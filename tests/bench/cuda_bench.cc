// convserve-cuda-bench: how close ConvServe's cuDNN path comes to bare cuDNN.
//
// For the ResNet-50 layers of resnet50_layers.h (conv2d, NHWC, SAME) at batch
// 1 and 32, in float32, float32 with reduced precision allowed (tf32: the
// spec's allow_reduced_precision), float16 and bfloat16, each benchmark
// measures, interleaved in the same iterations:
//   ours: MakeSpec from the op's TensorFlow parameters (as the server does) and
//         CudaBackend::Run on CUDA device 0, as a server worker runs it: the
//         operands in (pageable) host memory, the result back in host memory,
//         so the copies both ways, the plan and device filter cache lookups
//         and the synchronisation count: the whole path. The filter's hash is
//         given, as for a registered filter; the backend instance is warm
//         (plan made, filter cached).
//   bare: cudnnConvolutionForward alone, on device buffers already resident,
//         NHWC activations and filter, with the algorithm cuDNN's heuristics
//         rank first (cudnnGetConvolutionForwardAlgorithm_v7) under the same
//         math rules as the backend: FMA math only for float32, TF32 allowed
//         for tf32, tensor cores for the 16-bit types; accumulation in float.
//         Timed with CUDA events over bursts of back-to-back calls.
// FLOPs are 2 x the multiply-adds of the direct convolution. Counters:
// ours_GFLOPs, bare_GFLOPs, ours_vs_bare (bare time / ours time: 1 is
// bare cuDNN's speed), ours_ms, bare_ms, and rel_err (max |ours - bare| /
// max |bare|: both compute the same convolution). The label names bare's
// algorithm and whether it is deterministic (ours always runs a deterministic
// one).
//
// Without a GPU it prints the one-line reason and exits 0. Served GFLOP/s (the
// same layers through the gRPC server) come from convserve-perf; see
// scripts/gpu_check.sh.

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "benchmark/benchmark.h"
#include "core/conv_spec.h"
#include "core/cuda/cuda_backend.h"
#include "core/cuda/cuda_devices.h"
#include "core/cuda/cuda_status.h"
#include "core/element_types.h"
#include "core/make_spec.h"
#include "core/status_macros.h"
#include "core/weight_cache.h"
#include "tests/bench/bench_stats.h"
#include "tests/bench/resnet50_layers.h"

namespace convserve::cuda {
namespace {

using bench::Clock;
using bench::Median;
using bench::Seconds;

constexpr int kDevice = 0;
constexpr size_t kMaxWorkspaceBytes = size_t{1} << 30;  // as the backend's default policy

// ---------------------------------------------------------------------------
// What is measured.

enum class Mode { kF32, kTf32, kF16, kBf16 };

const char* ModeLabel(Mode mode) {
  switch (mode) {
    case Mode::kF32: return "f32";
    case Mode::kTf32: return "tf32";
    case Mode::kF16: return "f16";
    case Mode::kBf16: return "bf16";
  }
  return "?";
}

DataType DtypeOf(Mode mode) {
  switch (mode) {
    case Mode::kF16: return DataType::kFloat16;
    case Mode::kBf16: return DataType::kBFloat16;
    default: return DataType::kFloat32;
  }
}

cudnnDataType_t CudnnType(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat16: return CUDNN_DATA_HALF;
    case DataType::kBFloat16: return CUDNN_DATA_BFLOAT16;
    default: return CUDNN_DATA_FLOAT;
  }
}

// The math type set on the descriptor, and whether a ranked algorithm's math
// may run: the backend's rules (core/cuda/cudnn_plan.cc).
cudnnMathType_t MathFor(Mode mode) {
  switch (mode) {
    case Mode::kF32: return CUDNN_FMA_MATH;
    case Mode::kTf32: return CUDNN_DEFAULT_MATH;
    default: return CUDNN_TENSOR_OP_MATH;
  }
}
bool MathAllowed(Mode mode, cudnnMathType_t math) {
  if (mode == Mode::kF32) return math == CUDNN_FMA_MATH;
  return math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;  // float32 data in float16
}

// ---------------------------------------------------------------------------
// Memory.

struct DeviceFree {
  void operator()(void* p) const { cudaFree(p); }
};
using DeviceMemory = std::unique_ptr<std::byte, DeviceFree>;

absl::StatusOr<DeviceMemory> DeviceAlloc(size_t bytes) {
  void* p = nullptr;
  CONVSERVE_RETURN_IF_ERROR(FromCuda(cudaMalloc(&p, std::max<size_t>(bytes, 1)), "cudaMalloc"));
  return DeviceMemory(static_cast<std::byte*>(p));
}

// Host bytes of `elements` values of `dtype`, uniform in [-scale, scale].
std::vector<std::byte> RandomHost(int64_t elements, DataType dtype, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<std::byte> bytes(static_cast<size_t>(elements) * ItemSize(dtype));
  DispatchDataType(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = reinterpret_cast<T*>(bytes.data());
    for (int64_t i = 0; i < elements; ++i) p[i] = static_cast<T>(dist(rng));
  });
  return bytes;
}

double Element(const std::vector<std::byte>& bytes, DataType dtype, int64_t i) {
  return DispatchDataType(dtype, [&](auto tag) {
    using T = decltype(tag);
    return static_cast<double>(reinterpret_cast<const T*>(bytes.data())[i]);
  });
}

// max |a - b| / max |b|.
double RelativeError(const std::vector<std::byte>& a, const std::vector<std::byte>& b,
                     DataType dtype, int64_t elements) {
  return bench::MaxRelativeError(
      elements, [&](int64_t i) { return Element(a, dtype, i); },
      [&](int64_t i) { return Element(b, dtype, i); });
}

// ---------------------------------------------------------------------------
// The process's stream and cuDNN handle for the bare runs.

struct Library {
  cudaStream_t stream = nullptr;
  cudnnHandle_t handle = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  absl::Status status;
};

Library& Lib() {
  static Library* lib = [] {
    auto* l = new Library;
    l->status = [&]() -> absl::Status {
      CONVSERVE_RETURN_IF_ERROR(FromCuda(cudaSetDevice(kDevice), "cudaSetDevice"));
      CONVSERVE_RETURN_IF_ERROR(
          FromCuda(cudaStreamCreateWithFlags(&l->stream, cudaStreamNonBlocking), "cudaStream"));
      CONVSERVE_RETURN_IF_ERROR(FromCudnn(cudnnCreate(&l->handle), "cudnnCreate"));
      CONVSERVE_RETURN_IF_ERROR(FromCudnn(cudnnSetStream(l->handle, l->stream), "cudnnSetStream"));
      CONVSERVE_RETURN_IF_ERROR(FromCuda(cudaEventCreate(&l->start), "cudaEventCreate"));
      CONVSERVE_RETURN_IF_ERROR(FromCuda(cudaEventCreate(&l->stop), "cudaEventCreate"));
      return absl::OkStatus();
    }();
    return l;
  }();
  return *lib;
}

// ---------------------------------------------------------------------------
// Bare cuDNN: one cudnnConvolutionForward on resident device buffers.

#define RETURN_IF_CUDNN(call) CONVSERVE_RETURN_IF_ERROR(FromCudnn((call), #call))

class Bare {
 public:
  Bare() = default;
  Bare(const Bare&) = delete;
  Bare& operator=(const Bare&) = delete;
  ~Bare() {
    if (x_ != nullptr) cudnnDestroyTensorDescriptor(x_);
    if (y_ != nullptr) cudnnDestroyTensorDescriptor(y_);
    if (w_ != nullptr) cudnnDestroyFilterDescriptor(w_);
    if (conv_ != nullptr) cudnnDestroyConvolutionDescriptor(conv_);
  }

  // NHWC x [n, size, size, c] (*) KRSC w [k, r, r, c] -> y [n, size, size, k],
  // stride 1, symmetric padding (r - 1) / 2: TF's SAME for odd r. `filter_krsc`
  // is already in cuDNN's NHWC filter layout.
  absl::Status Init(Mode mode, int n, int size, int c, int k, int r, const void* input,
                    const void* filter_krsc) {
    const DataType dtype = DtypeOf(mode);
    const cudnnDataType_t type = CudnnType(dtype);
    const cudnnHandle_t handle = Lib().handle;
    const int pad = (r - 1) / 2;
    RETURN_IF_CUDNN(cudnnCreateTensorDescriptor(&x_));
    RETURN_IF_CUDNN(cudnnCreateTensorDescriptor(&y_));
    RETURN_IF_CUDNN(cudnnCreateFilterDescriptor(&w_));
    RETURN_IF_CUDNN(cudnnCreateConvolutionDescriptor(&conv_));
    RETURN_IF_CUDNN(cudnnSetTensor4dDescriptor(x_, CUDNN_TENSOR_NHWC, type, n, c, size, size));
    RETURN_IF_CUDNN(cudnnSetTensor4dDescriptor(y_, CUDNN_TENSOR_NHWC, type, n, k, size, size));
    RETURN_IF_CUDNN(cudnnSetFilter4dDescriptor(w_, type, CUDNN_TENSOR_NHWC, k, c, r, r));
    RETURN_IF_CUDNN(cudnnSetConvolution2dDescriptor(conv_, pad, pad, 1, 1, 1, 1,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    RETURN_IF_CUDNN(cudnnSetConvolutionMathType(conv_, MathFor(mode)));

    std::array<cudnnConvolutionFwdAlgoPerf_t, 16> results{};
    int count = 0;
    RETURN_IF_CUDNN(cudnnGetConvolutionForwardAlgorithm_v7(
        handle, x_, w_, conv_, y_, static_cast<int>(results.size()), &count, results.data()));
    const cudnnConvolutionFwdAlgoPerf_t* chosen = nullptr;
    for (int i = 0; i < count && chosen == nullptr; ++i) {
      const cudnnConvolutionFwdAlgoPerf_t& perf = results[static_cast<size_t>(i)];
      if (perf.status == CUDNN_STATUS_SUCCESS && perf.memory <= kMaxWorkspaceBytes &&
          MathAllowed(mode, perf.mathType)) {
        chosen = &perf;
      }
    }
    if (chosen == nullptr) {
      return absl::UnimplementedError("cuDNN's heuristics offer no algorithm for bare");
    }
    algorithm_ = chosen->algo;
    RETURN_IF_CUDNN(cudnnSetConvolutionMathType(conv_, chosen->mathType));
    description_ =
        absl::StrCat("bare=algo", static_cast<int>(chosen->algo),
                     chosen->mathType == CUDNN_FMA_MATH ? "/fma" : "/tensor-op",
                     chosen->determinism == CUDNN_DETERMINISTIC ? "/deterministic" : "/atomics");

    const size_t item = ItemSize(dtype);
    input_bytes_ = static_cast<size_t>(n) * size * size * c * item;
    filter_bytes_ = static_cast<size_t>(k) * r * r * c * item;
    output_bytes_ = static_cast<size_t>(n) * size * size * k * item;
    CONVSERVE_ASSIGN_OR_RETURN(x_data_, DeviceAlloc(input_bytes_));
    CONVSERVE_ASSIGN_OR_RETURN(w_data_, DeviceAlloc(filter_bytes_));
    CONVSERVE_ASSIGN_OR_RETURN(y_data_, DeviceAlloc(output_bytes_));
    CONVSERVE_ASSIGN_OR_RETURN(workspace_, DeviceAlloc(chosen->memory));
    workspace_bytes_ = chosen->memory;
    CONVSERVE_RETURN_IF_ERROR(
        FromCuda(cudaMemcpy(x_data_.get(), input, input_bytes_, cudaMemcpyHostToDevice), "copy"));
    CONVSERVE_RETURN_IF_ERROR(FromCuda(
        cudaMemcpy(w_data_.get(), filter_krsc, filter_bytes_, cudaMemcpyHostToDevice), "copy"));
    return absl::OkStatus();
  }

  // Enqueues one convolution on the library's stream.
  absl::Status Enqueue() {
    const float one = 1.0f, zero = 0.0f;
    return FromCudnn(cudnnConvolutionForward(Lib().handle, &one, x_, x_data_.get(), w_,
                                             w_data_.get(), conv_, algorithm_, workspace_.get(),
                                             workspace_bytes_, &zero, y_, y_data_.get()),
                     "cudnnConvolutionForward");
  }

  // Seconds per call over a burst of `calls` back-to-back calls (CUDA events).
  absl::StatusOr<double> TimeBurst(int calls) {
    Library& lib = Lib();
    CONVSERVE_RETURN_IF_ERROR(FromCuda(cudaEventRecord(lib.start, lib.stream), "cudaEventRecord"));
    for (int i = 0; i < calls; ++i) CONVSERVE_RETURN_IF_ERROR(Enqueue());
    CONVSERVE_RETURN_IF_ERROR(FromCuda(cudaEventRecord(lib.stop, lib.stream), "cudaEventRecord"));
    CONVSERVE_RETURN_IF_ERROR(FromCuda(cudaEventSynchronize(lib.stop), "cudaEventSynchronize"));
    float ms = 0;
    CONVSERVE_RETURN_IF_ERROR(
        FromCuda(cudaEventElapsedTime(&ms, lib.start, lib.stop), "cudaEventElapsedTime"));
    return ms * 1e-3 / calls;
  }

  absl::StatusOr<std::vector<std::byte>> Output() {
    std::vector<std::byte> out(output_bytes_);
    CONVSERVE_RETURN_IF_ERROR(FromCuda(cudaStreamSynchronize(Lib().stream), "sync"));
    CONVSERVE_RETURN_IF_ERROR(FromCuda(
        cudaMemcpy(out.data(), y_data_.get(), output_bytes_, cudaMemcpyDeviceToHost), "copy"));
    return out;
  }

  const std::string& description() const { return description_; }

 private:
  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr;
  cudnnFilterDescriptor_t w_ = nullptr;
  cudnnConvolutionDescriptor_t conv_ = nullptr;
  cudnnConvolutionFwdAlgo_t algorithm_ = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  DeviceMemory x_data_, w_data_, y_data_, workspace_;
  size_t input_bytes_ = 0, filter_bytes_ = 0, output_bytes_ = 0, workspace_bytes_ = 0;
  std::string description_;
};

// TF's filter [r, r, c, k] as cuDNN's NHWC filter [k, r, r, c].
std::vector<std::byte> ToKrsc(const std::vector<std::byte>& rsck, int r, int c, int k,
                              size_t item) {
  std::vector<std::byte> krsc(rsck.size());
  for (int y = 0; y < r; ++y) {
    for (int x = 0; x < r; ++x) {
      for (int ci = 0; ci < c; ++ci) {
        for (int ko = 0; ko < k; ++ko) {
          const size_t from = ((static_cast<size_t>(y) * r + x) * c + ci) * k + ko;
          const size_t to = ((static_cast<size_t>(ko) * r + y) * r + x) * c + ci;
          std::memcpy(&krsc[to * item], &rsck[from * item], item);
        }
      }
    }
  }
  return krsc;
}

// ---------------------------------------------------------------------------
// Our path, as a server worker runs it.

CudaBackend& OurBackend() {
  static CudaBackend* backend = new CudaBackend(CudaOptions{.device = kDevice});
  return *backend;
}

struct LayerFixture {
  std::string name;
  std::string error;
  ConvSpec spec;
  DataType dtype = DataType::kFloat32;
  Shape input_shape, filter_shape;
  std::vector<std::byte> input, filter, result;
  uint64_t filter_hash = 0;
  Bare bare;
  int64_t macs = 0;
  double rel_err = 0;

  Operands operands() const {
    Operands ops;
    ops.input = {dtype, input_shape, input.data()};
    ops.filter = {dtype, filter_shape, filter.data()};
    ops.filter_hash = filter_hash;
    return ops;
  }
  absl::Status RunOurs() {
    return OurBackend().Run(spec, operands(), {dtype, spec.result_shape, result.data()});
  }
};

std::unique_ptr<LayerFixture> MakeFixture(const std::string& name,
                                          const bench::ResNet50Layer& layer, int batch, Mode mode) {
  auto f = std::make_unique<LayerFixture>();
  f->name = name;
  f->dtype = DtypeOf(mode);
  const absl::Status status = [&]() -> absl::Status {
    CONVSERVE_RETURN_IF_ERROR(Lib().status);
    const int n = batch, size = static_cast<int>(layer.size),
              c = static_cast<int>(layer.in_channels), k = static_cast<int>(layer.out_channels),
              r = static_cast<int>(layer.kernel);
    Conv2DParams params;
    params.strides = {1, 1, 1, 1};
    params.padding = Padding::kSame;
    params.data_format = "NHWC";
    OperandInfo info;
    f->input_shape = {n, size, size, c};
    f->filter_shape = {r, r, c, k};
    info.input = {f->dtype, f->input_shape};
    info.filter = {f->dtype, f->filter_shape};
    CONVSERVE_ASSIGN_OR_RETURN(f->spec, MakeSpec(params, info, SpecLimits{}));
    f->spec.allow_reduced_precision = mode == Mode::kTf32;
    if (!OurBackend().Computes(f->spec)) {
      return absl::UnimplementedError(
          absl::StrCat("CudaBackend does not compute ", ModeLabel(mode), " on this GPU"));
    }
    f->macs = int64_t{n} * size * size * k * c * r * r;
    const float filter_scale = 1.0f / std::sqrt(static_cast<float>(c * r * r));
    f->input = RandomHost(int64_t{n} * size * size * c, f->dtype, 1.0f, 1);
    f->filter = RandomHost(int64_t{r} * r * c * k, f->dtype, filter_scale, 2);
    f->result.assign(static_cast<size_t>(int64_t{n} * size * size * k) * ItemSize(f->dtype),
                     std::byte{0});
    f->filter_hash = ContentHash(
        absl::string_view(reinterpret_cast<const char*>(f->filter.data()), f->filter.size()));
    CONVSERVE_RETURN_IF_ERROR(f->bare.Init(mode, n, size, c, k, r, f->input.data(),
                                           ToKrsc(f->filter, r, c, k, ItemSize(f->dtype)).data()));
    // Warm both paths (plans, the device filter cache, staging buffers), and
    // check they compute the same convolution.
    CONVSERVE_RETURN_IF_ERROR(f->RunOurs());
    CONVSERVE_RETURN_IF_ERROR(f->bare.Enqueue());
    CONVSERVE_ASSIGN_OR_RETURN(const std::vector<std::byte> bare_out, f->bare.Output());
    f->rel_err = RelativeError(f->result, bare_out, f->dtype, int64_t{n} * size * size * k);
    return absl::OkStatus();
  }();
  if (!status.ok()) f->error = std::string(status.message());
  return f;
}

// Google Benchmark calls a function several times while it sizes the run;
// keep the current layer's fixture across those calls.
std::unique_ptr<LayerFixture> g_fixture;

LayerFixture& FixtureFor(const std::string& name, const bench::ResNet50Layer& layer, int batch,
                         Mode mode) {
  if (!g_fixture || g_fixture->name != name) {
    g_fixture.reset();  // free the previous layer's buffers first
    g_fixture = MakeFixture(name, layer, batch, mode);
  }
  return *g_fixture;
}

void BM_Layer(benchmark::State& state, const std::string& name, const bench::ResNet50Layer& layer,
              int batch, Mode mode) {
  LayerFixture& f = FixtureFor(name, layer, batch, mode);
  if (!f.error.empty()) {
    state.SkipWithError(f.error.c_str());
    return;
  }
  std::vector<double> ours_s, bare_s;
  absl::Status status;
  // Bursts of calls back to back, as a worker serves a stream of requests for
  // one layer; the two paths alternate which goes first.
  constexpr int kBurst = 8;
  auto ours_burst = [&] {
    for (int i = 0; i < kBurst && status.ok(); ++i) {
      const Clock::time_point start = Clock::now();
      status.Update(f.RunOurs());
      ours_s.push_back(Seconds(start, Clock::now()));
    }
  };
  auto bare_burst = [&] {
    absl::StatusOr<double> per_call = f.bare.TimeBurst(kBurst);
    if (per_call.ok()) {
      bare_s.push_back(*per_call);
    } else {
      status.Update(per_call.status());
    }
  };
  for (auto _ : state) {
    if (ours_s.size() % (2 * kBurst) == 0) {
      ours_burst();
      bare_burst();
    } else {
      bare_burst();
      ours_burst();
    }
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      break;
    }
  }
  if (ours_s.empty() || bare_s.empty() || !status.ok()) return;
  const double ours = Median(ours_s), bare = Median(bare_s);
  const double flops = 2.0 * static_cast<double>(f.macs);
  state.counters["GFLOP"] = flops * 1e-9;
  state.counters["ours_ms"] = ours * 1e3;
  state.counters["bare_ms"] = bare * 1e3;
  state.counters["ours_GFLOPs"] = flops / ours * 1e-9;
  state.counters["bare_GFLOPs"] = flops / bare * 1e-9;
  state.counters["ours_vs_bare"] = bare / ours;
  state.counters["rel_err"] = f.rel_err;
  state.SetLabel(f.bare.description());
}

void RegisterAll() {
  for (Mode mode : {Mode::kF32, Mode::kTf32, Mode::kF16, Mode::kBf16}) {
    for (int batch : {1, 32}) {
      for (const bench::ResNet50Layer& layer : bench::kResNet50Layers) {
        const std::string name = absl::StrCat(ModeLabel(mode), "/", layer.name, "/b", batch);
        benchmark::RegisterBenchmark(name.c_str(),
                                     [name, layer, batch, mode](benchmark::State& state) {
                                       BM_Layer(state, name, layer, batch, mode);
                                     })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
  }
}

}  // namespace
}  // namespace convserve::cuda

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  namespace cuda = convserve::cuda;
  const absl::StatusOr<std::vector<cuda::CudaDevice>> devices = cuda::ListCudaDevices();
  if (!devices.ok()) {
    std::printf("convserve-cuda-bench: nothing to measure: %s\n",
                std::string(devices.status().message()).c_str());
    return 0;
  }
  const cuda::CudaDevice& device = devices->front();
  const cuda::CudaVersions versions = cuda::GetCudaVersions();
  std::printf(
      "GPU %d: %s (compute capability %d.%d, %.1f GiB); CUDA runtime %d, driver %d, cuDNN %lld\n"
      "ours = MakeSpec + CudaBackend::Run (host operands and result, warm plan and filter "
      "cache); bare = cudnnConvolutionForward on resident NHWC device buffers, heuristics' "
      "first algorithm\n",
      device.ordinal, device.name.c_str(), device.compute_major, device.compute_minor,
      static_cast<double>(device.memory_bytes) / (1 << 30), versions.runtime, versions.driver,
      static_cast<long long>(versions.cudnn));
  std::fflush(stdout);
  cuda::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  cuda::g_fixture.reset();
  benchmark::Shutdown();
  return 0;
}
