// The request convserve-perf sends: the op and shapes of the command line
// with deterministic small random operands, as a wire request (built by the
// client library's BuildRequest) and as the core ConvSpec the in-process
// baseline runs, with the FLOPs one request costs.
//
// Contract: MakeWorkload accepts exactly what the server would (the spec comes
// from the core's MakeSpec); on a usage error it returns InvalidArgument whose
// message names the option ("--output-shape: ...").
//
// Thread safety: MakeWorkload is a pure function (the operands come from a
// fixed seed); a Workload is a plain value, read-only while callers share it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/perf/options.h"
#include "convserve/v1/convserve.pb.h"
#include "core/conv_spec.h"

namespace convserve::perf {

struct Workload {
  v1::ConvRequest request;  // with the filter inline, or its id once registered
  ConvSpec spec;
  double flops = 0;  // 2 * MACs per request
  // The operands, kept when the request sends the filter by id.
  std::vector<int64_t> input_shape, filter_shape;
  std::string input_bytes, filter_bytes;
};

absl::StatusOr<Workload> MakeWorkload(const Options& o);

}  // namespace convserve::perf
