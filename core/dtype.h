// Element types of ConvServe tensors and their sizes and TensorFlow names.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace convserve {

enum class DataType { kFloat32, kFloat64, kFloat16, kBFloat16, kInt32 };

inline constexpr DataType kAllDataTypes[] = {DataType::kFloat32, DataType::kFloat64,
                                             DataType::kFloat16, DataType::kBFloat16,
                                             DataType::kInt32};

// Bytes per element.
int64_t ItemSize(DataType dtype);

// TensorFlow's name of the type, as in its error messages: "float", "double",
// "half", "bfloat16", "int32".
absl::string_view TfTypeName(DataType dtype);

// The name of the type in tf.dtypes: "float32", "float64", "float16",
// "bfloat16", "int32".
absl::string_view DtypeName(DataType dtype);

}  // namespace convserve
