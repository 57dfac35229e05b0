#include "server/device_selection.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace convserve::server {
namespace {

absl::Status BadList(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", text, "\": ", why, "; give all, none, or comma-separated device ordinals such as 0,1"));
}

}  // namespace

absl::StatusOr<DeviceList> ParseDeviceList(absl::string_view text) {
  const std::string word = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (word == "all") return DeviceList{.kind = DeviceList::Kind::kAll};
  if (word == "none") return DeviceList{.kind = DeviceList::Kind::kNone};
  DeviceList list{.kind = DeviceList::Kind::kListed};
  for (absl::string_view part : absl::StrSplit(word, ',')) {
    part = absl::StripAsciiWhitespace(part);
    int ordinal = -1;
    if (part.empty() || !std::all_of(part.begin(), part.end(), absl::ascii_isdigit) ||
        !absl::SimpleAtoi(part, &ordinal)) {
      return BadList(text, absl::StrCat("\"", part, "\" is not a device ordinal"));
    }
    if (std::find(list.ordinals.begin(), list.ordinals.end(), ordinal) != list.ordinals.end()) {
      return BadList(text, absl::StrCat("device ", ordinal, " is given twice"));
    }
    list.ordinals.push_back(ordinal);
  }
  return list;
}

absl::StatusOr<DeviceSelection> SelectDevices(absl::string_view cuda_devices,
                                              absl::Span<const BackendEntry> entries) {
  absl::StatusOr<DeviceList> list = ParseDeviceList(cuda_devices);
  if (!list.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(kDevicesFlag, " ", list.status().message()));
  }
  DeviceSelection selection;
  if (list->kind == DeviceList::Kind::kNone) return selection;

  std::vector<std::string> reasons;  // why each per-device backend has no device
  bool any_per_device = false;
  for (const BackendEntry& entry : entries) {
    if (!entry.per_device) continue;
    any_per_device = true;
    absl::StatusOr<std::vector<DeviceInfo>> devices =
        entry.list_devices != nullptr ? entry.list_devices()
                                      : absl::FailedPreconditionError("it cannot list its devices");
    if (!devices.ok()) {
      reasons.push_back(absl::StrCat(entry.name, ": ", devices.status().message()));
      continue;
    }
    if (devices->empty()) reasons.push_back(absl::StrCat(entry.name, ": no device found"));
    for (DeviceInfo& info : *devices) {
      selection.devices.push_back(ListedDevice{.entry = &entry, .info = std::move(info)});
    }
  }

  if (list->kind == DeviceList::Kind::kAll) {
    for (ListedDevice& device : selection.devices) device.selected = true;
    if (!any_per_device) {
      selection.note = "this build has no GPU backend (built without CUDA)";
    } else if (selection.devices.empty()) {
      selection.note = absl::StrJoin(reasons, "; ");
    }
    return selection;
  }

  const std::string flag = absl::StrCat(kDevicesFlag, " ", absl::StrJoin(list->ordinals, ","));
  if (!any_per_device) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": this build has no GPU backend (built without CUDA); use ",
                     kDevicesFlag, " none or all"));
  }
  if (selection.devices.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": no GPU can be used (", absl::StrJoin(reasons, "; "), ")"));
  }
  for (int ordinal : list->ordinals) {
    bool found = false;
    for (ListedDevice& device : selection.devices) {
      if (device.info.ordinal != ordinal) continue;
      device.selected = true;
      found = true;
    }
    if (!found) {
      std::vector<int> present;
      for (const ListedDevice& device : selection.devices) present.push_back(device.info.ordinal);
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": there is no device ", ordinal,
                       " (devices here: ", absl::StrJoin(present, ", "), ")"));
    }
  }
  return selection;
}

}  // namespace convserve::server
