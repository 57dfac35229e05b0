// --cuda-devices against fake per-device backends: its syntax, "all" never
// failing (with the one-line reason when it finds nothing), and an explicit
// list that must be honoured.
#include "server/device_selection.h"

#include <atomic>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convserve::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::atomic<int> list_calls{0};

DeviceInfo Gpu(int ordinal, std::string name) {
  DeviceInfo info;
  info.id = "cuda:" + std::to_string(ordinal);
  info.ordinal = ordinal;
  info.name = std::move(name);
  return info;
}

absl::StatusOr<std::vector<DeviceInfo>> TwoDevices() {
  ++list_calls;
  return std::vector<DeviceInfo>{Gpu(0, "first"), Gpu(1, "second")};
}

absl::StatusOr<std::vector<DeviceInfo>> NoDriver() {
  ++list_calls;
  return absl::FailedPreconditionError("no CUDA driver is loaded");
}

constexpr BackendEntry kCpuOnly[] = {{.name = "cpu"}};
constexpr BackendEntry kWithGpus[] = {
    {.name = "gpu", .per_device = true, .list_devices = TwoDevices}, {.name = "cpu"}};
constexpr BackendEntry kWithoutDriver[] = {
    {.name = "gpu", .per_device = true, .list_devices = NoDriver}, {.name = "cpu"}};

std::vector<std::string> SelectedIds(const DeviceSelection& selection) {
  std::vector<std::string> ids;
  for (const ListedDevice& device : selection.devices) {
    if (device.selected) ids.push_back(device.info.id);
  }
  return ids;
}

TEST(ParseDeviceListTest, AllNoneOrDistinctOrdinals) {
  EXPECT_EQ(ParseDeviceList("all")->kind, DeviceList::Kind::kAll);
  EXPECT_EQ(ParseDeviceList(" ALL ")->kind, DeviceList::Kind::kAll);
  EXPECT_EQ(ParseDeviceList("None")->kind, DeviceList::Kind::kNone);
  const absl::StatusOr<DeviceList> list = ParseDeviceList("1, 0,3");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->kind, DeviceList::Kind::kListed);
  EXPECT_THAT(list->ordinals, ElementsAre(1, 0, 3));

  for (const char* bad : {"", "some", "0,", ",1", "-1", "1.5", "0x1", "1 2", "99999999999"}) {
    const absl::StatusOr<DeviceList> parsed = ParseDeviceList(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(parsed.status())) << "\"" << bad << "\"";
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("give all, none"));
  }
  EXPECT_THAT(std::string(ParseDeviceList("0,1,0").status().message()),
              HasSubstr("device 0 is given twice"));
}

TEST(SelectDevicesTest, AllSelectsEveryDeviceListed) {
  const absl::StatusOr<DeviceSelection> selection = SelectDevices("all", kWithGpus);
  ASSERT_TRUE(selection.ok()) << selection.status();
  EXPECT_THAT(SelectedIds(*selection), ElementsAre("cuda:0", "cuda:1"));
  EXPECT_EQ(selection->devices[1].info.name, "second");
  EXPECT_EQ(selection->devices[1].entry, &kWithGpus[0]);
  EXPECT_EQ(selection->note, "");
}

TEST(SelectDevicesTest, AllWithoutDevicesRunsOnTheCpuAndSaysWhy) {
  absl::StatusOr<DeviceSelection> selection = SelectDevices("all", kCpuOnly);
  ASSERT_TRUE(selection.ok()) << selection.status();
  EXPECT_TRUE(selection->devices.empty());
  EXPECT_EQ(selection->note, "this build has no GPU backend (built without CUDA)");

  selection = SelectDevices("all", kWithoutDriver);
  ASSERT_TRUE(selection.ok()) << selection.status();
  EXPECT_TRUE(selection->devices.empty());
  EXPECT_EQ(selection->note, "gpu: no CUDA driver is loaded");
}

TEST(SelectDevicesTest, NoneAsksNoBackend) {
  list_calls = 0;
  const absl::StatusOr<DeviceSelection> selection = SelectDevices("none", kWithGpus);
  ASSERT_TRUE(selection.ok()) << selection.status();
  EXPECT_TRUE(selection->devices.empty());
  EXPECT_EQ(selection->note, "");
  EXPECT_EQ(list_calls.load(), 0);
}

TEST(SelectDevicesTest, AListSelectsThoseDevicesAndListsTheOthers) {
  const absl::StatusOr<DeviceSelection> selection = SelectDevices("1", kWithGpus);
  ASSERT_TRUE(selection.ok()) << selection.status();
  ASSERT_EQ(selection->devices.size(), 2u) << "GetServerInfo lists the unselected too";
  EXPECT_THAT(SelectedIds(*selection), ElementsAre("cuda:1"));
}

TEST(SelectDevicesTest, AListThatCannotBeHonouredIsAnError) {
  const struct {
    absl::string_view value;
    absl::Span<const BackendEntry> entries;
    std::string message;
  } cases[] = {
      {"0", kCpuOnly,
       "--cuda-devices 0: this build has no GPU backend (built without CUDA); use --cuda-devices "
       "none or all"},
      {"0,1", kWithoutDriver,
       "--cuda-devices 0,1: no GPU can be used (gpu: no CUDA driver is "
       "loaded)"},
      {"1,2", kWithGpus, "--cuda-devices 1,2: there is no device 2 (devices here: 0, 1)"},
      {"zero", kWithGpus, "--cuda-devices \"zero\": \"zero\" is not a device ordinal"},
  };
  for (const auto& c : cases) {
    const absl::StatusOr<DeviceSelection> selection = SelectDevices(c.value, c.entries);
    EXPECT_TRUE(absl::IsInvalidArgument(selection.status())) << c.value;
    EXPECT_THAT(std::string(selection.status().message()), HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace convserve::server
