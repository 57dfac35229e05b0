// fuzz_conv_request: bytes -> ConvRequest -> ParseConvRequest (MakeSpec for
// every op) with one registered filter -> AllocateOutput and, when the work
// is small, the reference backend.
//
// Bytes that parse as a ConvRequest run as they are and again with each small
// inline tensor's data resized to its shape (so mutated shapes go deep); bytes
// that do not parse are decoded into a request, either one built to be valid
// and then changed (DecodeCoherentRequest) or one field by field
// (DecodeConvRequest).
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_common.h"

namespace {

using namespace convserve::fuzz;  // NOLINT

struct Harness {
  convserve::server::FilterStore filters{kFilterStoreBudget};
  std::string registered_id;
  Harness() {
    QuietProtobufLogs();
    absl::StatusOr<std::string> id = filters.Register(RegisteredFilter());
    FUZZ_CHECK(id.ok(), id.status().ToString());
    registered_id = *id;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Harness* const harness = new Harness();
  v1::ConvRequest request;
  if (request.ParseFromArray(data, static_cast<int>(size))) {
    CheckConvRequest(request, harness->filters);
    if (RepairRequest(&request)) CheckConvRequest(request, harness->filters);
  } else {
    ByteReader in(data, size);
    const v1::ConvRequest decoded = in.Byte() % 2 == 0
                                        ? DecodeCoherentRequest(in, harness->registered_id)
                                        : DecodeConvRequest(in, harness->registered_id);
    CheckConvRequest(decoded, harness->filters);
  }
  return 0;
}
