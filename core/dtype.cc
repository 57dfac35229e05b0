#include "core/dtype.h"

namespace convserve {

int64_t ItemSize(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat64: return 8;
    case DataType::kFloat32:
    case DataType::kInt32: return 4;
    case DataType::kFloat16:
    case DataType::kBFloat16: return 2;
  }
  return 0;
}

absl::string_view TfTypeName(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32: return "float";
    case DataType::kFloat64: return "double";
    case DataType::kFloat16: return "half";
    case DataType::kBFloat16: return "bfloat16";
    case DataType::kInt32: return "int32";
  }
  return "unknown";
}

absl::string_view DtypeName(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32: return "float32";
    case DataType::kFloat64: return "float64";
    case DataType::kFloat16: return "float16";
    case DataType::kBFloat16: return "bfloat16";
    case DataType::kInt32: return "int32";
  }
  return "unknown";
}

}  // namespace convserve
