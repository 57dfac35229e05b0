// CUDA runtime and cuDNN results as absl::Status, with the codes the server
// promises for GPU failures:
//   - device or host memory exhausted: RESOURCE_EXHAUSTED;
//   - cuDNN has no engine for the problem (CUDNN_STATUS_NOT_SUPPORTED and its
//     shape, type, layout and padding kinds): UNIMPLEMENTED, so that the
//     scheduler hands the job to the next pool;
//   - anything else, including an installation cuDNN cannot run on (driver,
//     runtime, architecture or sub-library mismatches): INTERNAL.
// Every message names the call and carries the library's own text.
// Thread-safe (the libraries' error strings are static).
#pragma once

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace convserve::cuda {

absl::Status FromCuda(cudaError_t error, absl::string_view call);
absl::Status FromCudnn(cudnnStatus_t status, absl::string_view call);

// Whether `error` leaves the device (its context) unusable for every later
// call: a kernel fault, an uncorrectable ECC error, a device that went away.
// The worker that sees one takes its pool out of service. cuDNN reports such
// faults as CUDNN_STATUS_EXECUTION_FAILED*: the worker then asks the stream
// (cudaStreamSynchronize) for the CUDA error behind it.
bool IsDeviceLost(cudaError_t error);

}  // namespace convserve::cuda
