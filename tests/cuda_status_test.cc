// CUDA and cuDNN results map to the gRPC codes the server promises; needs the
// libraries, not a device (their error strings work without one).
#include "core/cuda/cuda_status.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convserve::cuda {
namespace {

using ::testing::HasSubstr;

TEST(CudaStatus, SuccessIsOk) {
  EXPECT_TRUE(FromCuda(cudaSuccess, "cudaMalloc").ok());
  EXPECT_TRUE(FromCudnn(CUDNN_STATUS_SUCCESS, "cudnnCreate").ok());
}

TEST(CudaStatus, DeviceMemoryExhaustedIsResourceExhausted) {
  const absl::Status status = FromCuda(cudaErrorMemoryAllocation, "cudaMalloc");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(), HasSubstr("cudaMalloc: cudaErrorMemoryAllocation: "));
  for (cudnnStatus_t allocation : {CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED,
                                   CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED}) {
    EXPECT_EQ(FromCudnn(allocation, "cudnnBackendExecute").code(),
              absl::StatusCode::kResourceExhausted);
  }
}

TEST(CudaStatus, AProblemCudnnCannotRunIsUnimplementedSoAnotherPoolTakesIt) {
  for (cudnnStatus_t unsupported :
       {CUDNN_STATUS_NOT_SUPPORTED, CUDNN_STATUS_NOT_SUPPORTED_SHAPE,
        CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, CUDNN_STATUS_NOT_SUPPORTED_PADDING}) {
    const absl::Status status = FromCudnn(unsupported, "cudnnBackendFinalize");
    EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented) << status;
    EXPECT_THAT(status.message(), HasSubstr("cudnnBackendFinalize: CUDNN_STATUS_NOT_SUPPORTED"));
  }
}

TEST(CudaStatus, OtherFailuresAreInternalWithTheLibrarysMessage) {
  const absl::Status cuda = FromCuda(cudaErrorIllegalAddress, "cudaStreamSynchronize");
  EXPECT_EQ(cuda.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(cuda.message(), HasSubstr("cudaStreamSynchronize: cudaErrorIllegalAddress: "));
  EXPECT_THAT(cuda.message(), HasSubstr("illegal memory access"));
  // An installation cuDNN cannot run on is no reason to try the next pool.
  for (cudnnStatus_t failure :
       {CUDNN_STATUS_BAD_PARAM, CUDNN_STATUS_INTERNAL_ERROR, CUDNN_STATUS_EXECUTION_FAILED,
        CUDNN_STATUS_NOT_INITIALIZED, CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER,
        CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH,
        CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE}) {
    const absl::Status status = FromCudnn(failure, "cudnnBackendExecute");
    EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
    EXPECT_THAT(status.message(), HasSubstr("cudnnBackendExecute: CUDNN_STATUS_"));
  }
}

TEST(CudaStatus, KernelFaultsLoseTheDeviceOrdinaryErrorsDoNot) {
  for (cudaError_t lost : {cudaErrorIllegalAddress, cudaErrorLaunchFailure,
                           cudaErrorECCUncorrectable, cudaErrorLaunchTimeout, cudaErrorAssert}) {
    EXPECT_TRUE(IsDeviceLost(lost)) << cudaGetErrorName(lost);
  }
  for (cudaError_t recoverable :
       {cudaSuccess, cudaErrorMemoryAllocation, cudaErrorInvalidValue, cudaErrorNoDevice}) {
    EXPECT_FALSE(IsDeviceLost(recoverable)) << cudaGetErrorName(recoverable);
  }
}

}  // namespace
}  // namespace convserve::cuda
