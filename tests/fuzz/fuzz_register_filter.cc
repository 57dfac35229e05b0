// fuzz_register_filter: bytes -> RegisterFilterRequest -> ViewTensor and
// FilterStore::Register (small budget), as the RegisterFilter RPC does; then
// the store's invariants (content-derived id, idempotence, budget) and
// ConvRequests naming the returned id for every op the filter's rank fits,
// checked like fuzz_conv_request's.
//
// Bytes that do not parse as a RegisterFilterRequest are decoded into a tensor
// field by field; a tensor whose data does not match its small shape runs
// again with its data resized.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "core/shape.h"
#include "core/weight_cache.h"
#include "server/wire.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using namespace convserve::fuzz;  // NOLINT
using convserve::Shape;
using convserve::server::FilterStore;

bool SameTensor(const v1::Tensor& a, const v1::Tensor& b) {
  return a.dtype() == b.dtype() && a.data() == b.data() &&
         std::equal(a.shape().begin(), a.shape().end(), b.shape().begin(), b.shape().end());
}

// Requests naming the registered filter `id` (of `shape`) wherever an op
// takes a tensor of its rank, with small inline operands that fit it. `variant`
// picks padding, strides, layout and groups.
std::vector<v1::ConvRequest> RequestsNaming(const std::string& id, v1::DataType dtype,
                                            const Shape& shape, uint8_t variant) {
  std::vector<v1::ConvRequest> requests;
  const int rank = static_cast<int>(shape.size());
  const v1::Padding padding = variant & 1 ? v1::PADDING_VALID : v1::PADDING_SAME;
  const int64_t stride = 1 + (variant >> 1) % 2;
  const bool channels_first = (variant >> 2) & 1;
  const int64_t groups = 1 + (variant >> 3) % 2;
  const int64_t extra = (variant >> 4) % 3;
  if (rank == 1) {
    // As a bias: a conv2d with shape[0] output channels.
    if (shape[0] > 64) return requests;
    v1::ConvRequest r;
    r.mutable_conv2d()->set_padding(v1::PADDING_SAME);
    *r.mutable_input() = PatternTensor(dtype, {1, 2, 2, 1}, variant);
    *r.mutable_filter()->mutable_tensor() = PatternTensor(dtype, {1, 1, 1, shape[0]}, variant);
    r.mutable_bias()->set_filter_id(id);
    r.set_activation(static_cast<v1::Activation>(variant % 7));
    requests.push_back(r);
    return requests;
  }
  if (rank < 3 || rank > 5) return requests;
  const int n = rank - 2;
  static const char* const kLast[] = {"NWC", "NHWC", "NDHWC"};
  static const char* const kFirst[] = {"NCW", "NCHW", "NCDHW"};
  const std::string format = channels_first ? kFirst[n - 1] : kLast[n - 1];

  // An activation of the given spatial size and channels in the variant's layout.
  auto activation = [&](const std::vector<int64_t>& spatial, int64_t channels) {
    Shape s{1};
    if (channels_first) s.push_back(channels);
    s.insert(s.end(), spatial.begin(), spatial.end());
    if (!channels_first) s.push_back(channels);
    return s;
  };
  // A filter with data has small dimensions; one without (a zero dimension,
  // which MakeSpec refuses) may have any: clamp them all.
  auto clamp = [](int64_t d) { return std::clamp<int64_t>(d, 0, 4096); };
  std::vector<int64_t> spatial;
  for (int i = 0; i < n; ++i) spatial.push_back(clamp(shape[i]) + extra);
  const int64_t filter_in = clamp(shape[n]);
  const int64_t filter_out = clamp(shape[n + 1]);
  const int64_t channels = filter_in * groups;
  const Shape input = activation(spatial, channels);

  auto forward = [&](auto* p) {
    p->set_padding(padding);
    p->set_data_format(format);
  };
  auto add = [&](v1::ConvRequest r, const Shape& x) {
    *r.mutable_input() = PatternTensor(dtype, x, variant);
    r.mutable_filter()->set_filter_id(id);
    requests.push_back(std::move(r));
  };
  {
    v1::ConvRequest r;
    forward(r.mutable_convolution());
    r.mutable_convolution()->add_strides(stride);
    add(r, input);
  }
  if (n == 1) {
    v1::ConvRequest r;
    forward(r.mutable_conv1d());
    r.mutable_conv1d()->add_stride(stride);
    add(r, input);
  }
  if (n == 3) {
    v1::ConvRequest r;
    forward(r.mutable_conv3d());
    r.mutable_conv3d()->add_strides(stride);
    add(r, input);
  }
  if (n == 2) {
    v1::ConvRequest r;
    forward(r.mutable_conv2d());
    r.mutable_conv2d()->add_strides(stride);
    add(r, input);
    // Depthwise: the filter's in dimension is the input's channels.
    const Shape depthwise_input = activation(spatial, filter_in);
    v1::ConvRequest d;
    forward(d.mutable_depthwise_conv2d());
    d.mutable_depthwise_conv2d()->add_strides(stride);
    add(d, depthwise_input);
    v1::ConvRequest a;
    a.mutable_atrous_conv2d()->set_rate(stride);
    a.mutable_atrous_conv2d()->set_padding(padding);
    add(a, activation(spatial, channels));
    // Separable, the filter as the depthwise step.
    v1::ConvRequest s;
    forward(s.mutable_separable_conv2d());
    s.mutable_separable_conv2d()->add_strides(stride);
    *s.mutable_pointwise_filter()->mutable_tensor() =
        PatternTensor(dtype, {1, 1, filter_in * filter_out, 1 + extra}, variant);
    add(s, depthwise_input);
    // Separable, the filter as the pointwise step when it is 1x1.
    if (shape[0] == 1 && shape[1] == 1) {
      v1::ConvRequest p;
      forward(p.mutable_separable_conv2d());
      *p.mutable_input() = PatternTensor(dtype, activation({3, 3}, filter_in), variant);
      *p.mutable_filter()->mutable_tensor() = PatternTensor(dtype, {2, 2, filter_in, 1}, variant);
      p.mutable_pointwise_filter()->set_filter_id(id);
      requests.push_back(std::move(p));
    }
  }
  // Transposed: x (the result) has the input's spatial size and filter_in *
  // groups channels; y has SAME's or VALID's output size and filter_out.
  std::vector<int64_t> y_spatial;
  for (int i = 0; i < n; ++i) {
    const int64_t x = spatial[i];
    y_spatial.push_back(padding == v1::PADDING_SAME
                            ? (x + stride - 1) / stride
                            : std::max<int64_t>(0, (x - clamp(shape[i])) / stride + 1));
  }
  const Shape x_shape = activation(spatial, channels);
  auto transposed = [&](auto* p) {
    forward(p);
    p->add_strides(stride);
    for (int64_t d : x_shape) p->add_output_shape(d);
  };
  v1::ConvRequest t;
  if (n == 2) transposed(t.mutable_conv2d_transpose());
  if (n == 3) transposed(t.mutable_conv3d_transpose());
  add(t, activation(y_spatial, filter_out));
  v1::ConvRequest g;
  transposed(g.mutable_conv_transpose());
  add(g, activation(y_spatial, filter_out));
  return requests;
}

void CheckRegistration(const v1::Tensor& filter, uint8_t variant) {
  FilterStore store(kFilterStoreBudget);
  absl::StatusOr<convserve::ConstTensorView> view = convserve::server::ViewTensor(filter, "filter");
  if (!view.ok()) {
    FUZZ_CHECK(view.status().code() == absl::StatusCode::kInvalidArgument,
               view.status().ToString());
    return;
  }
  absl::StatusOr<std::string> id = store.Register(filter);
  if (!id.ok()) {
    FUZZ_CHECK(id.status().code() == absl::StatusCode::kResourceExhausted, id.status().ToString());
    FUZZ_CHECK(store.entries() == 0 && store.bytes() == 0, "a refused filter was kept");
    return;
  }
  FUZZ_CHECK(id->size() == 64, *id);
  for (char c : *id) FUZZ_CHECK(absl::ascii_isxdigit(c) && !absl::ascii_isupper(c), *id);
  FUZZ_CHECK(store.entries() == 1, store.entries());
  const int64_t bytes = store.bytes();
  FUZZ_CHECK(bytes <= kFilterStoreBudget, bytes);
  // The budget bounds what the store holds: the data, the shape and the
  // entry itself, so that neither empty tensors nor long shapes grow it free.
  FUZZ_CHECK(bytes > 0 && bytes >= static_cast<int64_t>(filter.data().size() +
                                                        filter.shape_size() * sizeof(int64_t)),
             absl::StrCat(bytes, " bytes accounted for a filter of ", filter.data().size(),
                          " data bytes and ", filter.shape_size(), " dimensions"));

  // The same tensor again: the same id, stored once.
  absl::StatusOr<std::string> again = store.Register(filter);
  FUZZ_CHECK(again.ok() && *again == *id, again.status().ToString());
  FUZZ_CHECK(store.entries() == 1 && store.bytes() == bytes, "a filter was stored twice");

  const FilterStore::Registered found = store.Find(*id);
  FUZZ_CHECK(found.tensor != nullptr && SameTensor(*found.tensor, filter), *id);
  FUZZ_CHECK(found.content_hash == convserve::ContentHash(filter.data()), *id);
  FUZZ_CHECK(store.Find(id->substr(1)).tensor == nullptr, *id);
  FUZZ_CHECK(store.Find("").tensor == nullptr, *id);

  // A different tensor (one more dimension of 1) gets another id, within the budget.
  v1::Tensor other = filter;
  other.add_shape(1);
  absl::StatusOr<std::string> other_id = store.Register(other);
  if (other_id.ok()) {
    FUZZ_CHECK(*other_id != *id, *id);
    FUZZ_CHECK(store.entries() == 2 && store.bytes() <= kFilterStoreBudget, store.bytes());
  } else {
    FUZZ_CHECK(other_id.status().code() == absl::StatusCode::kResourceExhausted,
               other_id.status().ToString());
    FUZZ_CHECK(store.entries() == 1 && store.bytes() == bytes, store.bytes());
  }

  // Each request may compute a sixteenth of what fuzz_conv_request allows:
  // that target fuzzes the computing itself, and here the reference backend
  // took two thirds of the time, leaving little for the store and the naming.
  for (const v1::ConvRequest& request : RequestsNaming(*id, filter.dtype(), view->shape, variant)) {
    CheckConvRequest(request, store, kMaxReferenceWork / 16);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = (QuietProtobufLogs(), true);
  (void)quiet;
  const uint8_t variant = size > 0 ? data[size - 1] : 0;
  v1::RegisterFilterRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) {
    ByteReader in(data, size);
    *request.mutable_filter() = DecodeTensor(in, static_cast<v1::DataType>(1 + in.Byte() % 5));
  }
  CheckRegistration(request.filter(), variant);
  v1::Tensor repaired = request.filter();
  if (RepairTensor(&repaired)) CheckRegistration(repaired, variant);
  return 0;
}
