#include "client/perf/workload.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/request_builder.h"
#include "core/make_spec.h"

namespace convserve::perf {
namespace {

absl::Status UsageError(absl::string_view option, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(option, ": ", message));
}

struct DtypeInfo {
  DataType core;
  v1::DataType wire;
};

absl::StatusOr<DtypeInfo> ParseDtype(const std::string& name) {
  if (name == "float32") return DtypeInfo{DataType::kFloat32, v1::DATA_TYPE_FLOAT32};
  if (name == "float64") return DtypeInfo{DataType::kFloat64, v1::DATA_TYPE_FLOAT64};
  if (name == "float16") return DtypeInfo{DataType::kFloat16, v1::DATA_TYPE_FLOAT16};
  if (name == "bfloat16") return DtypeInfo{DataType::kBFloat16, v1::DATA_TYPE_BFLOAT16};
  if (name == "int32") return DtypeInfo{DataType::kInt32, v1::DATA_TYPE_INT32};
  return UsageError("--dtype", "unknown dtype " + name);
}

absl::StatusOr<Padding> CorePadding(const std::string& padding) {
  if (padding == "SAME") return Padding::kSame;
  if (padding == "VALID") return Padding::kValid;
  return UsageError("--padding", "expected SAME or VALID, got " + padding);
}

// The core's parameters of the op, for MakeSpec (the wire's come from BuildRequest).
absl::StatusOr<OpParams> CoreParams(const Options& o, Padding padding) {
  if (o.op == "conv2d") {
    Conv2DParams p;
    p.strides = o.strides;
    p.padding = padding;
    return p;
  }
  if (o.op == "depthwise_conv2d") {
    DepthwiseConv2DParams p;
    p.strides = o.strides;
    p.padding = padding;
    return p;
  }
  if (o.op == "conv1d") {
    Conv1DParams p;
    p.stride = o.strides;
    p.padding = padding;
    return p;
  }
  if (o.op == "conv3d") {
    Conv3DParams p;
    p.strides = o.strides;
    p.padding = padding;
    return p;
  }
  if (o.op == "conv2d_transpose") {
    if (o.output_shape.empty()) {
      return UsageError("--output-shape", "conv2d_transpose needs --output-shape");
    }
    ConvTransposeParams p;
    p.rank = 2;
    p.output_shape = o.output_shape;
    p.strides = o.strides;
    p.padding = padding;
    return p;
  }
  return UsageError("--op", "unsupported op " + o.op);
}

// Small values (|x| <= 1, or -3..3 for int32) so that no kernel hits denormals
// or overflow.
std::string RandomBytes(DataType dtype, int64_t elements, std::mt19937& rng) {
  std::uniform_int_distribution<int> pick(-4, 4);
  std::string bytes(static_cast<size_t>(elements * ItemSize(dtype)), '\0');
  char* out = bytes.data();
  for (int64_t i = 0; i < elements; ++i) {
    const int k = pick(rng);
    const float f = static_cast<float>(k) / 4.0f;
    switch (dtype) {
      case DataType::kFloat32: std::memcpy(out + 4 * i, &f, 4); break;
      case DataType::kFloat64: {
        const double d = f;
        std::memcpy(out + 8 * i, &d, 8);
        break;
      }
      case DataType::kBFloat16: {
        uint32_t u;
        std::memcpy(&u, &f, 4);
        const uint16_t h = static_cast<uint16_t>(u >> 16);  // exact: k/4 has few bits
        std::memcpy(out + 2 * i, &h, 2);
        break;
      }
      case DataType::kFloat16: {
        // k/4 for k in -4..4 as IEEE binary16.
        static const uint16_t kHalf[9] = {0xBC00, 0xBA00, 0xB800, 0xB400, 0x0000,
                                          0x3400, 0x3800, 0x3A00, 0x3C00};
        std::memcpy(out + 2 * i, &kHalf[k + 4], 2);
        break;
      }
      case DataType::kInt32: {
        const int32_t v = k % 4;
        std::memcpy(out + 4 * i, &v, 4);
        break;
      }
    }
  }
  return bytes;
}

}  // namespace

absl::StatusOr<Workload> MakeWorkload(const Options& o) {
  const absl::StatusOr<DtypeInfo> dtype = ParseDtype(o.dtype);
  if (!dtype.ok()) return dtype.status();
  const absl::StatusOr<Padding> padding = CorePadding(o.padding);
  if (!padding.ok()) return padding.status();
  const absl::StatusOr<OpParams> params = CoreParams(o, *padding);
  if (!params.ok()) return params.status();
  OperandInfo info;
  info.input = {dtype->core, o.input_shape};
  info.filter = {dtype->core, o.filter_shape};
  absl::StatusOr<ConvSpec> spec = MakeSpec(*params, info, SpecLimits{});
  if (!spec.ok()) return UsageError("op", spec.status().message());

  Workload w;
  w.spec = *std::move(spec);
  w.flops = w.spec.Flops();
  w.input_shape = o.input_shape;
  w.filter_shape = o.filter_shape;
  std::mt19937 rng(42);
  w.input_bytes = RandomBytes(dtype->core, w.spec.InputElements(), rng);
  w.filter_bytes = RandomBytes(dtype->core, w.spec.FilterElements(), rng);

  client::OpArgs args{.strides = o.strides, .padding = o.padding};
  if (o.op == "conv2d_transpose") args.output_shape = o.output_shape;
  absl::StatusOr<v1::ConvRequest> request =
      client::BuildRequest(o.op, args,
                           {.input = {dtype->wire, o.input_shape, w.input_bytes},
                            .filter = client::Tensor{dtype->wire, o.filter_shape, w.filter_bytes}});
  if (!request.ok()) return UsageError("--op", request.status().message());
  w.request = *std::move(request);
  return w;
}

}  // namespace convserve::perf
