// The backend registry: names, factories and what each backend says of itself.
#include "core/backend_registry.h"

#include "core/make_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convserve {
namespace {

using ::testing::ElementsAre;

ConvSpec Conv2D(DataType dtype, Shape input = {1, 3, 3, 1}) {
  OperandInfo info;
  info.input = {dtype, std::move(input)};
  info.filter = {dtype, {2, 2, 1, 1}};
  Conv2DParams params;
  params.padding = Padding::kValid;
  absl::StatusOr<ConvSpec> spec = MakeSpec(params, info, SpecLimits{});
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

TEST(BackendRegistry, ListsOneDnnFirstThenTheReferenceThenCudaInCudaBuilds) {
#ifdef CONVSERVE_HAS_CUDA_BACKEND
  EXPECT_THAT(BackendNames(), ElementsAre("onednn", "reference", "cuda"));
  ASSERT_NE(FindBackend("cuda"), nullptr);
  EXPECT_TRUE(FindBackend("cuda")->per_device);
  EXPECT_NE(FindBackend("cuda")->list_devices, nullptr);
#else
  EXPECT_THAT(BackendNames(), ElementsAre("onednn", "reference"));
  EXPECT_EQ(FindBackend("cuda"), nullptr);
#endif
  for (const BackendEntry& entry : RegisteredBackends()) {
    EXPECT_EQ(entry.per_device, entry.list_devices != nullptr) << entry.name;
  }
  ASSERT_NE(FindBackend(kFallbackBackend), nullptr);
  EXPECT_TRUE(FindBackend(kFallbackBackend)->computes_everything);
}

#ifdef CONVSERVE_HAS_CUDA_BACKEND
// Without a usable device (every build machine without a GPU), the cuda
// entry says why in one line, and a backend made for a device anyway is
// UNAVAILABLE on every Run (the scheduler then takes its pool out of
// service) instead of failing to build or crashing.
TEST(BackendRegistry, CudaWithoutADeviceIsUnavailable) {
  const BackendEntry& cuda = *FindBackend("cuda");
  const absl::StatusOr<std::vector<DeviceInfo>> devices = cuda.list_devices();
  if (devices.ok()) GTEST_SKIP() << "this machine has a CUDA device";
  EXPECT_EQ(devices.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(devices.status().message()), ::testing::StartsWith("no CUDA device"));
  BackendOptions options;
  options.device = 0;
  std::unique_ptr<Backend> backend = cuda.make(options);
  EXPECT_EQ(backend->Describe().device_id, "cuda:0");
  const ConvSpec spec = Conv2D(DataType::kFloat32);
  const std::vector<float> input(9, 1.0f), filter(4, 1.0f);
  std::vector<float> output(4, -1.0f);
  Operands operands;
  operands.input = {
      DataType::kFloat32, {1, 3, 3, 1}, reinterpret_cast<const std::byte*>(input.data())};
  operands.filter = {
      DataType::kFloat32, {2, 2, 1, 1}, reinterpret_cast<const std::byte*>(filter.data())};
  const absl::Status status = backend->Run(
      spec, operands,
      {DataType::kFloat32, spec.result_shape, reinterpret_cast<std::byte*>(output.data())});
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(output, std::vector<float>(4, -1.0f)) << "nothing written";
  EXPECT_EQ(backend->DeviceBytes(), 0);
}
#endif

TEST(BackendRegistry, EveryFactoryBuildsABackendOfItsName) {
  auto cache = std::make_shared<WeightCache>(int64_t{1} << 20);
  for (const BackendEntry& entry : RegisteredBackends()) {
    SCOPED_TRACE(entry.name);
    std::unique_ptr<Backend> backend = entry.make({.threads = 1, .weight_cache = cache});
    ASSERT_NE(backend, nullptr);
    EXPECT_EQ(backend->Name(), entry.name);
    const BackendInfo info = backend->Describe();
    EXPECT_EQ(info.name, entry.name);
    EXPECT_FALSE(info.version.empty());
    EXPECT_FALSE(info.device.empty());
    EXPECT_FALSE(info.notes.empty());
    EXPECT_TRUE(backend->Computes(Conv2D(DataType::kFloat32)));
  }
}

TEST(BackendRegistry, OneDnnLeavesFloat64Int32AndEmptyTensorsToTheFallback) {
  std::unique_ptr<Backend> onednn = FindBackend("onednn")->make({});
  EXPECT_FALSE(FindBackend("onednn")->computes_everything);
  EXPECT_THAT(onednn->Describe().native_dtypes,
              ElementsAre(DataType::kFloat32, DataType::kFloat16, DataType::kBFloat16));
  EXPECT_TRUE(onednn->Computes(Conv2D(DataType::kBFloat16)));
  EXPECT_TRUE(onednn->Computes(Conv2D(DataType::kFloat16)));
  EXPECT_FALSE(onednn->Computes(Conv2D(DataType::kFloat64)));
  EXPECT_FALSE(onednn->Computes(Conv2D(DataType::kInt32)));
  EXPECT_FALSE(onednn->Computes(Conv2D(DataType::kFloat32, {0, 3, 3, 1})));
  ConvSpec extreme = Conv2D(DataType::kFloat32);
  extreme.dilations[1] = 1025;
  EXPECT_FALSE(onednn->Computes(extreme));
  extreme.dilations[1] = 1024;
  EXPECT_TRUE(onednn->Computes(extreme));
  extreme.strides[0] = int64_t{3} << 30;
  EXPECT_FALSE(onednn->Computes(extreme));

  std::unique_ptr<Backend> reference = FindBackend("reference")->make({});
  for (DataType dtype : kAllDataTypes) EXPECT_TRUE(reference->Computes(Conv2D(dtype)));
  EXPECT_TRUE(reference->Computes(Conv2D(DataType::kFloat32, {0, 3, 3, 1})));
  EXPECT_EQ(reference->Describe().native_dtypes.size(), std::size(kAllDataTypes));
}

}  // namespace
}  // namespace convserve
