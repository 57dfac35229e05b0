// The compute interface every backend (reference, oneDNN, CUDA) implements,
// and the description a backend gives of itself.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/conv_spec.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace convserve {

// The tensors of one request, in the client's layout (see ConvSpec).
// Views are borrowed for the duration of Run.
struct Operands {
  ConstTensorView input;             // x, or dy when spec.transposed
  ConstTensorView filter;            // spatial + [in / groups, out]
  ConstTensorView pointwise_filter;  // [1, 1, out_channels, pointwise_out_channels]
  ConstTensorView bias;              // [ResultChannels()], when spec.has_bias
  // ContentHash of the filters' bytes when the caller already knows it (a
  // registered filter); otherwise a backend that caches weights computes it.
  std::optional<uint64_t> filter_hash, pointwise_filter_hash;
};

// BackendInfo::device_id of the backends that compute on the host's CPU.
inline constexpr char kCpuDeviceId[] = "cpu";

// What a backend says of itself to clients (GetServerInfo) and logs.
struct BackendInfo {
  std::string name;     // as in the backend registry, e.g. "onednn"
  std::string version;  // of the library that computes
  std::string device;   // where it computes, e.g. the CPU instruction set
  // Which device, short, for timing, metrics labels and logs: "cpu", or
  // "cuda:N" for the GPU of CUDA ordinal N.
  std::string device_id = kCpuDeviceId;
  std::vector<DataType> native_dtypes;  // computed without the reference loops
  std::string notes;                    // how the other dtypes are handled

  bool operator==(const BackendInfo&) const = default;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Name, Describe, Computes and DeviceBytes are thread-safe and may be called while
  // another thread is in Run.

  // Short name reported to clients, e.g. "reference".
  virtual absl::string_view Name() const = 0;
  virtual BackendInfo Describe() const = 0;
  // Whether Run computes `spec`; a pure function of the spec, so callers can
  // route a request to a backend before it runs.
  virtual bool Computes(const ConvSpec& spec) const = 0;
  // Bytes of accelerator memory this instance holds (buffers, cached
  // weights); 0 for CPU backends. Thread-safe, for metrics.
  virtual int64_t DeviceBytes() const { return 0; }
  // The arithmetic Run computed `spec` in, as the reply's timing reports it:
  // the dtype's TensorFlow name ("float32", "bfloat16", ...), or the reduced
  // precision a float32 spec that allows it ran in ("bfloat16" products on a
  // CPU, "tf32" on a GPU). Called on the thread that ran Run, after it.
  virtual std::string Precision(const ConvSpec& spec) const {
    return std::string(DtypeName(spec.dtype));
  }
  // Whether Run computes each image of `spec` (the batch dimension is
  // spec.batch) to the same bytes as it would alone, or in any other batch of
  // specs that differ from `spec` only in batch (and result_shape[0]). Dynamic
  // batching (server/scheduler.h) concatenates requests into one Run only
  // where this holds, so that batching never changes a result's bytes. A pure
  // function of the spec; false unless the backend has shown it.
  virtual bool BatchInvariant(const ConvSpec& spec) const {
    (void)spec;
    return false;
  }

  // Computes `spec` on `operands` into `out`, whose dtype is spec.dtype and
  // whose shape is spec.result_shape, already allocated by the caller.
  // `spec` must come from MakeSpec, Computes(spec) must hold (else
  // FAILED_PRECONDITION), and the operands must match it. UNIMPLEMENTED
  // means the backend found at run time that it cannot take this spec, before
  // writing anything: the caller may hand it to another backend.
  // Not thread-safe unless the backend says otherwise: use one instance per
  // worker thread.
  virtual absl::Status Run(const ConvSpec& spec, const Operands& operands, TensorView out) = 0;
};

}  // namespace convserve
