// ListCudaDevices on whatever machine runs the tests: the devices it finds
// (on a GPU machine), or the one-line reason there are none.
#include "core/cuda/cuda_devices.h"

#include <iostream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convserve::cuda {
namespace {

using ::testing::HasSubstr;

TEST(CudaDevices, VersionsOfTheLinkedLibraries) {
  const CudaVersions versions = GetCudaVersions();
  EXPECT_GE(versions.runtime, 12000);
  EXPECT_GE(versions.cudnn, 90000);
  EXPECT_GE(versions.driver, 0);
}

TEST(CudaDevices, EachDeviceIsDescribedOrTheReasonForNoneIsGiven) {
  const absl::StatusOr<std::vector<CudaDevice>> devices = ListCudaDevices();
  if (!devices.ok()) {
    std::cout << devices.status().message() << "\n";
    EXPECT_EQ(devices.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(devices.status().message(), HasSubstr("no CUDA device to use: "));
    // The runtime works without a device: the error leaves nothing behind.
    EXPECT_GE(GetCudaVersions().runtime, 12000);
    return;
  }
  ASSERT_FALSE(devices->empty());
  for (size_t i = 0; i < devices->size(); ++i) {
    const CudaDevice& device = (*devices)[i];
    EXPECT_EQ(device.ordinal, static_cast<int>(i));
    EXPECT_FALSE(device.name.empty());
    EXPECT_GT(device.memory_bytes, 0);
    EXPECT_GE(device.compute_major, 5);
  }
}

}  // namespace
}  // namespace convserve::cuda
