// The production CPU backend on oneDNN.
//
// float32 and bfloat16 run natively (bfloat16 on AMX where the CPU has it,
// except 3-D and all-padding windows, which oneDNN 2.6.3 gets wrong in
// bfloat16 and which compute in float32); float16 is converted to float32 on
// the way in, computed, and rounded once on the way out. float64 and int32,
// which oneDNN has no kernels for, empty tensors and extreme windows are not
// computed here (Computes is false): the server routes them to another pool.
// Activations stay in the client's layout at the edges: channels-first
// tensors are reordered to channels-last for the compute, never run on
// oneDNN's plain-NCHW path. Weights are reordered once per (filter content,
// spec) into oneDNN's blocked layout and kept in a shared WeightCache.
#pragma once

#include <memory>
#include <string>

#include "core/backend.h"
#include "core/weight_cache.h"

namespace convserve {

struct OneDnnOptions {
  // OpenMP threads each Run uses (a convolution under 1 MFLOP uses one).
  // Workers x threads should not exceed the cores.
  int threads = 1;
  // Reordered weights shared by all workers; null disables caching.
  std::shared_ptr<WeightCache> weight_cache;
};

// Not thread-safe: use one instance per worker thread. Each instance owns its
// primitives, buffers and scratchpads, so no oneDNN primitive ever executes on
// two threads at once.
class OneDnnBackend final : public Backend {
 public:
  explicit OneDnnBackend(OneDnnOptions options);
  ~OneDnnBackend() override;

  absl::string_view Name() const override { return "onednn"; }
  BackendInfo Describe() const override;
  // float32, bfloat16 and float16 specs whose tensors are not empty and whose
  // strides, dilations and pads are at most 1024 (oneDNN refuses or is slow
  // to plan larger ones).
  bool Computes(const ConvSpec& spec) const override;
  // "bfloat16" for a float32 spec computed in bfloat16 (see ReducedFloat32).
  std::string Precision(const ConvSpec& spec) const override;
  // What it computes, on an instruction set where each image's bytes have
  // been found not to depend on the batch (tests/batch_invariance_test.cc,
  // which checks the claim wherever it runs); elsewhere false, so that
  // nothing is batched until the test has passed there.
  bool BatchInvariant(const ConvSpec& spec) const override;
  // UNIMPLEMENTED when oneDNN has no primitive for the spec (it refuses some
  // extreme strides and dilations), before anything is written to `out`.
  absl::Status Run(const ConvSpec& spec, const Operands& operands, TensorView out) override;
  // The OpenMP threads Run computes `spec` on: one under 1 MFLOP (a team
  // costs more than it saves there), else OneDnnOptions::threads. It depends
  // on the spec alone, so a request's bytes do not depend on where it ran.
  int Threads(const ConvSpec& spec) const;

  // oneDNN's version and the instruction set it dispatches to.
  static std::string LibraryVersion();
  static std::string Isa();
  // Whether oneDNN computes `dtype` (possibly in a wider type).
  static bool ComputesDtype(DataType dtype);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convserve
