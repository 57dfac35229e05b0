// What the fuzz targets share: the bounds they run under, a reader that turns
// fuzz bytes into values (small ones mostly, int64's far ends often), a
// structured decoder from bytes to a ConvRequest, and the check that runs a
// request the way the server does and then computes it on the reference
// backend. Every broken invariant aborts, which libFuzzer reports as a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "convserve/v1/convserve.pb.h"
#include "core/make_spec.h"
#include "server/filter_store.h"

namespace convserve::fuzz {

namespace v1 = ::convserve::v1;

// The server's bounds, made small: the largest result MakeSpec admits, the
// largest tensor the decoders fill with data, the most multiply-adds the
// reference backend is asked for, the filter store's budget.
inline constexpr int64_t kMaxOutputElements = int64_t{1} << 14;
inline constexpr int64_t kMaxTensorBytes = int64_t{1} << 14;
inline constexpr int64_t kMaxReferenceWork = int64_t{1} << 20;
inline constexpr int64_t kFilterStoreBudget = int64_t{1} << 16;

SpecLimits Limits();

// Whether CONVSERVE_FUZZ_VERBOSE is set: CheckConvRequest then prints each
// request (without its tensor bytes) and what it parsed to.
bool Verbose();

// Silences protobuf's error log (e.g. on strings with invalid UTF-8), which
// would otherwise print for most mutated inputs.
void QuietProtobufLogs();

// Prints `what` and aborts.
[[noreturn]] void Fail(absl::string_view what);
#define FUZZ_CHECK(condition, what)                                                  \
  do {                                                                               \
    if (!(condition)) ::convserve::fuzz::Fail(absl::StrCat(#condition, ": ", what)); \
  } while (false)

// Reads fuzz bytes front to back; past the end every read gives zeros.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t Byte();
  uint64_t Bits64();
  // An int64 attribute value: mostly 0..4 or -1, often one of int64's far
  // ends or the edges of the 32-bit range, sometimes any 64 bits.
  int64_t Value();
  // A tensor dimension: mostly 1..5, sometimes 0 or a far-end value as above.
  int64_t Dim();
  size_t remaining() const { return size_ - offset_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t offset_ = 0;
};

// The filter every fuzz_conv_request run finds registered (float32
// [2, 2, 2, 2]); the corpus generator names it by its id.
v1::Tensor RegisteredFilter();

// A request decoded field by field from `in`: any op, dtype, data_format,
// padding and attribute lists, tensors of any rank whose data matches their
// shape when that is small (now and then one byte off), filters inline, by
// `registered_id`, or by an unknown id, an optional bias and activation.
v1::ConvRequest DecodeConvRequest(ByteReader& in, const std::string& registered_id);
v1::Tensor DecodeTensor(ByteReader& in, v1::DataType dtype);
// A request built to be valid, then changed: the op's operands are shaped to
// fit each other and its attributes (sizes, strides, dilations and pads drawn
// by ByteReader::Dim / Value, so int64's far ends come up often), and then up
// to three of the input's dimensions, output_shape entries, rates, strides,
// dilations or pads are replaced by any value.
v1::ConvRequest DecodeCoherentRequest(ByteReader& in, const std::string& registered_id);

// A tensor of `shape` holding small integers in `dtype` (float32's bytes
// for an unknown dtype), or no data when that would exceed kMaxTensorBytes.
v1::Tensor PatternTensor(v1::DataType dtype, const std::vector<int64_t>& shape, int seed);

// Gives an inline tensor whose shape is valid and small the number of data
// bytes its shape and dtype need (its own bytes repeated, or zeros), so that a
// mutated shape still reaches MakeSpec. False when nothing changed.
bool RepairTensor(v1::Tensor* tensor);
bool RepairRequest(v1::ConvRequest* request);

// Parses `request` as the server does (server::ParseConvRequest under
// Limits()) and checks the answer: an error is INVALID_ARGUMENT or NOT_FOUND
// naming a field, or RESOURCE_EXHAUSTED; a spec is self-consistent, within
// the limits, AllocateOutput sizes its result, and, when the work is at most
// `max_reference_work` multiply-adds, the reference backend computes it on
// copies of the operands in buffers of exactly their size (so
// AddressSanitizer sees any read or write past them).
void CheckConvRequest(const v1::ConvRequest& request, const server::FilterStore& filters,
                      int64_t max_reference_work = kMaxReferenceWork);

}  // namespace convserve::fuzz
