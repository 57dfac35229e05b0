#include "core/onednn/onednn_backend.h"

#include <omp.h>

#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "core/element_types.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace convserve {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

dnnl::engine& CpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

Dt UserType(DataType dtype) {
  switch (dtype) {
    case DataType::kBFloat16: return Dt::bf16;
    case DataType::kFloat16: return Dt::f16;
    default: return Dt::f32;
  }
}

// Whether oneDNN 2.6.3 computes `s` correctly in bfloat16. Its AMX bfloat16
// kernels fail tests/onednn_conformance_test.cc on two classes of problems:
// - 3-D convolutions: brgconv:avx512_core_amx_bf16 gives wrong values with 2
//   threads (e.g. 5x4x4x33 input, 2x1x1 filter, depth stride 3), and the
//   non-brgemm kernels it would fall back to are wrong on 1x1x1 filters;
// - a window lying entirely in the padding (an explicit pad >= the dilated
//   filter): brgconv segfaults when such a dimension is also strided.
// These compute in float32 instead, which is at least as accurate.
bool NativeBFloat16(const ConvSpec& s) {
  if (s.rank == 3) return false;
  for (int i = 0; i < s.rank; ++i) {
    const int64_t effective = (s.filter_spatial[i] - 1) * s.dilations[i] + 1;
    if (s.pad_before[i] >= effective || s.pad_after[i] >= effective) return false;
  }
  return true;
}

// Whether the CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX), so
// that a float32 request allowing reduced precision gains from it.
bool HardwareBFloat16() {
  static const bool hardware = [] {
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
  }();
  return hardware;
}

// Whether `s` computes in bfloat16 though its dtype is float32: the request
// allows reduced precision and the hardware multiplies bfloat16.
bool ReducedFloat32(const ConvSpec& s) {
  return s.dtype == DataType::kFloat32 && s.allow_reduced_precision && HardwareBFloat16() &&
         NativeBFloat16(s);
}

// The type oneDNN computes `s` in: float16 computes in float32 (oneDNN 2.6 has
// no float16 convolution on CPU), and so does bfloat16 where it cannot run
// natively; float32 computes in bfloat16 when ReducedFloat32.
Dt ComputeType(const ConvSpec& s) {
  return (s.dtype == DataType::kBFloat16 && NativeBFloat16(s)) || ReducedFloat32(s) ? Dt::bf16
                                                                                    : Dt::f32;
}

// The type the last stage writes: float32 for float32 requests (a reduced
// one accumulates in float32 and is not rounded to bfloat16 on the way out),
// else the compute type.
Dt ResultType(const ConvSpec& s) {
  return s.dtype == DataType::kFloat32 ? Dt::f32 : ComputeType(s);
}

memory::dims Spatial(const std::array<int64_t, kMaxSpatialRank>& dims, int rank) {
  return memory::dims(dims.begin(), dims.begin() + rank);
}

// An activation [N, C, spatial...] in logical order, laid out channels-last or first.
memory::desc ActivationDesc(int64_t batch, int64_t channels,
                            const std::array<int64_t, kMaxSpatialRank>& spatial, int rank, Dt type,
                            bool channels_last) {
  memory::dims dims{batch, channels};
  for (int i = 0; i < rank; ++i) dims.push_back(spatial[i]);
  const Tag tag = rank == 2 ? (channels_last ? Tag::nhwc : Tag::nchw)
                            : (channels_last ? Tag::ndhwc : Tag::ncdhw);
  return memory::desc(dims, type, tag);
}

// The oneDNN weights of a convolution with TensorFlow's filter [spatial...,
// in / groups, out]: [(groups,) out / groups, in / groups, spatial...]. A
// deconvolution (`transposed`) runs from `out` channels to `in` channels and
// wants [(groups,) in / groups, out / groups, spatial...] of the same filter.
// With `strides`, the desc views TensorFlow's bytes in place; without, it is
// the `any` layout for the primitive to choose.
memory::desc WeightsDesc(int64_t groups, int64_t in_channels, int64_t out_channels,
                         const std::array<int64_t, kMaxSpatialRank>& kernel, int rank, Dt type,
                         bool transposed, bool strides) {
  const int64_t in_per_group = in_channels / groups, out_per_group = out_channels / groups;
  // (size, stride in TensorFlow's filter) of the output and input channel dims.
  std::pair<int64_t, int64_t> out_dim{out_per_group, 1}, in_dim{in_per_group, out_channels};
  if (transposed) std::swap(out_dim, in_dim);
  memory::dims dims, tf_strides;
  if (groups > 1) {
    dims.push_back(groups);
    tf_strides.push_back(out_per_group);
  }
  dims.insert(dims.end(), {out_dim.first, in_dim.first});
  tf_strides.insert(tf_strides.end(), {out_dim.second, in_dim.second});
  int64_t stride = in_per_group * out_channels;
  memory::dims spatial_strides(rank);
  for (int i = rank - 1; i >= 0; --i) {
    spatial_strides[i] = stride;
    stride *= kernel[i];
  }
  for (int i = 0; i < rank; ++i) {
    dims.push_back(kernel[i]);
    tf_strides.push_back(spatial_strides[i]);
  }
  return strides ? memory::desc(dims, type, tf_strides) : memory::desc(dims, type, Tag::any);
}

dnnl::post_ops EpilogueOps(Activation activation) {
  dnnl::post_ops ops;
  switch (activation) {
    case Activation::kNone: break;
    case Activation::kRelu: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f); break;
    case Activation::kRelu6:
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_clip, 0.f, 6.f);
      break;
    case Activation::kElu: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_elu, 1.f, 0.f); break;
    case Activation::kLeakyRelu:
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.2f, 0.f);
      break;
    case Activation::kSigmoid:
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_logistic, 0.f, 0.f);
      break;
    case Activation::kTanh: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_tanh, 0.f, 0.f); break;
  }
  return ops;
}

// One oneDNN convolution (forward or backward-data) with its weights' user
// layout; `primitive_weights` is what the primitive wants them reordered to.
struct Stage {
  dnnl::primitive primitive;
  memory::desc user_weights;
  memory::desc primitive_weights;
  memory scratchpad;
  bool has_bias = false;
  std::string implementation;
};

// Everything needed to run one spec: the stages, and reorders of the
// activations between the client's layout/dtype and the compute's.
struct Plan {
  std::vector<Stage> stages;  // 1, or 2 for separable (depthwise, pointwise)
  memory user_src, user_dst;  // handles set per call
  memory src, dst;            // what the first stage reads, the last writes
  memory intermediate;        // separable: depthwise result
  // Separable computed in float32 for a 16-bit dtype: the intermediate goes
  // through `rounded` (the dtype) and back, as TensorFlow materialises it.
  memory rounded;
  std::optional<dnnl::reorder> round_down, round_up;
  std::optional<dnnl::reorder> src_reorder, dst_reorder;
};

struct ConvGeometry {  // the convolution one stage computes
  int64_t groups, in_channels, out_channels;
  std::array<int64_t, kMaxSpatialRank> in, kernel, out, strides, dilations, pad_l, pad_r;
};

ConvGeometry MainGeometry(const ConvSpec& s) {
  ConvGeometry g{s.groups,         s.in_channels, s.out_channels, s.input_spatial, s.filter_spatial,
                 s.output_spatial, s.strides,     s.dilations,    s.pad_before,    s.pad_after};
  for (int64_t& d : g.dilations) d -= 1;  // oneDNN counts the gaps
  return g;
}

ConvGeometry PointwiseGeometry(const ConvSpec& s) {
  ConvGeometry g{s.pointwise_groups, s.out_channels, s.pointwise_out_channels,
                 s.output_spatial,   {1, 1, 1},      s.output_spatial,
                 {1, 1, 1},          {0, 0, 0},      {0, 0, 0},
                 {0, 0, 0}};
  return g;
}

dnnl::primitive_attr Attr(Activation activation) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  attr.set_post_ops(EpilogueOps(activation));
  return attr;
}

// A convolution from `src` to `dst` with the fused bias and activation; when
// `transposed`, the deconvolution (gradient of the convolution of `g` with
// respect to its input) from `src` (dy) to `dst` (dx).
template <typename Primitive>
Stage MakeStage(const ConvSpec& s, const ConvGeometry& g, bool transposed, const memory::desc& src,
                const memory::desc& dst, bool bias, Activation activation) {
  const int r = s.rank;
  auto weights = [&](Dt type, bool strides) {
    return WeightsDesc(g.groups, g.in_channels, g.out_channels, g.kernel, r, type, transposed,
                       strides);
  };
  const int64_t dst_channels = transposed ? g.in_channels : g.out_channels;
  const memory::desc bias_desc =
      bias ? memory::desc({dst_channels}, Dt::f32, Tag::a) : memory::desc();
  const dnnl::algorithm algorithm =
      transposed ? dnnl::algorithm::deconvolution_direct : dnnl::algorithm::convolution_direct;
  typename Primitive::desc desc(dnnl::prop_kind::forward_inference, algorithm, src,
                                weights(ComputeType(s), false), bias_desc, dst,
                                Spatial(g.strides, r), Spatial(g.dilations, r), Spatial(g.pad_l, r),
                                Spatial(g.pad_r, r));
  typename Primitive::primitive_desc pd(desc, Attr(activation), CpuEngine());
  Stage stage;
  stage.primitive = Primitive(pd);
  stage.user_weights = weights(UserType(s.dtype), true);
  stage.primitive_weights = pd.weights_desc();
  stage.scratchpad = memory(pd.scratchpad_desc(), CpuEngine());
  stage.has_bias = bias;
  stage.implementation = pd.impl_info_str();
  return stage;
}

Stage ForwardStage(const ConvSpec& s, const ConvGeometry& g, const memory::desc& src,
                   const memory::desc& dst, bool bias, Activation activation) {
  return MakeStage<dnnl::convolution_forward>(s, g, false, src, dst, bias, activation);
}

Stage DeconvolutionStage(const ConvSpec& s, const ConvGeometry& g, const memory::desc& dy,
                         const memory::desc& dx) {
  return MakeStage<dnnl::deconvolution_forward>(s, g, true, dy, dx, s.has_bias, s.activation);
}

// A buffer for `desc` unless the client's memory can be used directly.
memory InternalOrUser(const memory::desc& internal, const memory::desc& user) {
  return internal == user ? memory(user, CpuEngine(), nullptr) : memory(internal, CpuEngine());
}

std::unique_ptr<Plan> MakePlan(const ConvSpec& s) {
  auto plan = std::make_unique<Plan>();
  const int r = s.rank;
  const Dt user = UserType(s.dtype), compute = ComputeType(s), result = ResultType(s);
  // Forward geometry: x (input side) and y (output side) of the convolution.
  const memory::desc x_user =
      ActivationDesc(s.batch, s.in_channels, s.input_spatial, r, user, s.channels_last);
  const memory::desc x_internal = ActivationDesc(s.batch, s.in_channels, s.input_spatial, r,
                                                 s.transposed ? result : compute, true);
  const int64_t y_channels = s.out_channels;
  const bool y_is_result = !s.transposed && s.pointwise_out_channels == 0;
  const memory::desc y_internal = ActivationDesc(s.batch, y_channels, s.output_spatial, r,
                                                 y_is_result ? result : compute, true);

  if (s.transposed) {
    const memory::desc y_user =
        ActivationDesc(s.batch, y_channels, s.output_spatial, r, user, s.channels_last);
    plan->stages.push_back(DeconvolutionStage(s, MainGeometry(s), y_internal, x_internal));
    plan->user_src = memory(y_user, CpuEngine(), nullptr);
    plan->user_dst = memory(x_user, CpuEngine(), nullptr);
    plan->src = InternalOrUser(y_internal, y_user);
    plan->dst = InternalOrUser(x_internal, x_user);
  } else if (s.pointwise_out_channels > 0) {
    const memory::desc z_internal =
        ActivationDesc(s.batch, s.pointwise_out_channels, s.output_spatial, r, result, true);
    const memory::desc z_user = ActivationDesc(s.batch, s.pointwise_out_channels, s.output_spatial,
                                               r, user, s.channels_last);
    plan->stages.push_back(
        ForwardStage(s, MainGeometry(s), x_internal, y_internal, false, Activation::kNone));
    plan->stages.push_back(
        ForwardStage(s, PointwiseGeometry(s), y_internal, z_internal, s.has_bias, s.activation));
    plan->intermediate = memory(y_internal, CpuEngine());
    if (compute == Dt::f32 && user != Dt::f32) {
      plan->rounded =
          memory(ActivationDesc(s.batch, y_channels, s.output_spatial, r, user, true), CpuEngine());
      plan->round_down = dnnl::reorder(plan->intermediate, plan->rounded);
      plan->round_up = dnnl::reorder(plan->rounded, plan->intermediate);
    }
    plan->user_src = memory(x_user, CpuEngine(), nullptr);
    plan->user_dst = memory(z_user, CpuEngine(), nullptr);
    plan->src = InternalOrUser(x_internal, x_user);
    plan->dst = InternalOrUser(z_internal, z_user);
  } else {
    const memory::desc y_user =
        ActivationDesc(s.batch, y_channels, s.output_spatial, r, user, s.channels_last);
    plan->stages.push_back(
        ForwardStage(s, MainGeometry(s), x_internal, y_internal, s.has_bias, s.activation));
    plan->user_src = memory(x_user, CpuEngine(), nullptr);
    plan->user_dst = memory(y_user, CpuEngine(), nullptr);
    plan->src = InternalOrUser(x_internal, x_user);
    plan->dst = InternalOrUser(y_internal, y_user);
  }
  if (plan->src.get_desc() != plan->user_src.get_desc()) {
    plan->src_reorder = dnnl::reorder(plan->user_src, plan->src);
  }
  if (plan->dst.get_desc() != plan->user_dst.get_desc()) {
    plan->dst_reorder = dnnl::reorder(plan->dst, plan->user_dst);
  }
  return plan;
}

// The bias as float32, which every primitive here takes.
const float* BiasAsFloat(const ConvSpec& spec, const ConstTensorView& bias,
                         std::vector<float>* storage) {
  if (!spec.has_bias) return nullptr;
  if (spec.dtype == DataType::kFloat32) return bias.as<float>();
  const int64_t n = spec.ResultChannels();
  storage->resize(n);
  DispatchDataType(spec.dtype, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t i = 0; i < n; ++i) (*storage)[i] = static_cast<float>(bias.as<T>()[i]);
  });
  return storage->data();
}

constexpr size_t kMaxPlans = 256;

}  // namespace

struct OneDnnBackend::Impl {
  OneDnnOptions options;
  dnnl::stream stream{CpuEngine()};
  absl::flat_hash_map<ConvSpec, std::unique_ptr<Plan>> plans;
  std::vector<float> bias_storage;

  Plan& PlanFor(const ConvSpec& spec) {
    auto it = plans.find(spec);
    if (it != plans.end()) return *it->second;
    if (plans.size() >= kMaxPlans) plans.clear();
    return *plans.emplace(spec, MakePlan(spec)).first->second;
  }

  // The stage's weights in the primitive's layout: from the cache, or
  // reordered now (and cached).
  std::shared_ptr<const memory> Weights(const ConvSpec& spec, const Stage& stage, int index,
                                        const ConstTensorView& filter,
                                        std::optional<uint64_t> known_hash) {
    const size_t bytes = stage.user_weights.get_size();
    WeightKey key;
    if (options.weight_cache) {
      const uint64_t hash =
          known_hash
              ? *known_hash
              : ContentHash(absl::string_view(reinterpret_cast<const char*>(filter.data), bytes));
      key = WeightKey{hash, static_cast<int64_t>(bytes), spec, index};
      if (auto cached = options.weight_cache->Find(key)) {
        return std::static_pointer_cast<const memory>(cached);
      }
    }
    memory user(stage.user_weights, CpuEngine(), const_cast<std::byte*>(filter.data));
    auto reordered = std::make_shared<memory>(stage.primitive_weights, CpuEngine());
    dnnl::reorder(user, *reordered).execute(stream, user, *reordered);
    if (options.weight_cache) {
      options.weight_cache->Insert(key, reordered,
                                   static_cast<int64_t>(stage.primitive_weights.get_size()));
    }
    return reordered;
  }

  void Execute(const ConvSpec& spec, Plan& plan, const Operands& operands, TensorView out) {
    plan.user_src.set_data_handle(const_cast<std::byte*>(operands.input.data));
    plan.user_dst.set_data_handle(out.data);
    if (!plan.src_reorder) plan.src.set_data_handle(const_cast<std::byte*>(operands.input.data));
    if (!plan.dst_reorder) plan.dst.set_data_handle(out.data);
    if (plan.src_reorder) plan.src_reorder->execute(stream, plan.user_src, plan.src);

    const float* bias = BiasAsFloat(spec, operands.bias, &bias_storage);
    for (size_t i = 0; i < plan.stages.size(); ++i) {
      const Stage& stage = plan.stages[i];
      const bool first = i == 0;
      std::shared_ptr<const memory> weights = Weights(
          spec, stage, static_cast<int>(i), first ? operands.filter : operands.pointwise_filter,
          first ? operands.filter_hash : operands.pointwise_filter_hash);
      const bool last = i + 1 == plan.stages.size();
      const memory& in = i == 0 ? plan.src : plan.intermediate;
      const memory& result = last ? plan.dst : plan.intermediate;
      std::unordered_map<int, memory> args{{DNNL_ARG_WEIGHTS, *weights},
                                           {DNNL_ARG_SCRATCHPAD, stage.scratchpad}};
      args.emplace(DNNL_ARG_SRC, in);
      args.emplace(DNNL_ARG_DST, result);
      if (stage.has_bias) {
        args.emplace(DNNL_ARG_BIAS, memory(memory::desc({spec.ResultChannels()}, Dt::f32, Tag::a),
                                           CpuEngine(), const_cast<float*>(bias)));
      }
      stage.primitive.execute(stream, args);
      if (!last && plan.round_down) {
        plan.round_down->execute(stream, plan.intermediate, plan.rounded);
        plan.round_up->execute(stream, plan.rounded, plan.intermediate);
      }
    }
    if (plan.dst_reorder) plan.dst_reorder->execute(stream, plan.dst, plan.user_dst);
    stream.wait();
  }
};

OneDnnBackend::OneDnnBackend(OneDnnOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

OneDnnBackend::~OneDnnBackend() = default;

bool OneDnnBackend::ComputesDtype(DataType dtype) {
  return dtype == DataType::kFloat32 || dtype == DataType::kBFloat16 || dtype == DataType::kFloat16;
}

namespace {

// Below this many floating-point operations a convolution runs on the calling
// thread alone: forming an OpenMP team costs more than it saves. On a 2-core
// AVX-512 machine a 0.9 MFLOP conv2d ran at 138 GFLOP/s on one thread and 96
// on two (1x8x8x4: 8 and 2), while 3.6 MFLOP and more ran faster on two.
constexpr double kMinParallelFlops = 1e6;

// oneDNN 2.6.3 refuses strides and dilations past 2^31 and takes time linear in
// the padding to build a primitive (about 2 s at a dilation of 10^6 with SAME
// padding). Windows past this bound, which only extreme requests have, go to
// another backend: their results are small and cheap to compute in loops.
constexpr int64_t kMaxWindowParameter = 1024;

bool WindowWithinBound(const ConvSpec& spec) {
  for (int d = 0; d < spec.rank; ++d) {
    for (int64_t value :
         {spec.strides[d], spec.dilations[d], spec.pad_before[d], spec.pad_after[d]}) {
      if (value > kMaxWindowParameter) return false;
    }
  }
  return true;
}

}  // namespace

bool OneDnnBackend::Computes(const ConvSpec& spec) const {
  return ComputesDtype(spec.dtype) && spec.InputElements() > 0 && spec.OutputElements() > 0 &&
         WindowWithinBound(spec);
}

std::string OneDnnBackend::Precision(const ConvSpec& spec) const {
  return ReducedFloat32(spec) ? "bfloat16" : std::string(DtypeName(spec.dtype));
}

namespace {

// The instruction sets on which tests/batch_invariance_test.cc found every
// image's result bytes equal alone and in batches of 2 to 16 (oneDNN 2.6.3;
// float32, float32 in bfloat16, bfloat16 and float16; every op; 1 and 2
// threads). Add one only once that test passes on it.
bool BatchInvariantIsa() {
  static const bool verified = [] {
    const std::string isa = OneDnnBackend::Isa();
    return isa == "avx512_core_bf16";
  }();
  return verified;
}

}  // namespace

bool OneDnnBackend::BatchInvariant(const ConvSpec& spec) const {
  return Computes(spec) && BatchInvariantIsa();
}

BackendInfo OneDnnBackend::Describe() const {
  BackendInfo info{
      .name = std::string(Name()),
      .version = LibraryVersion(),
      .device = Isa(),
      .native_dtypes = {},
      .notes =
          "float32 and bfloat16 native; float32 in bfloat16 with float32 accumulation when a "
          "request allows reduced precision and the CPU multiplies bfloat16 (AVX512-BF16, AMX); "
          "float16 computed in float32 and rounded once; "
          "float64, int32, empty tensors and windows with a stride, dilation or pad over 1024 "
          "are not computed here",
  };
  for (DataType dtype : kAllDataTypes) {
    if (ComputesDtype(dtype)) info.native_dtypes.push_back(dtype);
  }
  return info;
}

int OneDnnBackend::Threads(const ConvSpec& spec) const {
  return spec.Flops() < kMinParallelFlops ? 1 : impl_->options.threads;
}

absl::Status OneDnnBackend::Run(const ConvSpec& spec, const Operands& operands, TensorView out) {
  if (!Computes(spec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the onednn backend does not compute ", spec.DebugString()));
  }
  // The thread count depends on the spec alone, so a request computes to the
  // same bytes on every worker and inline (and alone as in a batch: see
  // BatchInvariantIsa).
  omp_set_num_threads(Threads(spec));
  Plan* plan;
  try {
    plan = &impl_->PlanFor(spec);
  } catch (const dnnl::error& e) {
    // oneDNN takes no primitive for some valid specs (e.g. strides or
    // dilations in the billions): another backend may compute them.
    return absl::UnimplementedError(
        absl::StrCat("oneDNN has no primitive for ", spec.DebugString(), ": ", e.what()));
  }
  try {
    impl_->Execute(spec, *plan, operands, out);
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("oneDNN: ", e.what(), " for ", spec.DebugString()));
  }
  return absl::OkStatus();
}

std::string OneDnnBackend::LibraryVersion() {
  const dnnl::version_t* v = dnnl::version();
  return absl::StrCat(v->major, ".", v->minor, ".", v->patch);
}

std::string OneDnnBackend::Isa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::sse41: return "sse41";
    default: return "other";
  }
}

}  // namespace convserve
