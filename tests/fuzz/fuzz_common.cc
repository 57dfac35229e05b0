#include "tests/fuzz/fuzz_common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "core/element_types.h"
#include "core/reference/reference_backend.h"
#include "core/shape.h"
#include "core/window.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/stubs/logging.h"
#include "server/wire.h"

namespace convserve::fuzz {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

// Values at which size arithmetic overflows or changes width.
constexpr int64_t kFarValues[] = {
    kMax,
    kMin,
    kMax - 1,
    kMin + 1,
    kMax / 2,
    kMax / 2 + 1,
    int64_t{1} << 62,
    (int64_t{1} << 62) + 1,
    int64_t{1} << 32,
    (int64_t{1} << 32) - 1,
    (int64_t{1} << 32) + 1,
    int64_t{1} << 31,
    (int64_t{1} << 31) - 1,
    3037000499,  // floor(sqrt(2^63 - 1))
    3037000500,
    1000000000,
    3000000000,
    1000000000000,
    1000000000000000000,
    1024,
    1025,
    4096,
    65536,
    -1,
    -2,
    -(int64_t{1} << 31),
    -(int64_t{1} << 32),
    -(int64_t{1} << 62),
    1,
    2,
    3,
    0,
};
constexpr size_t kFarCount = sizeof(kFarValues) / sizeof(kFarValues[0]);

constexpr absl::string_view kFormats[] = {"",      "NHWC",  "NCHW", "NWC",  "NCW",
                                          "NDHWC", "NCDHW", "nhwc", "NHWC "};

v1::DataType DecodeDtype(uint8_t b) {
  constexpr v1::DataType kDtypes[] = {v1::DATA_TYPE_FLOAT32,        v1::DATA_TYPE_FLOAT64,
                                      v1::DATA_TYPE_FLOAT16,        v1::DATA_TYPE_BFLOAT16,
                                      v1::DATA_TYPE_INT32,          v1::DATA_TYPE_UNSPECIFIED,
                                      static_cast<v1::DataType>(42)};
  return kDtypes[b % 7];
}

v1::Padding DecodePadding(uint8_t b) {
  constexpr v1::Padding kPaddings[] = {v1::PADDING_SAME, v1::PADDING_VALID, v1::PADDING_EXPLICIT,
                                       v1::PADDING_UNSPECIFIED, static_cast<v1::Padding>(7)};
  return kPaddings[b % 5];
}

// explicit_paddings: zeros often (the batch and channel pairs must be zero).
int64_t PadValue(ByteReader& in) {
  const uint8_t b = in.Byte();
  if (b < 128) return 0;
  if (b < 176) return 1 + b % 3;
  return in.Value();
}

template <typename Field>
void List(ByteReader& in, Field* field, int max_count) {
  for (int i = in.Byte() % (max_count + 1); i > 0; --i) field->Add(in.Value());
}

// Explicit paddings: most often the 2 * (N + 2) values of the op's rank.
template <typename Field>
void PadList(ByteReader& in, Field* field, int n) {
  const uint8_t b = in.Byte();
  const int count = b < 192 ? 2 * (n + 2) : b % 11;
  for (int i = 0; i < count; ++i) field->Add(PadValue(in));
}

template <typename T>
T FromFloat(float value) {
  if constexpr (std::is_same_v<T, int32_t>) {
    return static_cast<int32_t>(value);
  } else {
    return static_cast<T>(value);
  }
}

template <typename T>
T Special(int i) {
  using L = std::numeric_limits<T>;
  const T values[] = {L::quiet_NaN(), L::infinity(),   -L::infinity(),      L::max(),
                      L::lowest(),    L::denorm_min(), FromFloat<T>(-0.0f), FromFloat<T>(1.0f)};
  return values[i % 8];
}

// Fills the tensor's data for its shape and dtype when that is small: zeros,
// small integers, the reader's bytes, or special values (NaN, infinities,
// extremes); now and then one byte too many or too few.
void FillData(ByteReader& in, v1::Tensor* tensor) {
  const uint8_t mode = in.Byte();
  absl::StatusOr<DataType> dtype = server::FromProto(tensor->dtype());
  const DataType type = dtype.ok() ? *dtype : DataType::kFloat32;
  const int64_t item = ItemSize(type);
  absl::StatusOr<int64_t> elements =
      NumElements(Shape(tensor->shape().begin(), tensor->shape().end()));
  std::optional<int64_t> bytes = elements.ok() ? CheckedMul(*elements, item) : std::nullopt;
  if (!bytes || *bytes > kMaxTensorBytes) {
    tensor->set_data(std::string(mode % 16, '\x01'));
    return;
  }
  size_t size = static_cast<size_t>(*bytes);
  if (mode >= 0xf0) size = (mode & 1) || size == 0 ? size + 1 : size - 1;
  std::string data(size, '\0');
  const int64_t count = static_cast<int64_t>(size) / item;
  switch ((mode >> 2) % 4) {
    case 0: break;  // zeros
    case 1:
    case 3:
      DispatchDataType(type, [&](auto tag) {
        using T = decltype(tag);
        for (int64_t i = 0; i < count; ++i) {
          const T value = (mode >> 2) % 4 == 1
                              ? FromFloat<T>(static_cast<float>((i * 7 + mode) % 9 - 4))
                              : Special<T>(static_cast<int>(i + mode));
          std::memcpy(data.data() + i * item, &value, sizeof(T));
        }
      });
      break;
    case 2:
      for (char& c : data) c = static_cast<char>(in.Byte());
      break;
  }
  tensor->set_data(std::move(data));
}

// An operand reference: absent, set to nothing, an inline tensor, the
// registered filter's id or an unknown id. `usually_absent` (a bias, or the
// pointwise filter of an op without one) leaves it absent half the time.
template <typename MutableRef>
void DecodeRef(ByteReader& in, v1::DataType dtype, const std::string& registered_id,
               bool usually_absent, MutableRef mutable_ref) {
  uint8_t kind = in.Byte() % 8;
  if (usually_absent) {
    if (kind < 4) return;
    kind = kind == 4 ? 1 : kind == 7 ? 6 : 2;
  } else if (kind == 0) {
    return;
  }
  v1::TensorRef* ref = mutable_ref();
  switch (kind) {
    case 1: break;  // a TensorRef with neither tensor nor id
    case 6: ref->set_filter_id(registered_id); break;
    case 7: ref->set_filter_id(in.Byte() % 2 ? "" : registered_id.substr(1)); break;
    default: *ref->mutable_tensor() = DecodeTensor(in, dtype); break;
  }
}

// Saturating arithmetic for the harness's own work estimate.
int64_t SatMul(int64_t a, int64_t b) {
  if (a == 0 || b == 0) return 0;
  std::optional<int64_t> product = CheckedMul(a, b);
  return product ? *product : kMax;
}

int64_t SatProduct(const std::array<int64_t, kMaxSpatialRank>& dims, int rank) {
  int64_t product = 1;
  for (int i = 0; i < rank; ++i) product = SatMul(product, dims[i]);
  return product;
}

// Multiply-adds the reference backend legitimately does for `spec`: every
// result element visits every filter tap and its group's channels.
int64_t ReferenceWork(const ConvSpec& spec, int64_t result_elements) {
  const int64_t taps = SatProduct(spec.filter_spatial, spec.rank);
  if (spec.transposed) {
    return SatMul(SatMul(result_elements, taps), spec.out_channels / spec.groups);
  }
  int64_t y = result_elements;
  if (spec.pointwise_out_channels > 0) {
    y = SatMul(SatMul(spec.batch, SatProduct(spec.output_spatial, spec.rank)), spec.out_channels);
  }
  int64_t work = SatMul(SatMul(y, taps), spec.in_channels / spec.groups);
  if (spec.pointwise_out_channels > 0) {
    const int64_t pointwise = SatMul(result_elements, spec.out_channels / spec.pointwise_groups);
    work = pointwise > kMax - work ? kMax : work + pointwise;
  }
  return work;
}

// A copy of a view's bytes in a heap block of exactly their size.
struct ExactCopy {
  std::unique_ptr<std::byte[]> bytes;
  void Of(ConstTensorView* view) {
    if (view->data == nullptr) return;
    absl::StatusOr<int64_t> elements = NumElements(view->shape);
    FUZZ_CHECK(elements.ok(), "a parsed operand has an invalid shape");
    const size_t size = static_cast<size_t>(*elements * ItemSize(view->dtype));
    bytes.reset(new std::byte[size]);
    if (size > 0) std::memcpy(bytes.get(), view->data, size);
    view->data = bytes.get();
  }
};

bool HasField(absl::string_view message) {
  return message.find("(field: ") != absl::string_view::npos;
}

void CheckSpec(const ConvSpec& spec) {
  FUZZ_CHECK(spec.rank == 2 || spec.rank == 3, spec.DebugString());
  FUZZ_CHECK(spec.batch >= 0 && spec.in_channels > 0 && spec.out_channels > 0, spec.DebugString());
  FUZZ_CHECK(spec.groups >= 1 && spec.in_channels % spec.groups == 0 &&
                 spec.out_channels % spec.groups == 0,
             spec.DebugString());
  for (int i = 0; i < kMaxSpatialRank; ++i) {
    FUZZ_CHECK(spec.strides[i] >= 1 && spec.dilations[i] >= 1, spec.DebugString());
    FUZZ_CHECK(spec.pad_before[i] >= 0 && spec.pad_after[i] >= 0, spec.DebugString());
    FUZZ_CHECK(
        spec.input_spatial[i] >= 0 && spec.output_spatial[i] >= 0 && spec.filter_spatial[i] >= 1,
        spec.DebugString());
    if (i >= spec.rank) {
      FUZZ_CHECK(spec.input_spatial[i] == 1 && spec.output_spatial[i] == 1, spec.DebugString());
    }
  }
  if (spec.pointwise_out_channels > 0) {
    FUZZ_CHECK(spec.pointwise_groups >= 1 && spec.out_channels % spec.pointwise_groups == 0 &&
                   spec.pointwise_out_channels % spec.pointwise_groups == 0,
               spec.DebugString());
  }
}

}  // namespace

SpecLimits Limits() {
  SpecLimits limits;
  limits.max_output_elements = kMaxOutputElements;
  return limits;
}

bool Verbose() {
  static const bool verbose = std::getenv("CONVSERVE_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

void QuietProtobufLogs() { google::protobuf::SetLogHandler(nullptr); }

void Fail(absl::string_view what) {
  std::fprintf(stderr, "fuzz check failed: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

uint8_t ByteReader::Byte() { return offset_ < size_ ? data_[offset_++] : 0; }

uint64_t ByteReader::Bits64() {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= static_cast<uint64_t>(Byte()) << (8 * i);
  return value;
}

int64_t ByteReader::Value() {
  const uint8_t b = Byte();
  if (b < 112) return b % 5;
  if (b < 120) return -1;
  if (b < 232) return kFarValues[b % kFarCount];
  return static_cast<int64_t>(Bits64());
}

int64_t ByteReader::Dim() {
  const uint8_t b = Byte();
  if (b < 192) return 1 + b % 5;
  if (b < 216) return 0;
  if (b < 248) return kFarValues[b % kFarCount];
  return static_cast<int64_t>(Bits64());
}

v1::Tensor RegisteredFilter() {
  v1::Tensor filter;
  filter.set_dtype(v1::DATA_TYPE_FLOAT32);
  for (int64_t dim : {2, 2, 2, 2}) filter.add_shape(dim);
  std::vector<float> values(16);
  for (int i = 0; i < 16; ++i) values[i] = 0.5f * static_cast<float>(i - 7);
  filter.set_data(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return filter;
}

v1::Tensor PatternTensor(v1::DataType dtype, const std::vector<int64_t>& shape, int seed) {
  v1::Tensor tensor;
  tensor.set_dtype(dtype);
  for (int64_t dim : shape) tensor.add_shape(dim);
  absl::StatusOr<DataType> type = server::FromProto(dtype);
  const DataType t = type.ok() ? *type : DataType::kFloat32;
  absl::StatusOr<int64_t> elements = NumElements(shape);
  if (!elements.ok() || *elements > kMaxTensorBytes / ItemSize(t)) return tensor;
  std::string data(static_cast<size_t>(*elements * ItemSize(t)), '\0');
  DispatchDataType(t, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t i = 0; i < *elements; ++i) {
      const T value = FromFloat<T>(static_cast<float>((i * 7 + seed) % 9 - 4));
      std::memcpy(data.data() + i * sizeof(T), &value, sizeof(T));
    }
  });
  tensor.set_data(std::move(data));
  return tensor;
}

v1::Tensor DecodeTensor(ByteReader& in, v1::DataType dtype) {
  v1::Tensor tensor;
  const uint8_t flags = in.Byte();
  tensor.set_dtype(flags % 8 == 7 ? DecodeDtype(in.Byte()) : dtype);
  for (int i = flags / 8 % 7; i > 0; --i) tensor.add_shape(in.Dim());
  FillData(in, &tensor);
  return tensor;
}

v1::ConvRequest DecodeConvRequest(ByteReader& in, const std::string& registered_id) {
  v1::ConvRequest request;
  const uint8_t op = in.Byte() % 12;
  const v1::DataType dtype = DecodeDtype(in.Byte());
  const v1::Padding padding = DecodePadding(in.Byte());
  const std::string format(kFormats[in.Byte() % std::size(kFormats)]);
  // The fields every op but atrous has, read in one order: strides (at most
  // `most`), padding, explicit paddings (the ops that have them), data format,
  // dilations.
  auto window = [&](auto* p, auto* strides, int most) {
    List(in, strides, most);
    p->set_padding(padding);
    if constexpr (requires { p->mutable_explicit_paddings(); }) {
      PadList(in, p->mutable_explicit_paddings(), 2);
    }
    p->set_data_format(format);
    List(in, p->mutable_dilations(), most);
  };
  auto forward = [&](auto* p, int most) { window(p, p->mutable_strides(), most); };
  auto transposed = [&](auto* p) {
    for (int i = in.Byte() % 7; i > 0; --i) p->add_output_shape(in.Dim());
    forward(p, 5);
  };
  switch (op) {
    case 0: forward(request.mutable_convolution(), 5); break;
    case 1: {
      v1::Conv1D* p = request.mutable_conv1d();
      window(p, p->mutable_stride(), 3);
      break;
    }
    case 2: forward(request.mutable_conv2d(), 4); break;
    case 3: forward(request.mutable_conv3d(), 5); break;
    case 4: forward(request.mutable_depthwise_conv2d(), 4); break;
    case 5: forward(request.mutable_separable_conv2d(), 4); break;
    case 6: {
      v1::AtrousConv2D* p = request.mutable_atrous_conv2d();
      p->set_rate(in.Value());
      p->set_padding(padding);
      break;
    }
    case 7: transposed(request.mutable_conv2d_transpose()); break;
    case 8: transposed(request.mutable_conv3d_transpose()); break;
    case 9: transposed(request.mutable_conv_transpose()); break;
    case 10: transposed(request.mutable_conv1d_transpose()); break;
    default: break;  // no op
  }
  if (in.Byte() % 16 != 0) *request.mutable_input() = DecodeTensor(in, dtype);
  DecodeRef(in, dtype, registered_id, false, [&] { return request.mutable_filter(); });
  DecodeRef(in, dtype, registered_id, op != 5, [&] { return request.mutable_pointwise_filter(); });
  DecodeRef(in, dtype, registered_id, true, [&] { return request.mutable_bias(); });
  const uint8_t activation = in.Byte() % 10;
  request.set_activation(activation < 7    ? static_cast<v1::Activation>(activation)
                         : activation == 9 ? static_cast<v1::Activation>(99)
                                           : v1::ACTIVATION_NONE);
  return request;
}

v1::ConvRequest DecodeCoherentRequest(ByteReader& in, const std::string& registered_id) {
  // The op, its spatial rank, layout, dtype and padding.
  const uint8_t op = in.Byte() % 11;
  int n = 2;
  if (op == 1 || op == 10) n = 1;
  if (op == 3 || op == 8) n = 3;
  if (op == 0 || op == 9) n = 1 + in.Byte() % 3;
  const bool transposed = op >= 7;
  const bool depthwise = op == 4 || op == 5;
  const bool channels_first = op != 6 && in.Byte() % 2 == 1;
  const v1::DataType dtype = DecodeDtype(in.Byte() % 8 < 5 ? in.Byte() % 5 : in.Byte());
  const bool explicit_allowed = op == 0 || op == 2 || op == 4 || op == 7 || (op == 9 && n == 2);
  v1::Padding padding = in.Byte() % 2 ? v1::PADDING_SAME : v1::PADDING_VALID;
  if (explicit_allowed && in.Byte() % 3 == 0) padding = v1::PADDING_EXPLICIT;
  // conv2d_transpose's output_shape now and then gives the spatial sizes only.
  const bool spatial_output_shape = op == 7 && in.Byte() % 4 == 0;

  // Sizes: small mostly, int64's far ends now and then (ByteReader::Dim).
  const int64_t batch = in.Dim();
  const int64_t channels = 1 + in.Byte() % 4;
  const int64_t groups = depthwise || op == 6 ? 1 : 1 + in.Byte() % 2;
  const int64_t out_channels = (1 + in.Byte() % 3) * groups;
  std::vector<int64_t> spatial, kernel, strides, dilations, pads;
  for (int i = 0; i < n; ++i) {
    spatial.push_back(in.Dim());
    kernel.push_back(1 + in.Byte() % 3);
    const uint8_t s = in.Byte();
    strides.push_back(s < 160 ? 1 + s % 2 : in.Value());
    const uint8_t d = in.Byte();
    dilations.push_back(d < 192 ? 1 + d % 2 : in.Value());
    pads.push_back(PadValue(in));
    pads.push_back(PadValue(in));
  }
  const int64_t in_channels = channels * groups;  // x's channels
  auto activation = [&](int64_t b, const std::vector<int64_t>& space, int64_t c) {
    std::vector<int64_t> shape{b};
    if (channels_first) shape.push_back(c);
    shape.insert(shape.end(), space.begin(), space.end());
    if (!channels_first) shape.push_back(c);
    return shape;
  };
  // Attributes in their N+2 form, batch and channel entries 1 (or 0 for pads).
  auto full = [&](const std::vector<int64_t>& values, int64_t fill) {
    std::vector<int64_t> all(n + 2, fill);
    for (int i = 0; i < n; ++i) all[channels_first ? i + 2 : i + 1] = values[i];
    return all;
  };

  v1::ConvRequest request;
  const std::string format(channels_first ? (n == 1   ? "NCW"
                                             : n == 2 ? "NCHW"
                                                      : "NCDHW")
                                          : (n == 1   ? "NWC"
                                             : n == 2 ? "NHWC"
                                                      : "NDHWC"));
  auto set = [&](auto* p, auto* strides_field) {
    for (int64_t v : full(strides, 1)) strides_field->Add(v);
    for (int64_t v : full(dilations, 1)) p->add_dilations(v);
    p->set_padding(padding);
    p->set_data_format(format);
  };
  auto set_pads = [&](auto* p) {
    if (padding != v1::PADDING_EXPLICIT) return;
    std::vector<int64_t> all(2 * (n + 2), 0);
    for (int i = 0; i < n; ++i) {
      const int dim = channels_first ? i + 2 : i + 1;
      all[2 * dim] = pads[2 * i];
      all[2 * dim + 1] = pads[2 * i + 1];
    }
    for (int64_t v : all) p->add_explicit_paddings(v);
  };
  switch (op) {
    case 0:
      set(request.mutable_convolution(), request.mutable_convolution()->mutable_strides());
      set_pads(request.mutable_convolution());
      break;
    case 1: set(request.mutable_conv1d(), request.mutable_conv1d()->mutable_stride()); break;
    case 2:
      set(request.mutable_conv2d(), request.mutable_conv2d()->mutable_strides());
      set_pads(request.mutable_conv2d());
      break;
    case 3: set(request.mutable_conv3d(), request.mutable_conv3d()->mutable_strides()); break;
    case 4:
      set(request.mutable_depthwise_conv2d(),
          request.mutable_depthwise_conv2d()->mutable_strides());
      set_pads(request.mutable_depthwise_conv2d());
      break;
    case 5:
      set(request.mutable_separable_conv2d(),
          request.mutable_separable_conv2d()->mutable_strides());
      break;
    case 6:
      request.mutable_atrous_conv2d()->set_rate(dilations[0]);
      request.mutable_atrous_conv2d()->set_padding(padding);
      break;
    case 7:
      set(request.mutable_conv2d_transpose(),
          request.mutable_conv2d_transpose()->mutable_strides());
      set_pads(request.mutable_conv2d_transpose());
      break;
    case 8:
      set(request.mutable_conv3d_transpose(),
          request.mutable_conv3d_transpose()->mutable_strides());
      break;
    case 9:
      set(request.mutable_conv_transpose(), request.mutable_conv_transpose()->mutable_strides());
      set_pads(request.mutable_conv_transpose());
      break;
    default:
      set(request.mutable_conv1d_transpose(),
          request.mutable_conv1d_transpose()->mutable_strides());
      break;
  }
  // The output_shape field of a transposed op.
  auto output_shape = [&] {
    switch (op) {
      case 7: return request.mutable_conv2d_transpose()->mutable_output_shape();
      case 8: return request.mutable_conv3d_transpose()->mutable_output_shape();
      case 9: return request.mutable_conv_transpose()->mutable_output_shape();
      default: return request.mutable_conv1d_transpose()->mutable_output_shape();
    }
  };

  std::vector<int64_t> filter = kernel;
  if (op == 6) {
    strides = {1, 1};
    dilations = {dilations[0], dilations[0]};
  }
  filter.push_back(depthwise ? channels : in_channels / groups);
  filter.push_back(out_channels);
  if (transposed) {
    // x (the result) is output_shape; y, the input, has TF's output size of x.
    const std::vector<int64_t> x = activation(batch, spatial, in_channels);
    std::vector<int64_t> y_spatial;
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<Window> window =
          ComputeWindow(spatial[i], kernel[i], strides[i], dilations[i],
                        padding == v1::PADDING_SAME       ? Padding::kSame
                        : padding == v1::PADDING_EXPLICIT ? Padding::kExplicit
                                                          : Padding::kValid,
                        pads[2 * i], pads[2 * i + 1]);
      y_spatial.push_back(window.ok() ? window->output_size : 1);
    }
    for (int64_t v : spatial_output_shape ? spatial : x) output_shape()->Add(v);
    *request.mutable_input() = PatternTensor(dtype, activation(batch, y_spatial, out_channels), 1);
  } else {
    *request.mutable_input() = PatternTensor(dtype, activation(batch, spatial, in_channels), 1);
  }
  // Filters: inline, or the registered one now and then.
  const uint8_t filter_kind = in.Byte();
  if (filter_kind < 240) {
    *request.mutable_filter()->mutable_tensor() = PatternTensor(dtype, filter, 3);
  } else {
    request.mutable_filter()->set_filter_id(registered_id);
  }
  int64_t result_channels = transposed ? in_channels : out_channels;
  if (op == 5) {
    const int64_t depth = channels * out_channels;
    const int64_t pointwise_out = 1 + in.Byte() % 3;
    *request.mutable_pointwise_filter()->mutable_tensor() =
        PatternTensor(dtype, {1, 1, depth, pointwise_out}, 2);
    result_channels = pointwise_out;
  }
  if (depthwise && op == 4) result_channels = channels * out_channels;
  const uint8_t epilogue = in.Byte();
  if (epilogue % 4 == 0) {
    *request.mutable_bias()->mutable_tensor() = PatternTensor(dtype, {result_channels}, 4);
  }
  request.set_activation(static_cast<v1::Activation>(epilogue / 4 % 7));

  // Then a few values replaced by anything, int64's far ends most often.
  for (int i = in.Byte() % 4; i > 0; --i) {
    const uint8_t which = in.Byte();
    const int64_t value = in.Value();
    v1::Tensor* input = request.mutable_input();
    switch (which % 3) {
      case 0:
        if (input->shape_size() > 0) input->set_shape(which / 3 % input->shape_size(), value);
        RepairTensor(input);
        break;
      case 1:
        if (transposed) {
          auto* shape = output_shape();
          shape->Set(which / 3 % shape->size(), value);
        } else if (op == 6) {
          request.mutable_atrous_conv2d()->set_rate(value);
        }
        break;
      default: {
        // A stride, dilation or explicit padding of the op.
        const google::protobuf::Reflection* reflection = request.GetReflection();
        const google::protobuf::FieldDescriptor* op_field =
            request.GetDescriptor()->FindFieldByNumber(request.op_case());
        if (op_field == nullptr) break;
        google::protobuf::Message* params = reflection->MutableMessage(&request, op_field);
        const google::protobuf::Descriptor* descriptor = params->GetDescriptor();
        std::vector<const google::protobuf::FieldDescriptor*> lists;
        for (int f = 0; f < descriptor->field_count(); ++f) {
          const google::protobuf::FieldDescriptor* field = descriptor->field(f);
          if (field->is_repeated() && field->name() != "output_shape" &&
              params->GetReflection()->FieldSize(*params, field) > 0) {
            lists.push_back(field);
          }
        }
        if (lists.empty()) break;
        const google::protobuf::FieldDescriptor* field = lists[which / 3 % lists.size()];
        const int size = params->GetReflection()->FieldSize(*params, field);
        params->GetReflection()->SetRepeatedInt64(params, field, which / 9 % size, value);
        break;
      }
    }
  }
  return request;
}

bool RepairTensor(v1::Tensor* tensor) {
  absl::StatusOr<DataType> dtype = server::FromProto(tensor->dtype());
  if (!dtype.ok()) return false;
  absl::StatusOr<int64_t> elements =
      NumElements(Shape(tensor->shape().begin(), tensor->shape().end()));
  if (!elements.ok()) return false;
  std::optional<int64_t> bytes = CheckedMul(*elements, ItemSize(*dtype));
  if (!bytes || *bytes > kMaxTensorBytes) return false;
  const size_t size = static_cast<size_t>(*bytes);
  if (tensor->data().size() == size) return false;
  std::string data = tensor->data();
  const size_t had = data.size();
  data.resize(size, '\0');
  for (size_t i = had; had > 0 && i < size; ++i) data[i] = data[i % had];
  tensor->set_data(std::move(data));
  return true;
}

bool RepairRequest(v1::ConvRequest* request) {
  bool changed = false;
  if (request->has_input()) changed |= RepairTensor(request->mutable_input());
  for (v1::TensorRef* ref :
       {request->has_filter() ? request->mutable_filter() : nullptr,
        request->has_pointwise_filter() ? request->mutable_pointwise_filter() : nullptr,
        request->has_bias() ? request->mutable_bias() : nullptr}) {
    if (ref && ref->has_tensor()) changed |= RepairTensor(ref->mutable_tensor());
  }
  return changed;
}

void CheckConvRequest(const v1::ConvRequest& request, const server::FilterStore& filters,
                      int64_t max_reference_work) {
  absl::StatusOr<server::ParsedRequest> parsed =
      server::ParseConvRequest(request, Limits(), filters);
  if (Verbose()) {
    v1::ConvRequest shown = request;
    auto hide = [](v1::Tensor* t) { t->set_data(absl::StrCat(t->data().size(), " bytes")); };
    if (shown.has_input()) hide(shown.mutable_input());
    if (shown.filter().has_tensor()) hide(shown.mutable_filter()->mutable_tensor());
    if (shown.pointwise_filter().has_tensor()) {
      hide(shown.mutable_pointwise_filter()->mutable_tensor());
    }
    if (shown.bias().has_tensor()) hide(shown.mutable_bias()->mutable_tensor());
    std::fprintf(
        stderr, "request: %s\n  -> %s\n", shown.ShortDebugString().c_str(),
        parsed.ok() ? parsed->spec.DebugString().c_str() : parsed.status().ToString().c_str());
  }
  if (!parsed.ok()) {
    const absl::Status& status = parsed.status();
    switch (status.code()) {
      case absl::StatusCode::kInvalidArgument:
      case absl::StatusCode::kNotFound:
        FUZZ_CHECK(HasField(status.message()), status.ToString());
        break;
      case absl::StatusCode::kResourceExhausted: break;
      default: Fail(absl::StrCat("unexpected status ", status.ToString()));
    }
    return;
  }
  const ConvSpec& spec = parsed->spec;
  CheckSpec(spec);
  absl::StatusOr<int64_t> result = NumElements(spec.result_shape);
  FUZZ_CHECK(result.ok(), spec.DebugString());
  FUZZ_CHECK(*result == spec.ResultElements(), spec.DebugString());
  FUZZ_CHECK(*result <= kMaxOutputElements, spec.DebugString());
  FUZZ_CHECK(spec.ResultChannels() > 0, spec.DebugString());
  // What the server asks of every spec: routing, admission, weight-cache keys.
  (void)absl::HashOf(spec);
  (void)spec.InputElements();
  (void)spec.FilterElements();
  FUZZ_CHECK(spec.OutputElements() >= 0, spec.DebugString());
  if (spec.pointwise_out_channels > 0) {
    FUZZ_CHECK(spec.OutputElements() <= kMaxOutputElements, spec.DebugString());
  }

  v1::ConvResponse response;
  const TensorView allocated = server::AllocateOutput(spec, &response);
  FUZZ_CHECK(
      static_cast<int64_t>(response.output().data().size()) == *result * ItemSize(spec.dtype),
      spec.DebugString());
  FUZZ_CHECK(allocated.shape == spec.result_shape, spec.DebugString());

  if (ReferenceWork(spec, *result) > max_reference_work) return;
  Operands operands = parsed->operands;
  ExactCopy input, filter, pointwise, bias;
  input.Of(&operands.input);
  filter.Of(&operands.filter);
  pointwise.Of(&operands.pointwise_filter);
  bias.Of(&operands.bias);
  const size_t out_size = static_cast<size_t>(*result * ItemSize(spec.dtype));
  std::unique_ptr<std::byte[]> out_bytes(new std::byte[out_size]);
  const TensorView out{spec.dtype, spec.result_shape, out_bytes.get()};
  ReferenceBackend backend;
  const absl::Status status = backend.Run(spec, operands, out);
  FUZZ_CHECK(status.ok(), absl::StrCat(status.ToString(), " for ", spec.DebugString()));
}

}  // namespace convserve::fuzz
