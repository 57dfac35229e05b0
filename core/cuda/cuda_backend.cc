#include "core/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <atomic>
#include <cstring>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "core/cuda/cuda_devices.h"
#include "core/cuda/cuda_status.h"
#include "core/cuda/cudnn_geometry.h"
#include "core/cuda/cudnn_plan.h"
#include "core/cuda/device_memory.h"
#include "core/epilogue.h"
#include "core/status_macros.h"
#include "core/weight_cache.h"

namespace convserve::cuda {
namespace {

constexpr size_t kMaxPlans = 256;

// Every size the legacy cuDNN API takes is an int: specs with any larger
// scalar are not planned at all (their arithmetic could overflow int64).
bool ScalarsFitInt(const ConvSpec& s) {
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  for (int64_t v : {s.batch, s.in_channels, s.out_channels, s.groups, s.pointwise_out_channels,
                    s.pointwise_groups}) {
    if (v > kMax) return false;
  }
  for (int d = 0; d < s.rank; ++d) {
    for (int64_t v : {s.input_spatial[d], s.filter_spatial[d], s.output_spatial[d], s.strides[d],
                      s.dilations[d], s.pad_before[d], s.pad_after[d]}) {
      if (v > kMax) return false;
    }
  }
  return true;
}

bool ComputesDtype(DataType dtype, int compute_major) {
  switch (dtype) {
    case DataType::kFloat32:
    case DataType::kFloat16:
    case DataType::kFloat64: return true;
    case DataType::kBFloat16: return compute_major >= 8;  // Ampere and later
    case DataType::kInt32: return false;
  }
  return false;
}

// alpha = 1 and beta = 0 in the type cuDNN scales with (double for double data).
struct Scale {
  float one_f = 1.0f, zero_f = 0.0f;
  double one_d = 1.0, zero_d = 0.0;
  const void* One(DataType dtype) const {
    return dtype == DataType::kFloat64 ? static_cast<const void*>(&one_d) : &one_f;
  }
  const void* Zero(DataType dtype) const {
    return dtype == DataType::kFloat64 ? static_cast<const void*>(&zero_d) : &zero_f;
  }
};

// A filter in cuDNN's layout, resident on the device; freed on its device.
struct DeviceFilter {
  int device = 0;
  void* data = nullptr;
  ~DeviceFilter() {
    if (data == nullptr) return;
    int current = 0;
    cudaGetDevice(&current);
    cudaSetDevice(device);
    cudaFree(data);
    cudaSetDevice(current);
  }
};

}  // namespace

struct CudaBackend::Impl {
  CudaOptions options;
  // Fixed at construction.
  absl::Status init_error;
  cudaDeviceProp properties{};
  std::string cudnn_version;
  // The worker's, created on its first Run.
  cudaStream_t stream = nullptr;
  cudnnHandle_t handle = nullptr;
  // Set once the device is lost, for every later Run.
  absl::Status lost;

  std::atomic<int64_t> buffer_bytes{0};
  // Bytes of cached filters, for DeviceBytes on other threads (`filters`
  // itself is replaced on the worker's).
  std::atomic<int64_t> filter_bytes{0};
  DeviceBuffer input{&buffer_bytes}, result{&buffer_bytes}, intermediate{&buffer_bytes},
      scratch{&buffer_bytes}, workspace{&buffer_bytes}, filter_upload{&buffer_bytes};
  PinnedBuffer pinned_input, pinned_result, pinned_filter;
  std::unique_ptr<WeightCache> filters;
  absl::flat_hash_map<ConvSpec, std::unique_ptr<CudnnPlan>> plans;
  Scale scale;

  explicit Impl(CudaOptions o)
      : options(o), filters(std::make_unique<WeightCache>(o.weight_cache_bytes)) {}

  absl::Status Start();
  // A failed CUDA call's status; a lost device is UNAVAILABLE from now on.
  absl::Status Check(cudaError_t error, absl::string_view call);
  absl::Status CheckCudnn(cudnnStatus_t status, absl::string_view call);
  absl::StatusOr<CudnnPlan*> PlanFor(const ConvSpec& spec);
  // Shared: the cache may evict (or not keep) a filter while a request uses it.
  absl::StatusOr<std::shared_ptr<const void>> Filter(const ConvSpec& spec, const StagePlan& stage,
                                                     int index, const ConstTensorView& tf_filter,
                                                     std::optional<uint64_t> known_hash);
  // Frees every buffer and cached filter, for a retry after device memory ran out.
  void ReleaseMemory();
  absl::Status Execute(const ConvSpec& spec, const CudnnPlan& plan, const Operands& operands,
                       TensorView out);
  absl::Status RunStage(const ConvSpec& spec, const StagePlan& stage, const void* filter,
                        const std::byte* in, std::byte* out);
};

absl::Status CudaBackend::Impl::Check(cudaError_t error, absl::string_view call) {
  if (error == cudaSuccess) return absl::OkStatus();
  absl::Status status = FromCuda(error, call);
  if (IsDeviceLost(error)) {
    lost = absl::UnavailableError(
        absl::StrCat("CUDA device ", options.device, " is lost: ", status.message()));
    return lost;
  }
  return status;
}

absl::Status CudaBackend::Impl::CheckCudnn(cudnnStatus_t cudnn, absl::string_view call) {
  if (cudnn == CUDNN_STATUS_SUCCESS) return absl::OkStatus();
  // A kernel that faulted shows as an execution failure: the stream tells
  // whether the device survived it.
  if (CUDNN_STATUS_CATEGORY(cudnn) == CUDNN_STATUS_EXECUTION_FAILED) {
    CONVSERVE_RETURN_IF_ERROR(Check(cudaStreamSynchronize(stream), "cudaStreamSynchronize"));
  }
  return FromCudnn(cudnn, call);
}

absl::Status CudaBackend::Impl::Start() {
  CONVSERVE_RETURN_IF_ERROR(Check(cudaSetDevice(options.device), "cudaSetDevice"));
  if (handle != nullptr) return absl::OkStatus();
  if (stream == nullptr) {
    CONVSERVE_RETURN_IF_ERROR(
        Check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate"));
  }
  cudnnHandle_t created = nullptr;
  CONVSERVE_RETURN_IF_ERROR(CheckCudnn(cudnnCreate(&created), "cudnnCreate"));
  if (absl::Status status = CheckCudnn(cudnnSetStream(created, stream), "cudnnSetStream");
      !status.ok()) {
    cudnnDestroy(created);
    return status;
  }
  handle = created;
  return absl::OkStatus();
}

absl::StatusOr<CudnnPlan*> CudaBackend::Impl::PlanFor(const ConvSpec& spec) {
  if (auto it = plans.find(spec); it != plans.end()) return it->second.get();
  if (plans.size() >= kMaxPlans) plans.clear();
  const AlgorithmPolicy policy{.benchmark = options.benchmark_algorithms};
  absl::StatusOr<std::unique_ptr<CudnnPlan>> plan = MakeCudnnPlan(handle, spec, policy);
  if (!plan.ok()) return plan.status();
  return plans.emplace(spec, *std::move(plan)).first->second.get();
}

// The stage's filter in cuDNN's layout: from the device cache, or uploaded
// and transformed now (and cached).
absl::StatusOr<std::shared_ptr<const void>> CudaBackend::Impl::Filter(
    const ConvSpec& spec, const StagePlan& stage, int index, const ConstTensorView& tf_filter,
    std::optional<uint64_t> known_hash) {
  const StageGeometry& g = stage.geometry;
  const int64_t bytes = g.filter.Elements() * ItemSize(spec.dtype);
  // The filter's identity is its bytes and the layout it is kept in, not
  // the rest of the spec: every batch size and padding shares it.
  ConvSpec layout_key;
  layout_key.dtype = spec.dtype;
  layout_key.channels_last = g.filter_channels_last;
  layout_key.rank = g.spatial_rank;
  layout_key.out_channels = g.filter.dims[0];
  layout_key.in_channels = g.filter.dims[1];
  for (int d = 0; d < g.spatial_rank; ++d) layout_key.filter_spatial[d] = g.filter.dims[2 + d];
  const uint64_t hash =
      known_hash ? *known_hash
                 : ContentHash(absl::string_view(reinterpret_cast<const char*>(tf_filter.data),
                                                 static_cast<size_t>(bytes)));
  const WeightKey key{hash, bytes, layout_key, index};
  if (std::shared_ptr<const void> cached = filters->Find(key)) return cached;
  CONVSERVE_RETURN_IF_ERROR(pinned_filter.Reserve(bytes));
  CONVSERVE_RETURN_IF_ERROR(filter_upload.Reserve(bytes));
  std::memcpy(pinned_filter.data(), tf_filter.data, static_cast<size_t>(bytes));
  CONVSERVE_RETURN_IF_ERROR(Check(cudaMemcpyAsync(filter_upload.data(), pinned_filter.data(), bytes,
                                                  cudaMemcpyHostToDevice, stream),
                                  "cudaMemcpyAsync"));
  auto filter = std::make_shared<DeviceFilter>();
  filter->device = options.device;
  CONVSERVE_RETURN_IF_ERROR(
      Check(cudaMalloc(&filter->data, static_cast<size_t>(bytes)), "cudaMalloc"));
  CONVSERVE_RETURN_IF_ERROR(
      CheckCudnn(cudnnTransformTensor(handle, scale.One(spec.dtype), stage.filter_tf.get(),
                                      filter_upload.data(), scale.Zero(spec.dtype),
                                      stage.filter_packed.get(), filter->data),
                 "cudnnTransformTensor"));
  // pinned_filter is reused by the next upload: finish this one first.
  CONVSERVE_RETURN_IF_ERROR(Check(cudaStreamSynchronize(stream), "cudaStreamSynchronize"));
  filters->Insert(key, filter, bytes);
  filter_bytes.store(filters->bytes());
  return filter;
}

void CudaBackend::Impl::ReleaseMemory() {
  filters = std::make_unique<WeightCache>(options.weight_cache_bytes);
  filter_bytes.store(0);
  for (DeviceBuffer* buffer :
       {&input, &result, &intermediate, &scratch, &workspace, &filter_upload}) {
    buffer->Release();
  }
}

absl::Status CudaBackend::Impl::RunStage(const ConvSpec& spec, const StagePlan& stage,
                                         const void* filter, const std::byte* in, std::byte* out) {
  const StageGeometry& g = stage.geometry;
  const int64_t item = ItemSize(spec.dtype);
  const void* one = scale.One(spec.dtype);
  const void* zero = scale.Zero(spec.dtype);
  if (stage.workspace_bytes > 0) {
    CONVSERVE_RETURN_IF_ERROR(workspace.Reserve(static_cast<int64_t>(stage.workspace_bytes)));
  }
  if (g.backward_data) {
    // dy (`in`, TF's y) into TF's window of cuDNN's zeroed y, unless they agree.
    const void* dy = in;
    if (!g.y_direct) {
      CONVSERVE_RETURN_IF_ERROR(scratch.Reserve(g.y_cudnn.Span() * item));
      CONVSERVE_RETURN_IF_ERROR(Check(
          cudaMemsetAsync(scratch.data(), 0, g.y_cudnn.Span() * item, stream), "cudaMemsetAsync"));
      CONVSERVE_RETURN_IF_ERROR(
          CheckCudnn(cudnnTransformTensor(handle, one, stage.y_user.get(), in, zero,
                                          stage.y_tf.get(), scratch.data() + g.y_offset * item),
                     "cudnnTransformTensor"));
      dy = scratch.data();
    }
    return CheckCudnn(
        cudnnConvolutionBackwardData(
            handle, one, stage.filter.get(), filter, stage.y_cudnn.get(), dy,
            stage.convolution.get(), static_cast<cudnnConvolutionBwdDataAlgo_t>(stage.algorithm),
            workspace.data(), stage.workspace_bytes, zero, stage.x.get(), out),
        "cudnnConvolutionBackwardData");
  }
  std::byte* y = out;
  if (!g.y_direct) {
    CONVSERVE_RETURN_IF_ERROR(scratch.Reserve(g.y_cudnn.Span() * item));
    y = scratch.data();
  }
  CONVSERVE_RETURN_IF_ERROR(CheckCudnn(
      cudnnConvolutionForward(
          handle, one, stage.x.get(), in, stage.filter.get(), filter, stage.convolution.get(),
          static_cast<cudnnConvolutionFwdAlgo_t>(stage.algorithm), workspace.data(),
          stage.workspace_bytes, zero, stage.y_cudnn.get(), y),
      "cudnnConvolutionForward"));
  if (g.y_direct) return absl::OkStatus();
  // TF's window of cuDNN's y, in the caller's layout.
  return CheckCudnn(cudnnTransformTensor(handle, one, stage.y_tf.get(), y + g.y_offset * item, zero,
                                         stage.y_user.get(), out),
                    "cudnnTransformTensor");
}

absl::Status CudaBackend::Impl::Execute(const ConvSpec& spec, const CudnnPlan& plan,
                                        const Operands& operands, TensorView out) {
  const int64_t item = ItemSize(spec.dtype);
  const int64_t input_bytes =
      spec.transposed ? spec.OutputElements() * item : spec.InputElements() * item;
  const int64_t result_bytes = spec.ResultElements() * item;
  CONVSERVE_RETURN_IF_ERROR(pinned_input.Reserve(input_bytes));
  CONVSERVE_RETURN_IF_ERROR(pinned_result.Reserve(result_bytes));
  CONVSERVE_RETURN_IF_ERROR(input.Reserve(input_bytes));
  CONVSERVE_RETURN_IF_ERROR(result.Reserve(result_bytes));
  if (plan.stages.size() > 1) {
    CONVSERVE_RETURN_IF_ERROR(intermediate.Reserve(plan.geometry.intermediate.Span() * item));
  }
  // Filters first: an upload synchronises the stream, which must not wait
  // on this request's input copy.
  // Held until the stream is done with them: the cache may evict a filter
  // (or not keep one larger than its budget) while this request uses it.
  std::vector<std::shared_ptr<const void>> filters_on_device;
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    const bool first = i == 0;
    CONVSERVE_ASSIGN_OR_RETURN(
        std::shared_ptr<const void> filter,
        Filter(spec, *plan.stages[i], static_cast<int>(i),
               first ? operands.filter : operands.pointwise_filter,
               first ? operands.filter_hash : operands.pointwise_filter_hash));
    filters_on_device.push_back(std::move(filter));
  }
  std::memcpy(pinned_input.data(), operands.input.data, static_cast<size_t>(input_bytes));
  CONVSERVE_RETURN_IF_ERROR(Check(cudaMemcpyAsync(input.data(), pinned_input.data(), input_bytes,
                                                  cudaMemcpyHostToDevice, stream),
                                  "cudaMemcpyAsync"));
  const std::byte* in = input.data();
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    const bool last = i + 1 == plan.stages.size();
    std::byte* stage_out = last ? result.data() : intermediate.data();
    const void* filter = static_cast<const DeviceFilter*>(filters_on_device[i].get())->data;
    CONVSERVE_RETURN_IF_ERROR(RunStage(spec, *plan.stages[i], filter, in, stage_out));
    in = stage_out;
  }
  CONVSERVE_RETURN_IF_ERROR(Check(cudaMemcpyAsync(pinned_result.data(), result.data(), result_bytes,
                                                  cudaMemcpyDeviceToHost, stream),
                                  "cudaMemcpyAsync"));
  CONVSERVE_RETURN_IF_ERROR(Check(cudaStreamSynchronize(stream), "cudaStreamSynchronize"));
  // Only now, with every step done, is anything written to `out`.
  std::memcpy(out.data, pinned_result.data(), static_cast<size_t>(result_bytes));
  if (spec.has_bias || spec.activation != Activation::kNone) {
    ApplyEpilogue(spec, operands.bias, out);
  }
  return absl::OkStatus();
}

CudaBackend::CudaBackend(CudaOptions options) : impl_(std::make_unique<Impl>(options)) {
  if (const cudaError_t error = cudaGetDeviceProperties(&impl_->properties, options.device);
      error != cudaSuccess) {
    impl_->init_error = absl::UnavailableError(
        absl::StrCat("CUDA device ", options.device,
                     " cannot be used: ", FromCuda(error, "cudaGetDeviceProperties").message()));
  }
  impl_->cudnn_version = CudnnVersionString(static_cast<int64_t>(cudnnGetVersion()));
}

CudaBackend::~CudaBackend() {
  if (impl_->stream == nullptr) return;
  cudaSetDevice(impl_->options.device);
  impl_->plans.clear();
  if (impl_->handle != nullptr) cudnnDestroy(impl_->handle);
  cudaStreamDestroy(impl_->stream);
  // The buffers and the cached filters free themselves on this device.
}

BackendInfo CudaBackend::Describe() const {
  BackendInfo info{
      .name = std::string(Name()),
      .version = absl::StrCat("cuDNN ", impl_->cudnn_version),
      .device = impl_->init_error.ok()
                    ? absl::StrCat(impl_->properties.name, " (compute capability ",
                                   impl_->properties.major, ".", impl_->properties.minor, ")")
                    : std::string(impl_->init_error.message()),
      .device_id = absl::StrCat("cuda:", impl_->options.device),
      .native_dtypes = {},
      .notes =
          "float32 in float32 (TF32 only when a request allows reduced precision); "
          "float16 and bfloat16 accumulate in float and round once; float64 in double; "
          "bias and activation on the host; int32 and empty tensors are not computed here",
  };
  for (DataType dtype : kAllDataTypes) {
    if (ComputesDtype(dtype, impl_->properties.major)) info.native_dtypes.push_back(dtype);
  }
  return info;
}

bool CudaBackend::Computes(const ConvSpec& spec) const {
  return ComputesDtype(spec.dtype, impl_->init_error.ok() ? impl_->properties.major : 0) &&
         spec.InputElements() > 0 && spec.OutputElements() > 0 && ScalarsFitInt(spec) &&
         FitsCudnn(PlanCudnnGeometry(spec));
}

std::string CudaBackend::Precision(const ConvSpec& spec) const {
  if (spec.dtype == DataType::kFloat32 && spec.allow_reduced_precision) {
    const auto it = impl_->plans.find(spec);
    if (it != impl_->plans.end()) {
      for (const auto& stage : it->second->stages) {
        if (stage->math != CUDNN_FMA_MATH) return "tf32";
      }
    }
  }
  return std::string(DtypeName(spec.dtype));
}

int64_t CudaBackend::DeviceBytes() const {
  return impl_->buffer_bytes.load(std::memory_order_relaxed) +
         impl_->filter_bytes.load(std::memory_order_relaxed);
}

absl::Status CudaBackend::Run(const ConvSpec& spec, const Operands& operands, TensorView out) {
  if (!impl_->init_error.ok()) return impl_->init_error;
  if (!impl_->lost.ok()) return impl_->lost;
  if (!Computes(spec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the cuda backend does not compute ", spec.DebugString()));
  }
  CONVSERVE_RETURN_IF_ERROR(impl_->Start());
  CONVSERVE_ASSIGN_OR_RETURN(const CudnnPlan* plan, impl_->PlanFor(spec));
  absl::Status status = impl_->Execute(spec, *plan, operands, out);
  if (!status.ok()) {
    // Let whatever was queued finish before the next Run reuses the staging
    // buffers (and learn whether the device survived).
    impl_->Check(cudaStreamSynchronize(impl_->stream), "cudaStreamSynchronize").IgnoreError();
  }
  if (absl::IsResourceExhausted(status) && impl_->lost.ok()) {
    // Device memory ran out: free the cached filters and grown buffers, and
    // retry once with only this request's.
    impl_->ReleaseMemory();
    status = impl_->Execute(spec, *plan, operands, out);
    if (!status.ok()) {
      impl_->Check(cudaStreamSynchronize(impl_->stream), "cudaStreamSynchronize").IgnoreError();
    }
  }
  if (!impl_->lost.ok()) return impl_->lost;
  return status;
}

}  // namespace convserve::cuda
