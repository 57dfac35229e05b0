// fuzz_npy: bytes -> ParseNpy (the .npy reader convserve-cli uses for its
// inputs) -> SerializeNpy (its writer) -> ParseNpy again, which must give the
// same array; and the writer on arrays built from the bytes (NumPy's dtype
// strings, any number of dimensions), which the reader must read back.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "client/npy.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using convserve::client::NpyArray;
using convserve::client::ParseNpy;
using convserve::client::SerializeNpy;
using namespace convserve::fuzz;  // NOLINT

bool Same(const NpyArray& a, const NpyArray& b) {
  return a.descr == b.descr && a.shape == b.shape && a.data == b.data;
}

// Writes `array`, reads it back, and writes that again.
void RoundTrip(const NpyArray& array) {
  const std::string bytes = SerializeNpy(array);
  FUZZ_CHECK(bytes.size() >= array.data.size() && (bytes.size() - array.data.size()) % 64 == 0,
             "the header is not 64-byte aligned");
  absl::StatusOr<NpyArray> back = ParseNpy(bytes);
  FUZZ_CHECK(back.ok(), absl::StrCat("cannot read what was written: ", back.status().ToString()));
  FUZZ_CHECK(Same(*back, array), "what was read back differs from what was written");
  FUZZ_CHECK(SerializeNpy(*back) == bytes, "writing is not deterministic");
}

// An array whose dtype string NumPy writes and whose data fits its shape.
bool Build(ByteReader& in, NpyArray* array) {
  static const char* const kDescrs[] = {"<f4", "<f8", "<f2", "<i4", "<u2",
                                        "|u1", "|b1", ">f4", "<i8", "<c16"};
  const uint8_t which = in.Byte();
  array->descr = kDescrs[which % 10];
  if (which >= 250) {
    // Now and then a header around the 65,535 bytes of format 1.0's 16-bit
    // length (as tens of thousands of dimensions make it; a long dtype
    // string, "<f000...04", is cheaper to build and parse).
    array->descr = absl::StrCat("<f", std::string(65400 + in.Byte() % 128, '0'), "4");
  }
  const int rank = in.Byte() % 8;
  int64_t elements = 1;
  for (int i = 0; i < rank; ++i) {
    const uint8_t b = in.Byte();
    const int64_t dim = b < 16 ? 0 : b < 192 ? 1 : b % 7;
    array->shape.push_back(dim);
    elements *= dim;
    if (elements > kMaxTensorBytes) return false;
  }
  int64_t item = 0;
  (void)absl::SimpleAtoi(array->descr.substr(2), &item);
  array->data.assign(static_cast<size_t>(elements * item), '\0');
  for (char& c : array->data) c = static_cast<char>(in.Byte());
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<NpyArray> array = ParseNpy(bytes);
  if (array.ok()) {
    RoundTrip(*array);
  } else {
    FUZZ_CHECK(array.status().code() == absl::StatusCode::kInvalidArgument,
               array.status().ToString());
  }
  ByteReader in(data, size);
  NpyArray built;
  if (Build(in, &built)) RoundTrip(built);
  return 0;
}
