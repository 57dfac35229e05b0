// Which accelerators the server runs workers on: the --cuda-devices setting
// read against the devices that the per-device backends
// (BackendEntry::per_device) list. The server runs one pool of one worker per
// selected device, ahead of its CPU pools.
//
// Contract: ParseDeviceList checks only the setting's syntax. SelectDevices
// asks each per-device entry for its devices (list_devices may initialise a
// driver: call it once, at start) and decides which get a worker.
// Thread safety: pure functions of their arguments (and of list_devices).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/backend_registry.h"

namespace convserve::server {

// The flag that names devices, for messages.
inline constexpr absl::string_view kDevicesFlag = "--cuda-devices";

// A parsed --cuda-devices value.
struct DeviceList {
  enum class Kind { kAll, kNone, kListed };
  Kind kind = Kind::kAll;
  std::vector<int> ordinals = {};  // kListed: distinct, in the order given
};

// "all" or "none" (any case), or comma-separated distinct ordinals, 0 or
// more ("0,1"); INVALID_ARGUMENT otherwise, quoting `text` and saying what
// is accepted (the caller names the flag).
absl::StatusOr<DeviceList> ParseDeviceList(absl::string_view text);

// One device a per-device backend listed.
struct ListedDevice {
  const BackendEntry* entry = nullptr;  // the backend that can use it
  DeviceInfo info = {};
  bool selected = false;  // whether the server runs a worker on it
};

struct DeviceSelection {
  // Every device listed, by entry (in `entries` order) then as its entry
  // listed them; empty for "none", which asks no backend.
  std::vector<ListedDevice> devices = {};
  // For "all" when no device is selected: why, in one line (no per-device
  // backend in this build, or each one's reason it has no device); else empty.
  std::string note = {};
};

// Reads `cuda_devices` (as ParseDeviceList) against the per-device backends
// of `entries` (usually RegisteredBackends(); the others are ignored).
// "all" selects every device listed and is never an error: with none, the
// server runs on the CPU alone and `note` says why. "none" selects nothing.
// A list must be honoured: INVALID_ARGUMENT, naming the flag, when this build
// has no per-device backend, when no backend can use a device (with their
// reasons), or when an ordinal is not among those listed.
absl::StatusOr<DeviceSelection> SelectDevices(absl::string_view cuda_devices,
                                              absl::Span<const BackendEntry> entries);

}  // namespace convserve::server
