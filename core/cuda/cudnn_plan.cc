#include "core/cuda/cudnn_plan.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "core/cuda/cuda_status.h"
#include "core/status_macros.h"

namespace convserve::cuda {
namespace {

// Returns FromCudnn's status, naming the call, unless it succeeded.
#define RETURN_IF_CUDNN_ERROR(call)                                          \
  do {                                                                       \
    if (const cudnnStatus_t cudnn_ = (call); cudnn_ != CUDNN_STATUS_SUCCESS) \
      return FromCudnn(cudnn_, #call);                                       \
  } while (false)

cudnnDataType_t DataTypeOf(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat16: return CUDNN_DATA_HALF;
    case DataType::kBFloat16: return CUDNN_DATA_BFLOAT16;
    case DataType::kFloat64: return CUDNN_DATA_DOUBLE;
    default: return CUDNN_DATA_FLOAT;
  }
}

std::array<int, kMaxTensorRank> Ints(const std::array<int64_t, kMaxTensorRank>& values) {
  std::array<int, kMaxTensorRank> ints{};
  for (size_t i = 0; i < values.size(); ++i) ints[i] = static_cast<int>(values[i]);
  return ints;
}

absl::Status SetTensor(TensorDescriptor& descriptor, const TensorLayout& layout,
                       cudnnDataType_t type) {
  RETURN_IF_CUDNN_ERROR(cudnnCreateTensorDescriptor(descriptor.out()));
  const std::array<int, kMaxTensorRank> dims = Ints(layout.dims), strides = Ints(layout.strides);
  RETURN_IF_CUDNN_ERROR(
      cudnnSetTensorNdDescriptor(descriptor.get(), type, layout.rank, dims.data(), strides.data()));
  return absl::OkStatus();
}

// The math cuDNN may use for `spec`, and whether an algorithm's math is allowed.
cudnnMathType_t MathTypeFor(const ConvSpec& spec) {
  switch (spec.dtype) {
    case DataType::kFloat32:
      return spec.allow_reduced_precision ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
    case DataType::kFloat16:
    case DataType::kBFloat16: return CUDNN_TENSOR_OP_MATH;
    default: return CUDNN_DEFAULT_MATH;
  }
}
bool MathAllowed(const ConvSpec& spec, cudnnMathType_t math) {
  if (spec.dtype == DataType::kFloat32 && !spec.allow_reduced_precision) {
    return math == CUDNN_FMA_MATH;
  }
  // ALLOW_CONVERSION would compute float32 data in float16.
  return math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

absl::Status SetConvolution(StagePlan& stage, const ConvSpec& spec, cudnnDataType_t compute) {
  const StageGeometry& g = stage.geometry;
  std::array<int, kMaxSpatialRank> pads{}, strides{}, dilations{};
  for (int d = 0; d < g.spatial_rank; ++d) {
    pads[d] = static_cast<int>(g.pads[d]);
    strides[d] = static_cast<int>(g.strides[d]);
    dilations[d] = static_cast<int>(g.dilations[d]);
  }
  RETURN_IF_CUDNN_ERROR(cudnnCreateConvolutionDescriptor(stage.convolution.out()));
  RETURN_IF_CUDNN_ERROR(cudnnSetConvolutionNdDescriptor(
      stage.convolution.get(), g.spatial_rank, pads.data(), strides.data(), dilations.data(),
      CUDNN_CROSS_CORRELATION, compute));
  RETURN_IF_CUDNN_ERROR(
      cudnnSetConvolutionGroupCount(stage.convolution.get(), static_cast<int>(g.groups)));
  RETURN_IF_CUDNN_ERROR(cudnnSetConvolutionMathType(stage.convolution.get(), MathTypeFor(spec)));
  return absl::OkStatus();
}

// Picks from `results` (cuDNN's ranking, best first) and sets its math type.
template <typename Perf>
absl::Status Choose(const Perf* results, int count, const ConvSpec& spec,
                    const AlgorithmPolicy& policy, StagePlan& stage) {
  for (int i = 0; i < count; ++i) {
    const Perf& perf = results[i];
    if (perf.status != CUDNN_STATUS_SUCCESS || perf.memory > policy.max_workspace_bytes ||
        !MathAllowed(spec, perf.mathType)) {
      continue;
    }
    if (!policy.benchmark && perf.determinism != CUDNN_DETERMINISTIC) continue;
    stage.algorithm = static_cast<int>(perf.algo);
    stage.workspace_bytes = perf.memory;
    stage.math = perf.mathType;
    RETURN_IF_CUDNN_ERROR(cudnnSetConvolutionMathType(stage.convolution.get(), perf.mathType));
    return absl::OkStatus();
  }
  return absl::UnimplementedError(absl::StrCat(
      "cuDNN has no ", policy.benchmark ? "" : "deterministic ", "algorithm for ",
      spec.DebugString(), " within ", policy.max_workspace_bytes, " bytes of workspace"));
}

constexpr int kMaxAlgorithms = 16;

absl::Status ChooseAlgorithm(cudnnHandle_t handle, const ConvSpec& spec,
                             const AlgorithmPolicy& policy, StagePlan& stage) {
  int count = 0;
  if (stage.geometry.backward_data) {
    std::array<cudnnConvolutionBwdDataAlgoPerf_t, kMaxAlgorithms> results{};
    if (policy.benchmark) {
      RETURN_IF_CUDNN_ERROR(cudnnFindConvolutionBackwardDataAlgorithm(
          handle, stage.filter.get(), stage.y_cudnn.get(), stage.convolution.get(), stage.x.get(),
          kMaxAlgorithms, &count, results.data()));
    } else {
      RETURN_IF_CUDNN_ERROR(cudnnGetConvolutionBackwardDataAlgorithm_v7(
          handle, stage.filter.get(), stage.y_cudnn.get(), stage.convolution.get(), stage.x.get(),
          kMaxAlgorithms, &count, results.data()));
    }
    return Choose(results.data(), count, spec, policy, stage);
  }
  std::array<cudnnConvolutionFwdAlgoPerf_t, kMaxAlgorithms> results{};
  if (policy.benchmark) {
    RETURN_IF_CUDNN_ERROR(cudnnFindConvolutionForwardAlgorithm(
        handle, stage.x.get(), stage.filter.get(), stage.convolution.get(), stage.y_cudnn.get(),
        kMaxAlgorithms, &count, results.data()));
  } else {
    RETURN_IF_CUDNN_ERROR(cudnnGetConvolutionForwardAlgorithm_v7(
        handle, stage.x.get(), stage.filter.get(), stage.convolution.get(), stage.y_cudnn.get(),
        kMaxAlgorithms, &count, results.data()));
  }
  return Choose(results.data(), count, spec, policy, stage);
}

absl::StatusOr<std::unique_ptr<StagePlan>> MakeStagePlan(cudnnHandle_t handle, const ConvSpec& spec,
                                                         const StageGeometry& geometry,
                                                         const AlgorithmPolicy& policy) {
  auto stage = std::make_unique<StagePlan>();
  stage->geometry = geometry;
  const cudnnDataType_t type = DataTypeOf(spec.dtype);
  const cudnnDataType_t compute =
      spec.dtype == DataType::kFloat64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  for (auto [descriptor, layout] :
       {std::pair{&stage->x, &geometry.x}, std::pair{&stage->y_cudnn, &geometry.y_cudnn},
        std::pair{&stage->y_tf, &geometry.y_tf}, std::pair{&stage->y_user, &geometry.y_user},
        std::pair{&stage->filter_tf, &geometry.filter_tf},
        std::pair{&stage->filter_packed, &geometry.filter}}) {
    CONVSERVE_RETURN_IF_ERROR(SetTensor(*descriptor, *layout, type));
  }
  RETURN_IF_CUDNN_ERROR(cudnnCreateFilterDescriptor(stage->filter.out()));
  const std::array<int, kMaxTensorRank> filter_dims = Ints(geometry.filter.dims);
  RETURN_IF_CUDNN_ERROR(cudnnSetFilterNdDescriptor(
      stage->filter.get(), type,
      geometry.filter_channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW, geometry.filter.rank,
      filter_dims.data()));
  CONVSERVE_RETURN_IF_ERROR(SetConvolution(*stage, spec, compute));

  // cuDNN must agree with the geometry on the forward output's size.
  std::array<int, kMaxTensorRank> output{};
  RETURN_IF_CUDNN_ERROR(cudnnGetConvolutionNdForwardOutputDim(stage->convolution.get(),
                                                              stage->x.get(), stage->filter.get(),
                                                              geometry.x.rank, output.data()));
  for (int i = 0; i < geometry.y_cudnn.rank; ++i) {
    if (output[i] != geometry.y_cudnn.dims[i]) {
      return absl::InternalError(absl::StrCat("cuDNN's output dimension ", i, " is ", output[i],
                                              ", not ", geometry.y_cudnn.dims[i], ", for ",
                                              spec.DebugString()));
    }
  }
  CONVSERVE_RETURN_IF_ERROR(ChooseAlgorithm(handle, spec, policy, *stage));
  return stage;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CudnnPlan>> MakeCudnnPlan(cudnnHandle_t handle, const ConvSpec& spec,
                                                         const AlgorithmPolicy& policy) {
  auto plan = std::make_unique<CudnnPlan>();
  plan->geometry = PlanCudnnGeometry(spec);
  plan->data_type = DataTypeOf(spec.dtype);
  for (const StageGeometry& geometry : plan->geometry.stages) {
    CONVSERVE_ASSIGN_OR_RETURN(std::unique_ptr<StagePlan> stage,
                               MakeStagePlan(handle, spec, geometry, policy));
    plan->stages.push_back(std::move(stage));
  }
  return plan;
}

}  // namespace convserve::cuda
