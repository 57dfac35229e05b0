// Non-owning views of dense, row-major tensors in caller-owned memory.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/dtype.h"
#include "core/shape.h"

namespace convserve {

// A read-only tensor. The bytes belong to the caller and must outlive the view.
struct ConstTensorView {
  DataType dtype = DataType::kFloat32;
  Shape shape;
  const std::byte* data = nullptr;

  template <typename T>
  const T* as() const {
    return reinterpret_cast<const T*>(data);
  }
};

// A writable tensor. The bytes belong to the caller and must outlive the view.
struct TensorView {
  DataType dtype = DataType::kFloat32;
  Shape shape;
  std::byte* data = nullptr;

  template <typename T>
  T* as() const {
    return reinterpret_cast<T*>(data);
  }
};

// A view of `size` bytes as a tensor of `dtype` and `shape`. INVALID_ARGUMENT
// (naming `field`) unless the shape is valid and the size is exactly
// prod(shape) * itemsize.
absl::StatusOr<ConstTensorView> MakeConstTensorView(DataType dtype, Shape shape, const void* data,
                                                    size_t size, absl::string_view field);

}  // namespace convserve
