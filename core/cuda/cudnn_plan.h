// A spec made ready for cuDNN: the descriptors of every stage of its
// CudnnGeometry and the algorithm each stage runs, chosen once per spec.
// Not thread-safe: a plan belongs to the worker whose cuDNN handle made it.
#pragma once

#include <cudnn.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/conv_spec.h"
#include "core/cuda/cudnn_geometry.h"

namespace convserve::cuda {

// Owns one cuDNN descriptor.
template <typename Descriptor, cudnnStatus_t (*Destroy)(Descriptor)>
class OwnedDescriptor {
 public:
  OwnedDescriptor() = default;
  ~OwnedDescriptor() {
    if (descriptor_ != nullptr) Destroy(descriptor_);
  }
  OwnedDescriptor(const OwnedDescriptor&) = delete;
  OwnedDescriptor& operator=(const OwnedDescriptor&) = delete;
  Descriptor* out() { return &descriptor_; }
  Descriptor get() const { return descriptor_; }

 private:
  Descriptor descriptor_ = nullptr;
};
using TensorDescriptor = OwnedDescriptor<cudnnTensorDescriptor_t, cudnnDestroyTensorDescriptor>;
using FilterDescriptor = OwnedDescriptor<cudnnFilterDescriptor_t, cudnnDestroyFilterDescriptor>;
using ConvolutionDescriptor =
    OwnedDescriptor<cudnnConvolutionDescriptor_t, cudnnDestroyConvolutionDescriptor>;

struct StagePlan {
  StageGeometry geometry;
  TensorDescriptor x, y_cudnn, y_tf, y_user;
  TensorDescriptor filter_tf, filter_packed;  // to transform TF's filter to `filter`
  FilterDescriptor filter;
  ConvolutionDescriptor convolution;
  // cudnnConvolutionFwdAlgo_t, or cudnnConvolutionBwdDataAlgo_t when backward_data.
  int algorithm = 0;
  size_t workspace_bytes = 0;
  // The algorithm's math: CUDNN_FMA_MATH is full float32 for float32 data.
  cudnnMathType_t math = CUDNN_FMA_MATH;
};

struct CudnnPlan {
  CudnnGeometry geometry;
  cudnnDataType_t data_type = CUDNN_DATA_FLOAT;
  std::vector<std::unique_ptr<StagePlan>> stages;
};

struct AlgorithmPolicy {
  // Time the algorithms and take the fastest; otherwise the first of the
  // heuristics' ranking that is deterministic.
  bool benchmark = false;
  size_t max_workspace_bytes = size_t{1} << 30;
};

// The plan of `spec`, which FitsCudnn. Computation types: float32 in float
// with FMA math only (TF32 when spec.allow_reduced_precision), float16 and
// bfloat16 in float (one rounding, tensor cores allowed), float64 in double.
// UNIMPLEMENTED when cuDNN has no algorithm for a stage within the policy.
absl::StatusOr<std::unique_ptr<CudnnPlan>> MakeCudnnPlan(cudnnHandle_t handle, const ConvSpec& spec,
                                                         const AlgorithmPolicy& policy);

}  // namespace convserve::cuda
