// Helpers shared by the MakeSpec tests: operand shapes, and assertions on the
// status a request is refused with.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "core/make_spec.h"
#include "gtest/gtest.h"

namespace convserve {
namespace spec_test {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

inline TensorInfo Tensor(Shape shape, DataType dtype = DataType::kFloat32) {
  return TensorInfo{dtype, std::move(shape)};
}

inline OperandInfo Operands(Shape input, Shape filter, DataType dtype = DataType::kFloat32) {
  OperandInfo operands;
  operands.input = Tensor(std::move(input), dtype);
  operands.filter = Tensor(std::move(filter), dtype);
  return operands;
}

// The request failed with `code` and a message that starts with `prefix`.
inline ::testing::AssertionResult FailsWith(const absl::StatusOr<ConvSpec>& result,
                                            absl::StatusCode code, const std::string& prefix) {
  if (result.ok()) {
    return ::testing::AssertionFailure() << "unexpectedly succeeded: " << result->DebugString();
  }
  if (result.status().code() != code) {
    return ::testing::AssertionFailure() << "wrong code: " << result.status();
  }
  const std::string message(result.status().message());
  if (message.rfind(prefix, 0) != 0) {
    return ::testing::AssertionFailure()
           << "message \"" << message << "\"\n does not start with \"" << prefix << "\"";
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult Invalid(const absl::StatusOr<ConvSpec>& result,
                                          const std::string& prefix) {
  return FailsWith(result, absl::StatusCode::kInvalidArgument, prefix);
}

// INVALID_ARGUMENT with exactly "<message> (field: <field>)".
inline ::testing::AssertionResult InvalidField(const absl::StatusOr<ConvSpec>& result,
                                               const std::string& message,
                                               const std::string& field) {
  return FailsWith(result, absl::StatusCode::kInvalidArgument, message + " (field: " + field + ")");
}

}  // namespace spec_test
}  // namespace convserve

// Declares `const ConvSpec& name` from a MakeSpec result that must succeed.
#define ASSERT_SPEC(name, expr)                      \
  const absl::StatusOr<ConvSpec> name##_or = (expr); \
  ASSERT_TRUE(name##_or.ok()) << name##_or.status(); \
  const ConvSpec& name = *name##_or
