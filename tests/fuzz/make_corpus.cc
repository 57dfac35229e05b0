// Writes the seed corpora of the fuzz targets: fuzz_make_corpus <dir> creates
// <dir>/fuzz_conv_request, <dir>/fuzz_register_filter, <dir>/fuzz_npy and
// <dir>/fuzz_auth and fills them with seed-* files: every ConvRequest seed is a serialized request
// for a different op, dtype, layout and padding, checked here to get the
// answer it is meant to get from server::ParseConvRequest under the fuzz
// targets' limits; RegisterFilterRequests of every dtype and usable rank;
// .npy files of several dtypes and format versions; tokens files with
// credentials that are accepted, refused or malformed. And crash-* files: an
// input for each bug the fuzzers found, which crashed or hung its target
// before the fix. This program never removes files.
//
// Regenerate with (from the repository root, after building the target):
//   build-fuzz/fuzz/fuzz_make_corpus tests/fuzz/corpus
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "client/npy.h"
#include "server/wire.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using namespace convserve::fuzz;  // NOLINT
using convserve::Shape;
namespace fs = std::filesystem;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr v1::DataType kF32 = v1::DATA_TYPE_FLOAT32;
constexpr v1::DataType kF64 = v1::DATA_TYPE_FLOAT64;
constexpr v1::DataType kF16 = v1::DATA_TYPE_FLOAT16;
constexpr v1::DataType kBF16 = v1::DATA_TYPE_BFLOAT16;
constexpr v1::DataType kI32 = v1::DATA_TYPE_INT32;

void Write(const fs::path& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!file) Fail(absl::StrCat("cannot write ", path.string()));
}

template <typename Field>
void Set(Field* field, std::initializer_list<int64_t> values) {
  for (int64_t v : values) field->Add(v);
}

// A request with inline input and filter of `dtype`.
v1::ConvRequest Operands(v1::ConvRequest request, v1::DataType dtype, const Shape& input,
                         const Shape& filter) {
  request.set_id("seed");
  *request.mutable_input() = PatternTensor(dtype, input, 1);
  *request.mutable_filter()->mutable_tensor() = PatternTensor(dtype, filter, 3);
  return request;
}

struct ConvSeed {
  std::string name;
  v1::ConvRequest request;
  absl::StatusCode expected = absl::StatusCode::kOk;
};

std::vector<ConvSeed> ConvSeeds(const std::string& registered_id) {
  std::vector<ConvSeed> seeds;
  auto add = [&seeds](std::string name, v1::ConvRequest request,
                      absl::StatusCode expected = absl::StatusCode::kOk) {
    seeds.push_back({std::move(name), std::move(request), expected});
  };
  using Code = absl::StatusCode;

  // conv2d
  {
    v1::ConvRequest r;
    Set(r.mutable_conv2d()->mutable_strides(), {2});
    r.mutable_conv2d()->set_padding(v1::PADDING_SAME);
    add("conv2d-f32-nhwc-same-stride2", Operands(r, kF32, {1, 5, 5, 2}, {3, 3, 2, 3}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv2d()->mutable_strides(), {1, 1});
    r.mutable_conv2d()->set_padding(v1::PADDING_VALID);
    r.mutable_conv2d()->set_data_format("NCHW");
    add("conv2d-f64-nchw-valid", Operands(r, kF64, {2, 2, 6, 5}, {3, 2, 2, 4}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv2d()->mutable_strides(), {1, 2, 2, 1});
    r.mutable_conv2d()->set_padding(v1::PADDING_EXPLICIT);
    Set(r.mutable_conv2d()->mutable_explicit_paddings(), {0, 0, 1, 2, 2, 1, 0, 0});
    add("conv2d-f16-nhwc-explicit-stride2", Operands(r, kF16, {1, 4, 5, 3}, {2, 3, 3, 2}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv2d()->mutable_dilations(), {2});
    r.mutable_conv2d()->set_padding(v1::PADDING_SAME);
    add("conv2d-bf16-nhwc-same-dilated", Operands(r, kBF16, {1, 7, 7, 1}, {3, 3, 1, 2}));
  }
  {
    v1::ConvRequest r;
    r.mutable_conv2d()->set_padding(v1::PADDING_VALID);
    r.set_activation(v1::ACTIVATION_RELU6);
    add("conv2d-i32-nhwc-valid-relu6", Operands(r, kI32, {1, 4, 4, 2}, {2, 2, 2, 2}));
  }
  {
    v1::ConvRequest r;
    r.mutable_conv2d()->set_padding(v1::PADDING_SAME);
    r = Operands(r, kF32, {1, 3, 3, 2}, {1, 1, 2, 4});
    *r.mutable_bias()->mutable_tensor() = PatternTensor(kF32, {4}, 5);
    r.set_activation(v1::ACTIVATION_RELU);
    add("conv2d-f32-nhwc-same-bias-relu", r);
  }
  {
    v1::ConvRequest r;
    r.mutable_conv2d()->set_padding(v1::PADDING_SAME);
    r = Operands(r, kF32, {1, 4, 4, 2}, {1});
    r.mutable_filter()->set_filter_id(registered_id);
    add("conv2d-f32-nhwc-same-registered-filter", r);
  }
  {
    v1::ConvRequest r;
    r.mutable_conv2d()->set_padding(v1::PADDING_SAME);
    add("conv2d-f32-nhwc-same-grouped", Operands(r, kF32, {1, 4, 4, 4}, {3, 3, 2, 6}));
  }
  {
    v1::ConvRequest r;
    r.mutable_conv2d()->set_padding(v1::PADDING_EXPLICIT);
    r.mutable_conv2d()->set_data_format("NCHW");
    Set(r.mutable_conv2d()->mutable_explicit_paddings(), {0, 0, 0, 0, 1, 1, 1, 1});
    add("conv2d-f32-nchw-explicit", Operands(r, kF32, {1, 2, 3, 3}, {2, 2, 2, 1}));
  }
  {
    v1::ConvRequest r;
    r.mutable_conv2d()->set_padding(v1::PADDING_SAME);
    r.mutable_conv2d()->set_data_format("NHWC");
    add("conv2d-f32-nhwc-same-extra-batch-dims", Operands(r, kF32, {2, 1, 4, 4, 1}, {3, 3, 1, 1}));
  }
  // conv1d
  {
    v1::ConvRequest r;
    Set(r.mutable_conv1d()->mutable_stride(), {1});
    r.mutable_conv1d()->set_padding(v1::PADDING_SAME);
    add("conv1d-f32-nwc-same", Operands(r, kF32, {1, 8, 2}, {3, 2, 2}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv1d()->mutable_stride(), {2});
    r.mutable_conv1d()->set_padding(v1::PADDING_VALID);
    r.mutable_conv1d()->set_data_format("NCW");
    add("conv1d-f64-ncw-valid-stride2", Operands(r, kF64, {2, 3, 9}, {3, 3, 1}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv1d()->mutable_dilations(), {2});
    r.mutable_conv1d()->set_padding(v1::PADDING_VALID);
    r.mutable_conv1d()->set_data_format("NHWC");
    add("conv1d-f32-legacy-nhwc-dilated", Operands(r, kF32, {1, 9, 1}, {2, 1, 1}));
  }
  // conv3d
  {
    v1::ConvRequest r;
    Set(r.mutable_conv3d()->mutable_strides(), {1, 2, 2, 2, 1});
    r.mutable_conv3d()->set_padding(v1::PADDING_SAME);
    add("conv3d-f32-ndhwc-same-stride2", Operands(r, kF32, {1, 3, 4, 4, 2}, {2, 2, 2, 2, 3}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv3d()->mutable_dilations(), {1, 1, 2, 2, 2});
    r.mutable_conv3d()->set_padding(v1::PADDING_VALID);
    r.mutable_conv3d()->set_data_format("NCDHW");
    add("conv3d-f16-ncdhw-valid-dilated", Operands(r, kF16, {1, 1, 5, 5, 5}, {2, 2, 2, 1, 2}));
  }
  // convolution
  {
    v1::ConvRequest r;
    Set(r.mutable_convolution()->mutable_strides(), {2});
    r.mutable_convolution()->set_padding(v1::PADDING_SAME);
    add("convolution-1d-f32-nwc-same-stride2", Operands(r, kF32, {1, 6, 2}, {2, 2, 3}));
  }
  {
    v1::ConvRequest r;
    r.mutable_convolution()->set_padding(v1::PADDING_EXPLICIT);
    Set(r.mutable_convolution()->mutable_explicit_paddings(), {0, 0, 1, 1, 1, 1, 0, 0});
    add("convolution-2d-f64-nhwc-explicit", Operands(r, kF64, {1, 5, 5, 1}, {3, 3, 1, 1}));
  }
  {
    v1::ConvRequest r;
    r.mutable_convolution()->set_padding(v1::PADDING_VALID);
    r.mutable_convolution()->set_data_format("NCDHW");
    add("convolution-3d-bf16-ncdhw-valid", Operands(r, kBF16, {1, 2, 3, 3, 3}, {1, 2, 2, 2, 2}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_convolution()->mutable_dilations(), {2, 2});
    r.mutable_convolution()->set_padding(v1::PADDING_VALID);
    add("convolution-2d-i32-nhwc-valid-dilated", Operands(r, kI32, {1, 6, 6, 1}, {2, 2, 1, 1}));
  }
  // depthwise_conv2d
  {
    v1::ConvRequest r;
    Set(r.mutable_depthwise_conv2d()->mutable_strides(), {1, 2, 2, 1});
    r.mutable_depthwise_conv2d()->set_padding(v1::PADDING_SAME);
    add("depthwise-f32-nhwc-same-stride2", Operands(r, kF32, {1, 5, 5, 2}, {3, 3, 2, 2}));
  }
  {
    v1::ConvRequest r;
    r.mutable_depthwise_conv2d()->set_padding(v1::PADDING_EXPLICIT);
    r.mutable_depthwise_conv2d()->set_data_format("NCHW");
    Set(r.mutable_depthwise_conv2d()->mutable_explicit_paddings(), {0, 0, 0, 0, 1, 0, 0, 1});
    add("depthwise-f64-nchw-explicit", Operands(r, kF64, {1, 3, 4, 4}, {2, 2, 3, 1}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_depthwise_conv2d()->mutable_dilations(), {2});
    r.mutable_depthwise_conv2d()->set_padding(v1::PADDING_SAME);
    add("depthwise-bf16-nhwc-same-dilated", Operands(r, kBF16, {1, 6, 6, 1}, {2, 2, 1, 3}));
  }
  // separable_conv2d
  {
    v1::ConvRequest r;
    r.mutable_separable_conv2d()->set_padding(v1::PADDING_SAME);
    r = Operands(r, kF32, {1, 5, 5, 2}, {3, 3, 2, 2});
    *r.mutable_pointwise_filter()->mutable_tensor() = PatternTensor(kF32, {1, 1, 4, 3}, 2);
    add("separable-f32-nhwc-same", r);
  }
  {
    v1::ConvRequest r;
    r.mutable_separable_conv2d()->set_padding(v1::PADDING_VALID);
    r.mutable_separable_conv2d()->set_data_format("NCHW");
    r = Operands(r, kF16, {1, 2, 4, 4}, {2, 2, 2, 2});
    *r.mutable_pointwise_filter()->mutable_tensor() = PatternTensor(kF16, {1, 1, 2, 4}, 2);
    add("separable-f16-nchw-valid-grouped-pointwise", r);
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_separable_conv2d()->mutable_strides(), {2});
    r.mutable_separable_conv2d()->set_padding(v1::PADDING_SAME);
    r = Operands(r, kF32, {1, 5, 5, 1}, {2, 2, 1, 2});
    *r.mutable_pointwise_filter()->mutable_tensor() = PatternTensor(kF32, {1, 1, 2, 3}, 2);
    *r.mutable_bias()->mutable_tensor() = PatternTensor(kF32, {3}, 4);
    r.set_activation(v1::ACTIVATION_SIGMOID);
    add("separable-f32-nhwc-same-stride2-bias-sigmoid", r);
  }
  // atrous_conv2d
  {
    v1::ConvRequest r;
    r.mutable_atrous_conv2d()->set_rate(2);
    r.mutable_atrous_conv2d()->set_padding(v1::PADDING_SAME);
    add("atrous-f32-rate2-same", Operands(r, kF32, {1, 6, 6, 1}, {3, 3, 1, 2}));
  }
  {
    v1::ConvRequest r;
    r.mutable_atrous_conv2d()->set_rate(3);
    r.mutable_atrous_conv2d()->set_padding(v1::PADDING_VALID);
    r.set_activation(v1::ACTIVATION_TANH);
    add("atrous-f64-rate3-valid-tanh", Operands(r, kF64, {1, 9, 9, 2}, {2, 2, 2, 1}));
  }
  // conv2d_transpose
  {
    v1::ConvRequest r;
    Set(r.mutable_conv2d_transpose()->mutable_output_shape(), {1, 6, 6, 2});
    Set(r.mutable_conv2d_transpose()->mutable_strides(), {2});
    r.mutable_conv2d_transpose()->set_padding(v1::PADDING_SAME);
    add("conv2d-transpose-f32-nhwc-same-stride2", Operands(r, kF32, {1, 3, 3, 4}, {3, 3, 2, 4}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv2d_transpose()->mutable_output_shape(), {1, 2, 7, 7});
    Set(r.mutable_conv2d_transpose()->mutable_strides(), {1, 1, 2, 2});
    r.mutable_conv2d_transpose()->set_padding(v1::PADDING_VALID);
    r.mutable_conv2d_transpose()->set_data_format("NCHW");
    add("conv2d-transpose-f16-nchw-valid-stride2", Operands(r, kF16, {1, 3, 3, 3}, {3, 3, 2, 3}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv2d_transpose()->mutable_output_shape(), {1, 5, 5, 1});
    Set(r.mutable_conv2d_transpose()->mutable_dilations(), {2});
    r.mutable_conv2d_transpose()->set_padding(v1::PADDING_SAME);
    add("conv2d-transpose-bf16-nhwc-same-dilated", Operands(r, kBF16, {1, 5, 5, 2}, {2, 2, 1, 2}));
  }
  // conv3d_transpose
  {
    v1::ConvRequest r;
    Set(r.mutable_conv3d_transpose()->mutable_output_shape(), {1, 4, 4, 4, 1});
    Set(r.mutable_conv3d_transpose()->mutable_strides(), {2});
    r.mutable_conv3d_transpose()->set_padding(v1::PADDING_SAME);
    add("conv3d-transpose-f32-ndhwc-same-stride2",
        Operands(r, kF32, {1, 2, 2, 2, 2}, {2, 2, 2, 1, 2}));
  }
  // conv_transpose
  {
    v1::ConvRequest r;
    Set(r.mutable_conv_transpose()->mutable_output_shape(), {1, 8, 2});
    Set(r.mutable_conv_transpose()->mutable_strides(), {2});
    r.mutable_conv_transpose()->set_padding(v1::PADDING_VALID);
    add("conv-transpose-1d-f32-nwc-valid-stride2", Operands(r, kF32, {1, 4, 3}, {2, 2, 3}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv_transpose()->mutable_output_shape(), {1, 1, 5, 5});
    r.mutable_conv_transpose()->set_padding(v1::PADDING_SAME);
    r.mutable_conv_transpose()->set_data_format("NCHW");
    add("conv-transpose-2d-f64-nchw-same", Operands(r, kF64, {1, 2, 5, 5}, {3, 3, 1, 2}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv_transpose()->mutable_output_shape(), {1, 2, 3, 3, 3});
    r.mutable_conv_transpose()->set_padding(v1::PADDING_VALID);
    r.mutable_conv_transpose()->set_data_format("NCDHW");
    add("conv-transpose-3d-f16-ncdhw-valid", Operands(r, kF16, {1, 1, 2, 2, 2}, {2, 2, 2, 2, 1}));
  }
  // TF 2's forms of the transposed ops: explicit paddings, spatial-only
  // output shapes, conv1d_transpose.
  {
    v1::ConvRequest r;
    Set(r.mutable_conv2d_transpose()->mutable_output_shape(), {1, 2, 7, 5});
    Set(r.mutable_conv2d_transpose()->mutable_strides(), {2, 1});
    r.mutable_conv2d_transpose()->set_padding(v1::PADDING_EXPLICIT);
    Set(r.mutable_conv2d_transpose()->mutable_explicit_paddings(), {0, 0, 0, 0, 1, 2, 0, 1});
    r.mutable_conv2d_transpose()->set_data_format("NCHW");
    add("conv2d-transpose-f32-nchw-explicit", Operands(r, kF32, {1, 3, 4, 5}, {3, 2, 2, 3}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv2d_transpose()->mutable_output_shape(), {6, 6});
    Set(r.mutable_conv2d_transpose()->mutable_strides(), {2});
    r.mutable_conv2d_transpose()->set_padding(v1::PADDING_SAME);
    add("conv2d-transpose-f64-nhwc-spatial-only", Operands(r, kF64, {2, 3, 3, 4}, {3, 3, 2, 4}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv_transpose()->mutable_output_shape(), {1, 5, 5, 2});
    r.mutable_conv_transpose()->set_padding(v1::PADDING_EXPLICIT);
    Set(r.mutable_conv_transpose()->mutable_explicit_paddings(), {0, 0, 1, 0, 0, 1, 0, 0});
    add("conv-transpose-2d-f16-nhwc-explicit", Operands(r, kF16, {1, 4, 4, 3}, {3, 3, 2, 3}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv_transpose()->mutable_output_shape(), {1, 8, 2});
    r.mutable_conv_transpose()->set_padding(v1::PADDING_EXPLICIT);
    Set(r.mutable_conv_transpose()->mutable_explicit_paddings(), {0, 0, 1, 1, 0, 0});
    add("conv-transpose-1d-f32-explicit-refused", Operands(r, kF32, {1, 8, 3}, {3, 2, 3}),
        Code::kInvalidArgument);
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv1d_transpose()->mutable_output_shape(), {1, 9, 2});
    Set(r.mutable_conv1d_transpose()->mutable_strides(), {2});
    r.mutable_conv1d_transpose()->set_padding(v1::PADDING_SAME);
    add("conv1d-transpose-i32-nwc-same-stride2", Operands(r, kI32, {1, 5, 3}, {3, 2, 3}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv1d_transpose()->mutable_output_shape(), {2, 4, 10});
    Set(r.mutable_conv1d_transpose()->mutable_dilations(), {2});
    r.mutable_conv1d_transpose()->set_padding(v1::PADDING_VALID);
    r.mutable_conv1d_transpose()->set_data_format("NCW");
    add("conv1d-transpose-bf16-ncw-valid-dilated", Operands(r, kBF16, {2, 4, 6}, {3, 2, 4}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv1d_transpose()->mutable_output_shape(), {8});
    r.mutable_conv1d_transpose()->set_padding(v1::PADDING_SAME);
    add("conv1d-transpose-f32-width-only-refused", Operands(r, kF32, {1, 8, 3}, {3, 2, 3}),
        Code::kInvalidArgument);
  }
  // Edges: empty tensors, int64's far ends, errors.
  {
    v1::ConvRequest r;
    r.mutable_conv2d()->set_padding(v1::PADDING_SAME);
    add("conv2d-f32-empty-batch", Operands(r, kF32, {0, 5, 5, 2}, {3, 3, 2, 2}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv2d()->mutable_strides(), {kMax});
    r.mutable_conv2d()->set_padding(v1::PADDING_SAME);
    add("conv2d-f32-stride-int64-max", Operands(r, kF32, {1, 3, 3, 1}, {2, 2, 1, 1}));
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv2d()->mutable_dilations(), {kMax});
    r.mutable_conv2d()->set_padding(v1::PADDING_VALID);
    add("conv2d-f32-dilation-int64-max", Operands(r, kF32, {1, 3, 3, 1}, {2, 2, 1, 1}),
        Code::kInvalidArgument);
  }
  {
    v1::ConvRequest r;
    r.mutable_conv2d()->set_padding(v1::PADDING_EXPLICIT);
    Set(r.mutable_conv2d()->mutable_explicit_paddings(), {0, 0, kMax, kMax, 0, 0, 0, 0});
    add("conv2d-f32-explicit-pads-int64-max", Operands(r, kF32, {1, 3, 3, 1}, {2, 2, 1, 1}),
        Code::kInvalidArgument);
  }
  {
    v1::ConvRequest r;
    Set(r.mutable_conv2d_transpose()->mutable_output_shape(), {1, int64_t{1} << 40, 4, 1});
    Set(r.mutable_conv2d_transpose()->mutable_strides(), {int64_t{1} << 40, 1});
    r.mutable_conv2d_transpose()->set_padding(v1::PADDING_SAME);
    add("conv2d-transpose-f32-output-shape-huge", Operands(r, kF32, {1, 1, 4, 2}, {1, 1, 1, 2}),
        Code::kResourceExhausted);
  }
  {
    v1::ConvRequest r;
    r.mutable_atrous_conv2d()->set_rate(kMin);
    r.mutable_atrous_conv2d()->set_padding(v1::PADDING_SAME);
    add("atrous-f32-rate-int64-min", Operands(r, kF32, {1, 3, 3, 1}, {2, 2, 1, 1}),
        Code::kInvalidArgument);
  }
  {
    v1::ConvRequest r;
    r.mutable_conv2d()->set_padding(v1::PADDING_SAME);
    r = Operands(r, kF32, {1, 3, 3, 2}, {1});
    r.mutable_filter()->set_filter_id("0123456789abcdef");
    add("conv2d-f32-unknown-filter-id", r, Code::kNotFound);
  }
  return seeds;
}

// The requests of the bugs fuzz_conv_request found, as serialized requests
// (crash-*): each crashed or hung the target before its fix.
std::vector<ConvSeed> ConvCrashes() {
  std::vector<ConvSeed> crashes;
  {
    // The reference backend looped 2^63 times over the rows of an empty result.
    v1::ConvRequest r;
    r.mutable_conv2d()->set_padding(v1::PADDING_EXPLICIT);
    Set(r.mutable_conv2d()->mutable_explicit_paddings(), {0, 0, 0, 0, 0, 0, 0, 0});
    crashes.push_back({"reference-empty-result-huge-rows-hang",
                       Operands(r, kBF16, {1, kMax - 1, 0, 1}, {1, 1, 1, 1})});
  }
  {
    // ConvSpec's element counts multiplied huge dimensions before the 0.
    v1::ConvRequest r;
    Set(r.mutable_conv2d()->mutable_strides(), {1, 1, 1, 1});
    Set(r.mutable_conv2d()->mutable_dilations(), {1, 1, 1, 1});
    r.mutable_conv2d()->set_padding(v1::PADDING_VALID);
    r.mutable_conv2d()->set_data_format("NCHW");
    r.set_activation(v1::ACTIVATION_RELU);
    crashes.push_back({"conv-spec-elements-overflow",
                       Operands(r, kF32, {0, 3, (int64_t{1} << 62) + 1, 4}, {3, 2, 3, 3})});
  }
  return crashes;
}

struct TensorSeed {
  std::string name;
  v1::Tensor filter;
};

std::vector<TensorSeed> FilterSeeds() {
  std::vector<TensorSeed> seeds = {
      {"f32-conv2d-3x3x2x4", PatternTensor(kF32, {3, 3, 2, 4}, 1)},
      {"f64-conv2d-2x2x1x2", PatternTensor(kF64, {2, 2, 1, 2}, 2)},
      {"f16-conv1d-3x1x2", PatternTensor(kF16, {3, 1, 2}, 3)},
      {"bf16-conv3d-2x2x2x2x2", PatternTensor(kBF16, {2, 2, 2, 2, 2}, 4)},
      {"i32-conv2d-2x2x2x2", PatternTensor(kI32, {2, 2, 2, 2}, 5)},
      {"f32-bias-8", PatternTensor(kF32, {8}, 6)},
      {"f32-pointwise-1x1x4x2", PatternTensor(kF32, {1, 1, 4, 2}, 7)},
      {"f32-registered", RegisteredFilter()},
  };
  v1::Tensor mismatched = PatternTensor(kF32, {2, 2, 1, 1}, 8);
  mismatched.mutable_data()->pop_back();
  seeds.push_back({"f32-data-one-byte-short", mismatched});
  v1::Tensor no_dtype = PatternTensor(kF32, {1, 1, 1, 1}, 9);
  no_dtype.set_dtype(v1::DATA_TYPE_UNSPECIFIED);
  seeds.push_back({"no-dtype", no_dtype});
  return seeds;
}

// The bug fuzz_register_filter found: a filter without elements was stored
// without counting against the budget.
std::vector<TensorSeed> FilterCrashes() {
  v1::Tensor empty;
  empty.set_dtype(kF32);
  empty.add_shape(0);
  empty.add_shape(5);
  return {{"filter-store-empty-filter-uncharged", empty}};
}

// .npy bytes of `array` in format `version` (1, 2 or 3), padded as NumPy pads.
std::string NpyBytes(const convserve::client::NpyArray& array, int version) {
  const std::string v1 = convserve::client::SerializeNpy(array);
  if (version == 1) return v1;
  const size_t header_size = static_cast<unsigned char>(v1[8]) |
                             static_cast<size_t>(static_cast<unsigned char>(v1[9])) << 8;
  std::string header = v1.substr(10, header_size);
  header.pop_back();  // '\n'
  while ((12 + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string out = v1.substr(0, 6);
  out.push_back(static_cast<char>(version));
  out.push_back('\0');
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(header.size() >> (8 * i)));
  return out + header + array.data;
}

convserve::client::NpyArray Array(std::string descr, Shape shape, int item) {
  int64_t elements = 1;
  for (int64_t d : shape) elements *= d;
  std::string data(static_cast<size_t>(elements * item), '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 37 + 11);
  return {std::move(descr), std::move(shape), std::move(data)};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  const fs::path root(argv[1]);
  for (const char* target :
       {"fuzz_conv_request", "fuzz_register_filter", "fuzz_npy", "fuzz_auth"}) {
    fs::create_directories(root / target);
  }

  convserve::server::FilterStore filters(kFilterStoreBudget);
  const absl::StatusOr<std::string> id = filters.Register(RegisteredFilter());
  FUZZ_CHECK(id.ok(), id.status().ToString());
  int written = 0;
  for (const ConvSeed& seed : ConvSeeds(*id)) {
    const absl::StatusCode code =
        convserve::server::ParseConvRequest(seed.request, Limits(), filters).status().code();
    FUZZ_CHECK(code == seed.expected,
               absl::StrCat(seed.name, ": got ", absl::StatusCodeToString(code)));
    CheckConvRequest(seed.request, filters);
    Write(root / "fuzz_conv_request" / ("seed-" + seed.name + ".pb"),
          seed.request.SerializeAsString());
    ++written;
  }
  for (const ConvSeed& crash : ConvCrashes()) {
    CheckConvRequest(crash.request, filters);
    Write(root / "fuzz_conv_request" / ("crash-" + crash.name + ".pb"),
          crash.request.SerializeAsString());
    ++written;
  }
  for (const TensorSeed& seed : FilterSeeds()) {
    v1::RegisterFilterRequest request;
    *request.mutable_filter() = seed.filter;
    Write(root / "fuzz_register_filter" / ("seed-" + seed.name + ".pb"),
          request.SerializeAsString());
    ++written;
  }
  for (const TensorSeed& crash : FilterCrashes()) {
    v1::RegisterFilterRequest request;
    *request.mutable_filter() = crash.filter;
    Write(root / "fuzz_register_filter" / ("crash-" + crash.name + ".pb"),
          request.SerializeAsString());
    ++written;
  }

  using convserve::client::NpyArray;
  const std::pair<std::string, std::string> npy[] = {
      {"f4-2x3-v1", NpyBytes(Array("<f4", {2, 3}, 4), 1)},
      {"f8-scalar-v1", NpyBytes(Array("<f8", {}, 8), 1)},
      {"f2-4-v1", NpyBytes(Array("<f2", {4}, 2), 1)},
      {"i4-1x3-v1", NpyBytes(Array("<i4", {1, 3}, 4), 1)},
      {"u2-bfloat16-bits-2x2-v1", NpyBytes(Array("<u2", {2, 2}, 2), 1)},
      {"u1-empty-0x3-v1", NpyBytes(Array("|u1", {0, 3}, 1), 1)},
      {"f4-big-endian-2-v1", NpyBytes(Array(">f4", {2}, 4), 1)},
      {"f4-1x2x2x1-v2", NpyBytes(Array("<f4", {1, 2, 2, 1}, 4), 2)},
      {"i4-3-v3", NpyBytes(Array("<i4", {3}, 4), 3)},
      {"f8-2x1x1x2x1-v1", NpyBytes(Array("<f8", {2, 1, 1, 2, 1}, 8), 1)},
  };
  for (const auto& [name, bytes] : npy) {
    FUZZ_CHECK(convserve::client::ParseNpy(bytes).ok(), name);
    Write(root / "fuzz_npy" / ("seed-" + name + ".npy"), bytes);
    ++written;
  }
  // The bug fuzz_npy found: a header over 65,535 bytes written as version
  // 1.0, its length truncated (these bytes make the target build one).
  Write(root / "fuzz_npy" / "crash-npy-long-header-written-as-v1", std::string("\xff\x7f\x00", 3));
  ++written;
  std::string fortran = NpyBytes(Array("<f4", {2, 2}, 4), 1);
  fortran.replace(fortran.find("False"), 5, "True ");
  Write(root / "fuzz_npy" / "seed-f4-fortran-order-v1.npy", fortran);
  ++written;
  // fuzz_auth: a tokens file, '\0', an authorization header, then '\0' and
  // the common names of a client certificate.
  const std::string alice =
      "9c220f200955d76c0a38d308225e0ef10c5f971acaf2f8d1d8f732affa5bd1dc";  // "alice-token"
  const std::string carol =
      "6c0d2c0b430d9d9e3231e2645090c735a5059173d4ddf51f186e3f32e01bc832";  // "carol-token"
  const std::string file = "# principals\n" + alice + " alice conv,register\n" + carol +
                           " carol info\ncn=client-bob bob conv\n";
  const std::pair<std::string, std::string> auth[] = {
      {"bearer-alice", file + '\0' + "Bearer alice-token"},
      {"bearer-carol-lacks-conv", file + '\0' + "Bearer carol-token"},
      {"bearer-unknown", file + '\0' + "Bearer not-a-known-token"},
      {"bearer-lowercase", file + '\0' + "bearer alice-token"},
      {"client-certificate", file + '\0' + '\0' + "client-bob" + '\0' + "other"},
      {"no-credentials", file},
      {"comments-tabs-crlf", "# a comment\n\n \t\r\n" + alice + "\talice\tconv,info # end\r\n" +
                                 '\0' + "Bearer alice-token"},
      {"bad-hash", "12345 alice conv\n"},
      {"unknown-scope", alice + " alice admin\n"},
      {"missing-field", alice + " alice\n"},
      {"empty-common-name", "cn= nobody conv\n"},
  };
  for (const auto& [name, bytes] : auth) {
    Write(root / "fuzz_auth" / ("seed-" + name), bytes);
    ++written;
  }
  std::printf("wrote %d files under %s\n", written, root.c_str());
  return 0;
}
