// Reading and writing NumPy .npy files (format versions 1-3, C order).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace convserve::client {

struct NpyArray {
  std::string descr;           // NumPy dtype string, e.g. "<f4"
  std::vector<int64_t> shape;  // () for a scalar
  std::string data;            // row-major element bytes
};

// Parses .npy bytes. INVALID_ARGUMENT for a malformed file, a Fortran-order
// array, or data whose size does not match the header.
absl::StatusOr<NpyArray> ParseNpy(const std::string& bytes);
// Serialises as format version 1.0, or 2.0 when the header is too long for
// 1.0's 16-bit length (as NumPy does).
std::string SerializeNpy(const NpyArray& array);

absl::StatusOr<NpyArray> ReadNpyFile(const std::string& path);
absl::Status WriteNpyFile(const std::string& path, const NpyArray& array);

}  // namespace convserve::client
