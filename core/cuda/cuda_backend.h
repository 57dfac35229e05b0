// The GPU backend on cuDNN: one instance per worker, each bound to one CUDA
// device (the server runs one worker per GPU).
//
// What it computes, on device:
//   - forward convolution (cudnnConvolutionForward), grouped for depthwise and
//     grouped conv2d, and backward data (cudnnConvolutionBackwardData) for the
//     transposed ops; 1-D (as 2-D with a height of 1), 2-D and 3-D; both
//     layouts in place (descriptors carry the client's strides); dilations;
//   - TensorFlow's padding from cuDNN's symmetric pads plus a crop (forward)
//     or an embedding of dy (backward), see symmetric_padding.h;
//   - separable as depthwise, rounding to the dtype, then pointwise;
//   - float32 in full float32 (FMA math, no TF32) unless the spec allows
//     reduced precision; float16 and bfloat16 with float accumulation and one
//     rounding; float64 in double.
// The bias and activation epilogue runs on the host as the CPU backends run
// it (core/epilogue.h), on the result as it arrives, so its bytes are TF's.
// int32, empty tensors, and specs whose sizes exceed cuDNN's int dimensions
// are not computed here (Computes is false).
//
// Memory: the instance owns a CUDA stream, a cuDNN handle, device buffers and
// pinned host staging buffers that grow to the largest request and are
// reused. Filters are transformed to cuDNN's layout once and kept in device
// memory in an LRU cache keyed by content (a registered filter's hash), up
// to CudaOptions::weight_cache_bytes. Plans (descriptors, the chosen
// algorithm and its workspace size) are cached per spec.
//
// Determinism: each spec runs the algorithm cuDNN's heuristics rank first
// among the deterministic ones, so a request always gives the same bytes;
// with benchmark_algorithms, cuDNN times them and the fastest runs.
//
// Errors: UNIMPLEMENTED when cuDNN has no engine for a spec (nothing
// written; the scheduler hands the job on); RESOURCE_EXHAUSTED when device
// memory runs out; UNAVAILABLE once the device is lost (this instance never
// computes again); INTERNAL with the library's message otherwise.
//
// Not thread-safe: one instance per worker thread. Name, Describe and
// Computes are thread-safe.
#pragma once

#include <cstdint>
#include <memory>

#include "core/backend.h"

namespace convserve::cuda {

struct CudaOptions {
  int device = 0;  // CUDA ordinal
  int64_t weight_cache_bytes = int64_t{256} << 20;
  bool benchmark_algorithms = false;
};

class CudaBackend final : public Backend {
 public:
  // Never fails: a device that cannot be used makes every Run UNAVAILABLE,
  // with the reason.
  explicit CudaBackend(CudaOptions options);
  ~CudaBackend() override;

  absl::string_view Name() const override { return "cuda"; }
  BackendInfo Describe() const override;
  bool Computes(const ConvSpec& spec) const override;
  int64_t DeviceBytes() const override;
  // "tf32" when the spec's plan lets cuDNN use TF32 (a float32 spec that
  // allows reduced precision, with an algorithm not restricted to FMA).
  std::string Precision(const ConvSpec& spec) const override;
  absl::Status Run(const ConvSpec& spec, const Operands& operands, TensorView out) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convserve::cuda
