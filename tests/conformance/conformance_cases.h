// The conformance cases every backend is checked against ReferenceBackend,
// the oracle, with: the requests, their operands and reference results, and
// the tolerances a backend's result must meet. Backend-independent; the
// backend suites (onednn_conformance_test.cc, cuda_conformance_test.cc) run
// these on their backend.
//
// Every case is a request built the way the server builds it: an op's
// parameter struct and operand shapes go through MakeSpec, and the backend
// and the reference run the resulting spec on the same seeded random
// operands. AllCases() covers all eleven ops x dtypes x layouts x padding x
// stride/dilation, on random small shapes and on hand-picked edge cases (1x1
// inputs, empty outputs and batches, odd SAME padding, channel counts that are
// not multiples of 16, groups, depthwise multipliers, grouped pointwise,
// atrous, transposed VALID trailing positions, dilated transposes, transposes
// with explicit paddings and with spatial-only output shapes, extra batch
// dims) and fused bias + activations on every epilogue path. The list
// is deterministic: the same names, geometries and seeds on every run.
//
// Tolerances (Compare; per output element; M = sum |x * w| over its
// reduction, in float64, plus |bias|; K = the reduction length):
// - float32: 1e-5 * M. Backend and reference both accumulate in float, in
//   different orders (oneDNN's blocking, cuDNN's algorithm).
// - float32 with spec.allow_reduced_precision: as bfloat16 and float16 below,
//   with the epsilon of the precision the backend may round the operands to
//   (CompareOptions::reduced_precision_epsilon): TF32's 2^-10 by default (a
//   GPU's tensor cores), bfloat16's 2^-7 for a CPU computing in bfloat16; the
//   products are accumulated in float either way.
// - bfloat16, float16: (2 * eps + K * eps_f32) * M + one ulp of the output.
//   Both accumulate in float (products of these types are exact in float) and
//   round to the dtype at the end; the reference also rounds before the bias,
//   the activation and the separable pointwise step, where a backend may fuse.
// - float64 computed by the backend itself (CompareOptions::native): 1e-12 *
//   M, both sides accumulating in double in different orders.
// - int32: identical (integer arithmetic, wrapping, is exact in any order).
// - ELU, sigmoid, tanh: a backend's approximations may differ by a few float
//   ulps; 4 * eps_f32 * (1 + |expected|) more.
// - A dtype the backend does not compute itself but hands to the reference
//   loops (CompareOptions::native false, e.g. oneDNN's float64 and int32):
//   identical.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/backend.h"
#include "core/conv_spec.h"
#include "core/dtype.h"
#include "core/op_params.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace convserve::conformance {

// ---------------------------------------------------------------------------
// Requests.

enum class Op {
  kConvolution,
  kConv1D,
  kConv2D,
  kConv3D,
  kDepthwise,
  kSeparable,
  kAtrous,
  kConv2DTranspose,
  kConv3DTranspose,
  kConvTranspose,
  kConv1DTranspose,
};

inline constexpr Op kAllOps[] = {Op::kConvolution,   Op::kConv1D,          Op::kConv2D,
                                 Op::kConv3D,        Op::kDepthwise,       Op::kSeparable,
                                 Op::kAtrous,        Op::kConv2DTranspose, Op::kConv3DTranspose,
                                 Op::kConvTranspose, Op::kConv1DTranspose};

const char* OpLabel(Op op);              // e.g. "conv2d_transpose"
bool HasDataFormat(Op op);               // every op but atrous takes a data_format
const char* DtypeLabel(DataType dtype);  // "f32", "f64", "f16", "bf16", "i32"

// The dtypes TensorFlow's kernels (and so MakeSpec) accept for `op` of
// spatial rank `n`.
std::vector<DataType> DtypesFor(Op op, int n);

// One request in the op's own terms. Channel counts are those of the forward
// convolution x (*) w -> y: for a transposed op x is the result (its spatial
// sizes are output_shape's) and y the request's input.
struct Geometry {
  Op op = Op::kConv2D;
  int n = 2;                          // spatial rank of the op
  std::vector<int64_t> batch = {1};   // leading dims; more than one: extra batch dims
  std::vector<int64_t> spatial = {};  // x
  std::vector<int64_t> kernel = {};
  std::vector<int64_t> strides = {};    // empty: all 1
  std::vector<int64_t> dilations = {};  // empty: all 1
  int64_t in_channels = 1;              // x channels
  int64_t out_channels = 1;             // y channels; depthwise: the multiplier
  int64_t groups = 1;
  Padding padding = Padding::kSame;
  std::vector<int64_t> pad_before = {};  // kExplicit only
  std::vector<int64_t> pad_after = {};
  // Transposed ops: output_shape gives the spatial sizes only (conv2d_transpose's
  // (H, W); conv1d_transpose's (W), which TF reads as (W, 1): W must be 1);
  // the result's channels are then the filter's in-depth, so groups must be 1.
  bool spatial_output_shape = false;
  bool channels_last = true;
  int64_t pointwise_out = 0;  // separable
  int64_t pointwise_groups = 1;
  bool bias = false;
  Activation activation = Activation::kNone;
};

// One line for failure messages.
std::string Describe(const Geometry& g);

// The spec MakeSpec makes of `g`'s request in `dtype` (no operands, no
// reference run): for routing questions such as Backend::Computes.
absl::StatusOr<ConvSpec> SpecOf(const Geometry& g, DataType dtype);

// A small conv2d (6x6x8 (*) 3x3x8x16, SAME) for weight-cache tests.
Geometry CacheGeometry();
// Every path a weight cache serves: CacheGeometry, separable (two cached
// filters per request, and a bias) and a grouped, strided transpose.
std::vector<Geometry> CacheGeometries();

// ---------------------------------------------------------------------------
// Tensors of any dtype.

struct Buffer {
  DataType dtype = DataType::kFloat32;
  Shape shape;
  std::vector<std::byte> bytes;

  int64_t size() const;  // elements
  ConstTensorView view() const { return {dtype, shape, bytes.data()}; }
  TensorView mutable_view() { return {dtype, shape, bytes.data()}; }
  double Get(int64_t i) const;  // element i as a double
};

Buffer Zeros(DataType dtype, Shape shape);

// ---------------------------------------------------------------------------
// Problems: one prepared request.

struct Problem {
  std::string label;  // for failure messages; set by the caller
  ConvSpec spec;
  Buffer input, filter, pointwise, bias;
  Buffer expected;   // ReferenceBackend in spec.dtype
  Buffer magnitude;  // sum |x * w| over each element's reduction, float64
  int64_t reduction = 0;

  Operands operands() const;  // views of the buffers above
  Buffer NewResult() const { return Zeros(spec.dtype, spec.result_shape); }
};

// `g`'s request in `dtype` with operands drawn from `seed` (uniform in
// [-1, 1]; small integers for int32), its spec from MakeSpec, and the
// reference's result. The error MakeSpec or the reference gives, if any.
absl::StatusOr<Problem> Prepare(const Geometry& g, DataType dtype, uint32_t seed);
// Prepare, with a test failure if it fails; labels the problem.
Problem MustPrepare(const Geometry& g, DataType dtype, uint32_t seed);

struct CompareOptions {
  // Whether the backend computes the problem's dtype itself (the dtype's
  // tolerance applies) or hands it to the reference loops (the result must
  // be identical), e.g. OneDnnBackend::ComputesDtype(dtype).
  bool native = true;
  // float32 specs with allow_reduced_precision: the epsilon of the precision
  // the backend may round the operands to (TF32: 2^-10; bfloat16: 2^-7).
  double reduced_precision_epsilon = 0x1p-10;
  size_t limit = 5;                 // mismatching elements described at most
  std::string backend = "backend";  // its name in the messages
};

// The tolerance of element i of p's result (see the file comment); 0 when
// the result must be identical.
double Tolerance(const Problem& p, int64_t i, const CompareOptions& options = {});

// Mismatches of `got` against p.expected: one message per element described
// (at most options.limit) and a summary line; empty when every element is
// finite and within its tolerance.
std::vector<std::string> Compare(const Problem& p, const Buffer& got,
                                 const CompareOptions& options = {});

// Runs `p` on `backend` and adds a test failure unless it succeeds with the
// reference's answer.
void RunAndCheck(Backend& backend, const Problem& p, const CompareOptions& options = {});

// ---------------------------------------------------------------------------
// The cases.

struct Case {
  std::string name;  // unique, a valid test name, e.g. "conv2d_edge_first_bf16_123"
  Geometry geometry;
  DataType dtype;
  uint32_t seed;
};

// For gtest's parameter names in failure messages.
void PrintTo(const Case& c, std::ostream* os);

// Every case, in a fixed order: per op, random geometries and edge geometries
// in both layouts, then every activation with and without a bias on each
// epilogue path; each in every dtype the op takes.
std::vector<Case> AllCases();

}  // namespace convserve::conformance
