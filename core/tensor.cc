#include "core/tensor.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace convserve {

absl::StatusOr<ConstTensorView> MakeConstTensorView(DataType dtype, Shape shape, const void* data,
                                                    size_t size, absl::string_view field) {
  absl::StatusOr<int64_t> elements = NumElements(shape);
  if (!elements.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(elements.status().message(), " (field: ", field, ".shape)"));
  }
  std::optional<int64_t> bytes = CheckedMul(*elements, ItemSize(dtype));
  if (!bytes || static_cast<uint64_t>(*bytes) != size) {
    return absl::InvalidArgumentError(absl::StrCat("tensor data has ", size, " bytes but shape ",
                                                   ShapeString(shape), " of ", TfTypeName(dtype),
                                                   " needs ", *elements, " x ", ItemSize(dtype),
                                                   " (field: ", field, ".data)"));
  }
  return ConstTensorView{dtype, std::move(shape), static_cast<const std::byte*>(data)};
}

}  // namespace convserve
