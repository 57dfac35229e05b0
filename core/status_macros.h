// Early-return helpers for absl::Status and absl::StatusOr.
#pragma once

#include <utility>

#include "absl/status/status.h"

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define CONVSERVE_RETURN_IF_ERROR(expr) \
  do {                                  \
    absl::Status status_ = (expr);      \
    if (!status_.ok()) return status_;  \
  } while (false)

// Declares or assigns `lhs` from `expr` (an absl::StatusOr), or returns its error.
#define CONVSERVE_ASSIGN_OR_RETURN(lhs, expr) \
  CONVSERVE_ASSIGN_OR_RETURN_IMPL(CONVSERVE_CONCAT(statusor_, __LINE__), lhs, expr)
#define CONVSERVE_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                                    \
  if (!statusor.ok()) return statusor.status();              \
  lhs = std::move(*statusor)
#define CONVSERVE_CONCAT_INNER(a, b) a##b
#define CONVSERVE_CONCAT(a, b) CONVSERVE_CONCAT_INNER(a, b)
