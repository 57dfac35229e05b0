// The reference backend: straightforward loops for every op and dtype, the
// oracle that every other backend is tested against. Slow by design.
//
// float and double accumulate in their own type; half and bfloat16 accumulate
// in float and round once; int32 wraps on overflow. The separable intermediate
// is rounded to the request's dtype, as TensorFlow materialises it. The bias is
// added to the rounded result, then the activation is applied, each rounded.
#pragma once

#include "core/backend.h"

namespace convserve {

// Stateless and single-threaded: safe to call from any number of threads at once.
class ReferenceBackend final : public Backend {
 public:
  absl::string_view Name() const override { return "reference"; }
  BackendInfo Describe() const override;
  bool Computes(const ConvSpec&) const override { return true; }
  // Each result element is its own loop, whatever the batch.
  bool BatchInvariant(const ConvSpec&) const override { return true; }
  absl::Status Run(const ConvSpec& spec, const Operands& operands, TensorView out) override;
};

}  // namespace convserve
