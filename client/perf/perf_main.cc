// convserve-perf: ConvServe's load generator. Sweeps closed-loop concurrency
// (a list "1,4,16" or a range "1:64:x2") or open-loop arrival rates, through
// unary Conv, ConvStream or the Echo baseline, and reports per step requests
// ok, errors by status code, req/s, GFLOP/s and latency percentiles.
//
//   convserve-perf --address 127.0.0.1:50051 --mode unary --op conv2d
//       --input-shape 1,56,56,64 --filter-shape 3,3,64,64 --padding SAME
//       --concurrency 1:16:x2 --compare-echo --compare-in-process
//
// --compare-echo runs every step again through EchoService with the same
// request and reply sizes (gRPC's own floor on this server) and prints the
// ours/echo throughput ratio; --compare-in-process measures the same op in this
// process on the oneDNN backend and prints served / in-process GFLOP/s.
//
// Several replicas: --target takes any gRPC target (e.g.
// "ipv4:127.0.0.2:50051,127.0.0.3:50051" or "dns:///convserve-headless:50051")
// with --lb-policy round_robin, --health-check (skip replicas that are not
// SERVING) and --max-attempts (retry UNAVAILABLE calls).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <deque>
#include <fstream>
#include <iostream>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "convserve/v1/convserve.grpc.pb.h"
#include "core/make_spec.h"
#include "core/onednn_backend.h"
#include "core/weight_cache.h"
#include "grpcpp/grpcpp.h"

namespace {

namespace v1 = ::convserve::v1;
using Clock = std::chrono::steady_clock;
using convserve::DataType;

// ---------------------------------------------------------------------------
// Options

struct Options {
  std::vector<std::string> addresses{"127.0.0.1:50051"};
  std::string target;
  std::string lb_policy;
  bool health_check = false;
  int max_attempts = 1;
  std::vector<std::string> retry_on{"UNAVAILABLE"};
  int connections = 1;
  std::string mode = "unary";
  std::string op = "conv2d";
  std::vector<int64_t> input_shape{1, 56, 56, 64};
  std::vector<int64_t> filter_shape{3, 3, 64, 64};
  std::vector<int64_t> strides;
  std::vector<int64_t> output_shape;
  std::string padding = "SAME";
  std::string dtype = "float32";
  bool registered_filter = false;
  std::string concurrency = "1";
  std::string rate;
  std::string arrivals = "constant";
  int max_in_flight = 64;
  int64_t requests = 1000;
  double duration_s = 10;
  int64_t warmup_requests = 10;
  int timeout_ms = 30000;
  bool compare_echo = false;
  bool compare_in_process = false;
  double in_process_seconds = 1.0;
  std::string csv_path, json_path, latency_log_path;
};

// The channel's service config: load balancing, client-side health checking
// and retries (Conv and Echo are idempotent). gRPC's retry throttling pauses
// retries once failures outrun successes by about 500 (a failure costs a
// token, a success earns 0.1, retrying needs more than half of 1000).
std::string ServiceConfigJson(const Options& o) {
  std::vector<std::string> parts;
  if (!o.lb_policy.empty()) {
    parts.push_back(absl::StrCat("\"loadBalancingConfig\":[{\"", o.lb_policy, "\":{}}]"));
  }
  if (o.health_check) {
    parts.push_back("\"healthCheckConfig\":{\"serviceName\":\"convserve.v1.ConvService\"}");
  }
  if (o.max_attempts > 1) {
    parts.push_back(absl::StrCat(
        "\"methodConfig\":[{\"name\":[{\"service\":\"convserve.v1.ConvService\",\"method\":"
        "\"Conv\"},{\"service\":\"convserve.v1.EchoService\"}],\"retryPolicy\":{"
        "\"maxAttempts\":", o.max_attempts, ",\"initialBackoff\":\"0.02s\",\"maxBackoff\":"
        "\"0.5s\",\"backoffMultiplier\":2,\"retryableStatusCodes\":[\"",
        absl::StrJoin(o.retry_on, "\",\""), "\"]}}],\"retryThrottling\":{\"maxTokens\":1000,"
        "\"tokenRatio\":0.1}"));
  }
  return parts.empty() ? "" : absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

// "1,4,16" or "lo:hi:xF" (lo, lo*F, ... up to hi).
std::vector<double> ParseSweep(const std::string& text) {
  std::vector<double> values;
  if (text.find(':') != std::string::npos) {
    std::vector<std::string> parts = absl::StrSplit(text, ':');
    double lo = 0, hi = 0, factor = 0;
    if (parts.size() != 3 || parts[2].empty() || parts[2][0] != 'x' ||
        !absl::SimpleAtod(parts[0], &lo) || !absl::SimpleAtod(parts[1], &hi) ||
        !absl::SimpleAtod(parts[2].substr(1), &factor) || lo <= 0 || hi < lo || factor <= 1) {
      throw CLI::ValidationError("sweep", "expected lo:hi:xF with 0 < lo <= hi and F > 1: " + text);
    }
    for (double v = lo; v <= hi * (1 + 1e-9); v *= factor) values.push_back(v);
  } else {
    for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
      double v = 0;
      if (!absl::SimpleAtod(part, &v) || v <= 0) {
        throw CLI::ValidationError("sweep", "expected positive numbers: " + text);
      }
      values.push_back(v);
    }
  }
  if (values.empty()) throw CLI::ValidationError("sweep", "empty: " + text);
  return values;
}

// ---------------------------------------------------------------------------
// The request

struct DtypeInfo {
  DataType core;
  v1::DataType wire;
};

DtypeInfo ParseDtype(const std::string& name) {
  if (name == "float32") return {DataType::kFloat32, v1::DATA_TYPE_FLOAT32};
  if (name == "float64") return {DataType::kFloat64, v1::DATA_TYPE_FLOAT64};
  if (name == "float16") return {DataType::kFloat16, v1::DATA_TYPE_FLOAT16};
  if (name == "bfloat16") return {DataType::kBFloat16, v1::DATA_TYPE_BFLOAT16};
  if (name == "int32") return {DataType::kInt32, v1::DATA_TYPE_INT32};
  throw CLI::ValidationError("--dtype", "unknown dtype " + name);
}

// Small values (|x| <= 1, or -3..3 for int32) so that no kernel hits denormals
// or overflow.
std::string RandomBytes(DataType dtype, int64_t elements, std::mt19937& rng) {
  std::uniform_int_distribution<int> pick(-4, 4);
  std::string bytes(static_cast<size_t>(elements * convserve::ItemSize(dtype)), '\0');
  char* out = bytes.data();
  for (int64_t i = 0; i < elements; ++i) {
    const int k = pick(rng);
    const float f = static_cast<float>(k) / 4.0f;
    switch (dtype) {
      case DataType::kFloat32:
        std::memcpy(out + 4 * i, &f, 4);
        break;
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

convserve::Padding CorePadding(const std::string& padding) {
  if (padding == "SAME") return convserve::Padding::kSame;
  if (padding == "VALID") return convserve::Padding::kValid;
  throw CLI::ValidationError("--padding", "expected SAME or VALID, got " + padding);
}

struct Workload {
  v1::ConvRequest request;  // with the filter inline, or its id once registered
  convserve::ConvSpec spec;
  double flops = 0;  // 2 * MACs per request
  std::string input_bytes, filter_bytes;
};

template <typename Repeated>
void SetAll(Repeated* field, const std::vector<int64_t>& values) {
  for (int64_t v : values) field->Add(v);
}

Workload MakeWorkload(const Options& o) {
  const DtypeInfo dtype = ParseDtype(o.dtype);
  const convserve::Padding padding = CorePadding(o.padding);
  const v1::Padding wire_padding = padding == convserve::Padding::kSame ? v1::PADDING_SAME
                                                                         : v1::PADDING_VALID;
  Workload w;
  convserve::OpParams params;
  v1::ConvRequest& r = w.request;
  if (o.op == "conv2d") {
    convserve::Conv2DParams p;
    p.strides = o.strides;
    p.padding = padding;
    params = p;
    SetAll(r.mutable_conv2d()->mutable_strides(), o.strides);
    r.mutable_conv2d()->set_padding(wire_padding);
  } else if (o.op == "depthwise_conv2d") {
    convserve::DepthwiseConv2DParams p;
    p.strides = o.strides;
    p.padding = padding;
    params = p;
    SetAll(r.mutable_depthwise_conv2d()->mutable_strides(), o.strides);
    r.mutable_depthwise_conv2d()->set_padding(wire_padding);
  } else if (o.op == "conv1d") {
    convserve::Conv1DParams p;
    p.stride = o.strides;
    p.padding = padding;
    params = p;
    SetAll(r.mutable_conv1d()->mutable_stride(), o.strides);
    r.mutable_conv1d()->set_padding(wire_padding);
  } else if (o.op == "conv3d") {
    convserve::Conv3DParams p;
    p.strides = o.strides;
    p.padding = padding;
    params = p;
    SetAll(r.mutable_conv3d()->mutable_strides(), o.strides);
    r.mutable_conv3d()->set_padding(wire_padding);
  } else if (o.op == "conv2d_transpose") {
    if (o.output_shape.empty()) {
      throw CLI::ValidationError("--output-shape", "conv2d_transpose needs --output-shape");
    }
    convserve::ConvTransposeParams p;
    p.rank = 2;
    p.output_shape = o.output_shape;
    p.strides = o.strides;
    p.padding = padding;
    params = p;
    SetAll(r.mutable_conv2d_transpose()->mutable_output_shape(), o.output_shape);
    SetAll(r.mutable_conv2d_transpose()->mutable_strides(), o.strides);
    r.mutable_conv2d_transpose()->set_padding(wire_padding);
  } else {
    throw CLI::ValidationError("--op", "unsupported op " + o.op);
  }
  convserve::OperandInfo info;
  info.input = {dtype.core, o.input_shape};
  info.filter = {dtype.core, o.filter_shape};
  absl::StatusOr<convserve::ConvSpec> spec =
      convserve::MakeSpec(params, info, convserve::SpecLimits{});
  if (!spec.ok()) throw CLI::ValidationError("op", std::string(spec.status().message()));
  w.spec = *spec;
  // MACs of the forward geometry (the same for the transposed op, which is
  // its gradient): every output point reads filter_spatial x in/groups inputs.
  const convserve::ConvSpec& s = w.spec;
  double macs = static_cast<double>(s.batch) * static_cast<double>(s.out_channels) *
                static_cast<double>(s.in_channels / s.groups);
  for (int d = 0; d < s.rank; ++d) {
    macs *= static_cast<double>(s.output_spatial[d]) * static_cast<double>(s.filter_spatial[d]);
  }
  if (s.pointwise_out_channels > 0) {
    double points = static_cast<double>(s.batch);
    for (int d = 0; d < s.rank; ++d) points *= static_cast<double>(s.output_spatial[d]);
    macs += points * static_cast<double>(s.out_channels) *
            static_cast<double>(s.pointwise_out_channels / s.pointwise_groups);
  }
  w.flops = 2 * macs;

  std::mt19937 rng(42);
  w.input_bytes = RandomBytes(dtype.core, s.InputElements(), rng);
  w.filter_bytes = RandomBytes(dtype.core, s.FilterElements(), rng);
  v1::Tensor* input = r.mutable_input();
  input->set_dtype(dtype.wire);
  SetAll(input->mutable_shape(), o.input_shape);
  input->set_data(w.input_bytes);
  v1::Tensor* filter = r.mutable_filter()->mutable_tensor();
  filter->set_dtype(dtype.wire);
  SetAll(filter->mutable_shape(), o.filter_shape);
  filter->set_data(w.filter_bytes);
  return w;
}

// ---------------------------------------------------------------------------
// Callers: one request at a time, synchronously.

const char* CodeName(int code) {
  static const char* const kNames[] = {
      "OK",        "CANCELLED",          "UNKNOWN",           "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",  "ALREADY_EXISTS",    "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",       "UNAVAILABLE",       "DATA_LOSS",
      "UNAUTHENTICATED"};
  return code >= 0 && code <= 16 ? kNames[code] : "UNKNOWN_CODE";
}

struct Stubs {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ConvService::Stub> conv;
  std::unique_ptr<v1::EchoService::Stub> echo;
};

class Caller {
 public:
  virtual ~Caller() = default;
  // Runs one request; returns its status code (0 = OK).
  virtual int Call() = 0;
};

class UnaryCaller final : public Caller {
 public:
  UnaryCaller(Stubs& stubs, const v1::ConvRequest& request, int timeout_ms)
      : stubs_(stubs), request_(request), timeout_ms_(timeout_ms) {}
  int Call() override {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(timeout_ms_));
    v1::ConvResponse response;
    return stubs_.conv->Conv(&context, request_, &response).error_code();
  }

 private:
  Stubs& stubs_;
  const v1::ConvRequest& request_;
  const int timeout_ms_;
};

class EchoCaller final : public Caller {
 public:
  EchoCaller(Stubs& stubs, const v1::EchoRequest& request, int timeout_ms)
      : stubs_(stubs), request_(request), timeout_ms_(timeout_ms) {}
  int Call() override {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(timeout_ms_));
    v1::EchoResponse response;
    return stubs_.echo->Echo(&context, request_, &response).error_code();
  }

 private:
  Stubs& stubs_;
  const v1::EchoRequest& request_;
  const int timeout_ms_;
};

// One ConvStream with one request in flight; a broken stream is reopened on
// the next call.
class StreamCaller final : public Caller {
 public:
  StreamCaller(Stubs& stubs, const v1::ConvRequest& request) : stubs_(stubs), request_(request) {
    Open();
  }
  ~StreamCaller() override { Close(); }
  int Call() override {
    if (!stream_) Open();
    request_.set_id(std::to_string(next_id_++));
    v1::ConvResponse response;
    if (!stream_->Write(request_) || !stream_->Read(&response)) {
      const int code = Close();
      return code == 0 ? grpc::StatusCode::UNAVAILABLE : code;
    }
    if (response.has_error()) return response.error().code() == 0 ? 2 : response.error().code();
    return 0;
  }

 private:
  void Open() {
    context_ = std::make_unique<grpc::ClientContext>();
    stream_ = stubs_.conv->ConvStream(context_.get());
  }
  int Close() {
    if (!stream_) return 0;
    stream_->WritesDone();
    v1::ConvResponse ignored;
    while (stream_->Read(&ignored)) {
    }
    const int code = stream_->Finish().error_code();
    stream_.reset();
    context_.reset();
    return code;
  }

  Stubs& stubs_;
  v1::ConvRequest request_;
  int64_t next_id_ = 0;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ConvRequest, v1::ConvResponse>> stream_;
};

// ---------------------------------------------------------------------------
// Steps

// One finished request, for --latency-log.
struct Sample {
  std::chrono::system_clock::time_point end;
  double latency_us;
  int code;
};

struct StepResult {
  std::string mode;
  std::string load;  // "c=4" or "rate=1000"
  double level = 0;  // concurrency or rate
  int64_t ok = 0, dropped = 0;
  std::map<std::string, int64_t> errors;
  double seconds = 0, rps = 0, gflops = 0;
  double p50 = 0, p90 = 0, p95 = 0, p99 = 0;
  std::vector<Sample> samples;
  // Filled by the comparisons (negative when not run).
  double echo_rps = -1, ratio_echo = -1, in_process_gflops = -1, ratio_in_process = -1;
};

struct Recorder {
  bool keep_samples = false;  // for --latency-log
  std::mutex mutex;
  std::vector<double> latencies_us;
  std::vector<Sample> samples;
  std::map<std::string, int64_t> errors;
  int64_t ok = 0;
  void Add(int code, double us) {
    std::lock_guard<std::mutex> lock(mutex);
    if (keep_samples) samples.push_back({std::chrono::system_clock::now(), us, code});
    if (code == 0) {
      ++ok;
      latencies_us.push_back(us);
    } else {
      ++errors[CodeName(code)];
    }
  }
};

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t k = std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()));
  return sorted[k];
}

StepResult Finish(Recorder& rec, const std::string& mode, const std::string& load, double level,
                  double seconds, double flops) {
  StepResult r;
  r.mode = mode;
  r.load = load;
  r.level = level;
  r.ok = rec.ok;
  r.errors = rec.errors;
  r.samples = std::move(rec.samples);
  r.seconds = seconds;
  r.rps = seconds > 0 ? static_cast<double>(r.ok) / seconds : 0;
  r.gflops = r.rps * flops / 1e9;
  std::sort(rec.latencies_us.begin(), rec.latencies_us.end());
  r.p50 = Percentile(rec.latencies_us, 0.50);
  r.p90 = Percentile(rec.latencies_us, 0.90);
  r.p95 = Percentile(rec.latencies_us, 0.95);
  r.p99 = Percentile(rec.latencies_us, 0.99);
  return r;
}

using CallerFactory = std::function<std::unique_ptr<Caller>(int slot)>;

// Closed loop: `concurrency` callers, each starting its next request when the
// previous one ends, until `requests` have been issued or `duration` passed.
StepResult RunClosed(const Options& o, const std::string& mode, int concurrency,
                     const CallerFactory& make, double flops) {
  Recorder rec;
  rec.keep_samples = !o.latency_log_path.empty();
  std::atomic<int64_t> issued{0};
  std::latch ready(concurrency + 1);
  Clock::time_point start, deadline;
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int s = 0; s < concurrency; ++s) {
    threads.emplace_back([&, s] {
      std::unique_ptr<Caller> caller = make(s);
      const int64_t warmup =
          o.warmup_requests / concurrency + (s < o.warmup_requests % concurrency ? 1 : 0);
      for (int64_t i = 0; i < warmup; ++i) caller->Call();
      ready.arrive_and_wait();
      while (!go.load()) std::this_thread::yield();
      while (issued.fetch_add(1) < o.requests && Clock::now() < deadline) {
        const Clock::time_point t0 = Clock::now();
        const int code = caller->Call();
        rec.Add(code, std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
    });
  }
  ready.arrive_and_wait();
  start = Clock::now();
  deadline = start + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(o.duration_s));
  go = true;
  for (std::thread& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return Finish(rec, mode, absl::StrCat("c=", concurrency), concurrency, seconds, flops);
}

// Open loop: arrivals at `rate` per second (constant spacing or Poisson),
// each started by an idle one of `max_in_flight` callers; an arrival finding
// none idle is dropped. Latency counts from the scheduled arrival.
StepResult RunOpen(const Options& o, const std::string& mode, double rate,
                   const CallerFactory& make, double flops) {
  Recorder rec;
  rec.keep_samples = !o.latency_log_path.empty();
  const int workers = o.max_in_flight;
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<Clock::time_point> pending;
  int idle = 0;
  bool done = false;
  std::latch ready(workers + 1);
  std::vector<std::thread> threads;
  for (int s = 0; s < workers; ++s) {
    threads.emplace_back([&, s] {
      std::unique_ptr<Caller> caller = make(s);
      const int64_t warmup = o.warmup_requests / workers + (s < o.warmup_requests % workers ? 1 : 0);
      for (int64_t i = 0; i < warmup; ++i) caller->Call();
      ready.arrive_and_wait();
      std::unique_lock<std::mutex> lock(mutex);
      for (;;) {
        ++idle;
        cv.wait(lock, [&] { return !pending.empty() || done; });
        if (pending.empty()) return;
        --idle;
        const Clock::time_point scheduled = pending.front();
        pending.pop_front();
        lock.unlock();
        const int code = caller->Call();
        rec.Add(code, std::chrono::duration<double, std::micro>(Clock::now() - scheduled).count());
        lock.lock();
      }
    });
  }
  ready.arrive_and_wait();
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> gap(rate);
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
  int64_t dropped = 0;
  double t = 0;
  for (int64_t i = 0; i < o.requests; ++i) {
    const Clock::time_point at =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(t));
    if (at >= deadline) break;
    std::this_thread::sleep_until(at);
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (idle > static_cast<int>(pending.size())) {
        pending.push_back(at);
      } else {
        ++dropped;
      }
    }
    cv.notify_one();
    t += o.arrivals == "poisson" ? gap(rng) : 1.0 / rate;
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
  }
  cv.notify_all();
  for (std::thread& th : threads) th.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  StepResult r = Finish(rec, mode, absl::StrCat("rate=", rate), rate, seconds, flops);
  r.dropped = dropped;
  return r;
}

// ---------------------------------------------------------------------------
// In-process baseline: the same op on this process's oneDNN backend, all
// cores, weights cached.

double InProcessGflops(const Workload& w, double seconds) {
  const int threads = std::max(1u, std::thread::hardware_concurrency());
  convserve::OneDnnBackend backend(convserve::OneDnnOptions{
      .threads = threads, .weight_cache = std::make_shared<convserve::WeightCache>(int64_t{1} << 30)});
  const convserve::ConvSpec& s = w.spec;
  convserve::Operands operands;
  const v1::Tensor& input = w.request.input();
  operands.input = {s.dtype, convserve::Shape(input.shape().begin(), input.shape().end()),
                    reinterpret_cast<const std::byte*>(w.input_bytes.data())};
  const v1::Tensor& filter = w.request.filter().tensor();
  operands.filter = {s.dtype, convserve::Shape(filter.shape().begin(), filter.shape().end()),
                     reinterpret_cast<const std::byte*>(w.filter_bytes.data())};
  operands.filter_hash = convserve::ContentHash(w.filter_bytes);
  int64_t result_elements = 1;
  for (int64_t d : s.result_shape) result_elements *= d;
  std::string out(static_cast<size_t>(result_elements * convserve::ItemSize(s.dtype)), '\0');
  convserve::TensorView view{s.dtype, s.result_shape, reinterpret_cast<std::byte*>(out.data())};
  for (int i = 0; i < 3; ++i) {
    absl::Status status = backend.Run(s, operands, view);
    if (!status.ok()) {
      std::cerr << "error: in-process run failed: " << status << "\n";
      return 0;
    }
  }
  int64_t runs = 0;
  const Clock::time_point start = Clock::now();
  double elapsed = 0;
  while (runs < 3 || elapsed < seconds) {
    (void)backend.Run(s, operands, view);
    ++runs;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  }
  return static_cast<double>(runs) * w.flops / elapsed / 1e9;
}

// ---------------------------------------------------------------------------
// Output

std::string ErrorsText(const std::map<std::string, int64_t>& errors) {
  std::string text;
  for (const auto& [name, count] : errors) {
    absl::StrAppend(&text, text.empty() ? "" : " ", name, ":", count);
  }
  return text.empty() ? "-" : text;
}

void PrintHeader() {
  std::printf("%-6s %-12s %8s %7s %8s %10s %9s %9s %9s %9s %9s  %s\n", "mode", "load", "ok",
              "dropped", "seconds", "req/s", "GFLOP/s", "p50_us", "p90_us", "p95_us", "p99_us",
              "errors");
}

void PrintRow(const StepResult& r) {
  std::printf("%-6s %-12s %8lld %7lld %8.2f %10.1f %9.2f %9.0f %9.0f %9.0f %9.0f  %s\n",
              r.mode.c_str(), r.load.c_str(), static_cast<long long>(r.ok),
              static_cast<long long>(r.dropped), r.seconds, r.rps, r.gflops, r.p50, r.p90, r.p95,
              r.p99, ErrorsText(r.errors).c_str());
  std::fflush(stdout);
}

bool WriteCsv(const std::string& path, const std::vector<StepResult>& rows) {
  std::ofstream out(path);
  out << "mode,load,level,ok,dropped,errors,seconds,req_per_s,gflops,p50_us,p90_us,p95_us,"
         "p99_us,echo_req_per_s,ratio_vs_echo,in_process_gflops,ratio_vs_in_process\n";
  for (const StepResult& r : rows) {
    out << r.mode << "," << r.load << "," << r.level << "," << r.ok << "," << r.dropped << ","
        << ErrorsText(r.errors) << "," << r.seconds << "," << r.rps << "," << r.gflops << ","
        << r.p50 << "," << r.p90 << "," << r.p95 << "," << r.p99 << "," << r.echo_rps << ","
        << r.ratio_echo << "," << r.in_process_gflops << "," << r.ratio_in_process << "\n";
  }
  return static_cast<bool>(out);
}

// One line per request: the step, when it ended (Unix ms), its latency and
// status code (0 = OK).
bool WriteLatencyLog(const std::string& path, const std::vector<StepResult>& rows) {
  std::ofstream out(path);
  out << "mode,load,end_unix_ms,latency_us,code\n";
  for (const StepResult& r : rows) {
    for (const Sample& sample : r.samples) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          sample.end.time_since_epoch()).count();
      out << r.mode << "," << r.load << "," << ms << "," << sample.latency_us << ","
          << sample.code << "\n";
    }
  }
  return static_cast<bool>(out);
}

bool WriteJson(const std::string& path, const Options& o, const Workload& w,
               const std::vector<StepResult>& rows) {
  std::ofstream out(path);
  out << "{\"op\":\"" << o.op << "\",\"dtype\":\"" << o.dtype << "\",\"mode\":\"" << o.mode
      << "\",\"flops_per_request\":" << w.flops << ",\"request_bytes\":"
      << w.request.ByteSizeLong() << ",\"steps\":[";
  for (size_t i = 0; i < rows.size(); ++i) {
    const StepResult& r = rows[i];
    out << (i ? "," : "") << "{\"mode\":\"" << r.mode << "\",\"load\":\"" << r.load
        << "\",\"level\":" << r.level << ",\"ok\":" << r.ok << ",\"dropped\":" << r.dropped
        << ",\"errors\":{";
    bool first = true;
    for (const auto& [name, count] : r.errors) {
      out << (first ? "" : ",") << "\"" << name << "\":" << count;
      first = false;
    }
    out << "},\"seconds\":" << r.seconds << ",\"req_per_s\":" << r.rps
        << ",\"gflops\":" << r.gflops << ",\"p50_us\":" << r.p50 << ",\"p90_us\":" << r.p90
        << ",\"p95_us\":" << r.p95 << ",\"p99_us\":" << r.p99;
    if (r.echo_rps >= 0) out << ",\"echo_req_per_s\":" << r.echo_rps << ",\"ratio_vs_echo\":" << r.ratio_echo;
    if (r.in_process_gflops >= 0) {
      out << ",\"in_process_gflops\":" << r.in_process_gflops
          << ",\"ratio_vs_in_process\":" << r.ratio_in_process;
    }
    out << "}";
  }
  out << "]}\n";
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"convserve-perf: ConvServe load generator (closed-loop concurrency sweeps, "
               "open-loop rates, Echo and in-process baselines)"};
  CLI::Option* address_option = app.add_option("--address", o.addresses,
                 "server host:port; repeat or comma-separate to spread connections round-robin")
      ->delimiter(',')
      ->capture_default_str();
  CLI::Option* target_option =
      app.add_option("--target", o.target,
                     "one gRPC target instead of --address, taken whole: e.g. "
                     "ipv4:127.0.0.2:50051,127.0.0.3:50051 or dns:///host:50051")
          ->excludes(address_option);
  app.add_option("--lb-policy", o.lb_policy, "gRPC load balancing policy (default: pick_first)")
      ->check(CLI::IsMember({"pick_first", "round_robin"}));
  app.add_flag("--health-check", o.health_check,
               "client-side health checking: send only to backends whose "
               "convserve.v1.ConvService health is SERVING");
  app.add_option("--max-attempts", o.max_attempts,
                 "attempts per call; above 1, calls that fail with a --retry-on code are "
                 "retried (gRPC allows at most 5)")
      ->check(CLI::Range(1, 5))
      ->capture_default_str();
  app.add_option("--retry-on", o.retry_on,
                 "status codes --max-attempts retries, e.g. UNAVAILABLE,RESOURCE_EXHAUSTED "
                 "(a full queue refuses a request before running it)")
      ->delimiter(',')
      ->check(CLI::IsMember({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED",
                             "ABORTED", "INTERNAL", "UNKNOWN"}))
      ->capture_default_str();
  app.add_option("--connections", o.connections,
                 "gRPC channels (TCP connections), at least one per address; callers share them "
                 "round-robin")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--mode", o.mode, "unary (Conv), stream (ConvStream) or echo (EchoService)")
      ->check(CLI::IsMember({"unary", "stream", "echo"}))
      ->capture_default_str();
  app.add_option("--op", o.op, "the op")
      ->check(CLI::IsMember({"conv2d", "depthwise_conv2d", "conv2d_transpose", "conv1d", "conv3d"}))
      ->capture_default_str();
  app.add_option("--input-shape", o.input_shape, "input shape, e.g. 1,56,56,64")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--filter-shape", o.filter_shape, "filter shape, e.g. 3,3,64,64")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--strides", o.strides, "strides as TensorFlow takes them (empty: ones)")
      ->delimiter(',');
  app.add_option("--output-shape", o.output_shape, "conv2d_transpose's output_shape")
      ->delimiter(',');
  app.add_option("--padding", o.padding, "SAME or VALID")
      ->check(CLI::IsMember({"SAME", "VALID"}))
      ->capture_default_str();
  app.add_option("--dtype", o.dtype, "element type")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16", "float64", "int32"}))
      ->capture_default_str();
  app.add_flag("--registered-filter", o.registered_filter,
               "RegisterFilter once (on every address), then send the filter's id");
  app.add_option("--concurrency", o.concurrency,
                 "closed-loop sweep: a list \"1,4,16\" or a range \"lo:hi:xF\"")
      ->capture_default_str();
  app.add_option("--rate", o.rate,
                 "open loop instead: requests/s, a list or a range like --concurrency");
  app.add_option("--arrivals", o.arrivals, "open-loop arrival process")
      ->check(CLI::IsMember({"constant", "poisson"}))
      ->capture_default_str();
  app.add_option("--max-in-flight", o.max_in_flight,
                 "open loop: requests outstanding at most; arrivals beyond are dropped")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--requests", o.requests, "requests per step at most")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--duration", o.duration_s, "seconds per step at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup-requests", o.warmup_requests,
                 "requests per step before measuring, spread over the callers")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--timeout-ms", o.timeout_ms, "deadline of each unary call")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--compare-echo", o.compare_echo,
               "after each step, run it again through EchoService with the same request and "
               "reply sizes and print ours/echo throughput");
  app.add_flag("--compare-in-process", o.compare_in_process,
               "measure the op in this process (oneDNN, all cores, warm weight cache) and print "
               "served / in-process GFLOP/s");
  app.add_option("--in-process-seconds", o.in_process_seconds,
                 "seconds spent measuring the in-process baseline")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--csv", o.csv_path, "also write the steps as CSV to this file");
  app.add_option("--json", o.json_path, "also write the steps as JSON to this file");
  app.add_option("--latency-log", o.latency_log_path,
                 "also write every request (end time, latency, status) as CSV to this file");

  std::vector<double> levels;
  Workload w;
  try {
    app.parse(argc, argv);
    if (target_option->count() > 0) {
      if (o.registered_filter) {
        throw CLI::ValidationError("--registered-filter",
                                   "needs --address: with --target, RegisterFilter would reach "
                                   "one replica only");
      }
      o.addresses = {o.target};
    }
    if (o.health_check && o.lb_policy != "round_robin") {
      throw CLI::ValidationError("--health-check",
                                 "needs --lb-policy round_robin (gRPC checks health only there)");
    }
    levels = ParseSweep(o.rate.empty() ? o.concurrency : o.rate);
    w = MakeWorkload(o);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const bool open_loop = !o.rate.empty();

  // Channels: one per connection, addresses round-robin; a distinct channel
  // argument keeps gRPC from sharing one TCP connection among them.
  const int connections = std::max<int>(o.connections, static_cast<int>(o.addresses.size()));
  std::vector<Stubs> stubs(connections);
  for (int i = 0; i < connections; ++i) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(INT32_MAX);
    args.SetMaxSendMessageSize(INT32_MAX);
    args.SetInt("convserve.perf.connection", i);
    if (const std::string config = ServiceConfigJson(o); !config.empty()) {
      args.SetServiceConfigJSON(config);
    }
    // gRPC retries only calls whose request fits its retry buffer: 256 KiB by
    // default, raised to 256 MiB.
    if (o.max_attempts > 1) args.SetInt(GRPC_ARG_PER_RPC_RETRY_BUFFER_SIZE, 256 << 20);
    stubs[i].channel = grpc::CreateCustomChannel(o.addresses[i % o.addresses.size()],
                                                 grpc::InsecureChannelCredentials(), args);
    stubs[i].conv = v1::ConvService::NewStub(stubs[i].channel);
    stubs[i].echo = v1::EchoService::NewStub(stubs[i].channel);
  }

  if (o.registered_filter) {
    std::string id;
    for (size_t a = 0; a < o.addresses.size(); ++a) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      v1::RegisterFilterRequest request;
      *request.mutable_filter() = w.request.filter().tensor();
      v1::RegisterFilterResponse response;
      grpc::Status status = stubs[a].conv->RegisterFilter(&context, request, &response);
      if (!status.ok()) {
        std::cerr << "error: RegisterFilter on " << o.addresses[a]
                  << " failed: " << status.error_message() << "\n";
        return EXIT_FAILURE;
      }
      id = response.filter_id();
    }
    w.request.mutable_filter()->set_filter_id(id);
  }

  // One real call per address: checks the request and learns the reply size.
  int64_t reply_bytes = 0;
  for (size_t a = 0; a < o.addresses.size(); ++a) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::ConvResponse response;
    grpc::Status status = stubs[a].conv->Conv(&context, w.request, &response);
    if (!status.ok()) {
      std::cerr << "error: the first request to " << o.addresses[a] << " failed ("
                << CodeName(status.error_code()) << "): " << status.error_message() << "\n";
      return EXIT_FAILURE;
    }
    reply_bytes = static_cast<int64_t>(response.ByteSizeLong());
  }
  v1::EchoRequest echo_request;
  echo_request.set_payload(std::string(w.request.ByteSizeLong(), '\0'));
  echo_request.set_reply_bytes(reply_bytes);

  std::printf("convserve-perf: %s %s %s input=%s filter=%s; %.4f GFLOP/request; request %zu "
              "bytes, reply %lld bytes; %zu address(es), %d connection(s)\n",
              o.mode.c_str(), o.op.c_str(), o.dtype.c_str(),
              absl::StrJoin(o.input_shape, "x").c_str(), absl::StrJoin(o.filter_shape, "x").c_str(),
              w.flops / 1e9, w.request.ByteSizeLong(), static_cast<long long>(reply_bytes),
              o.addresses.size(), connections);

  double in_process = -1;
  if (o.compare_in_process) {
    in_process = InProcessGflops(w, o.in_process_seconds);
    std::printf("in-process: %.2f GFLOP/s (oneDNN, %u threads, warm weight cache)\n", in_process,
                std::max(1u, std::thread::hardware_concurrency()));
  }

  auto conv_factory = [&](const std::string& mode) -> CallerFactory {
    if (mode == "stream") {
      return [&](int slot) {
        return std::make_unique<StreamCaller>(stubs[slot % connections], w.request);
      };
    }
    if (mode == "echo") {
      return [&](int slot) {
        return std::make_unique<EchoCaller>(stubs[slot % connections], echo_request, o.timeout_ms);
      };
    }
    return [&](int slot) {
      return std::make_unique<UnaryCaller>(stubs[slot % connections], w.request, o.timeout_ms);
    };
  };
  auto run_step = [&](const std::string& mode, double level) {
    const double flops = mode == "echo" ? 0 : w.flops;
    return open_loop ? RunOpen(o, mode, level, conv_factory(mode), flops)
                     : RunClosed(o, mode, static_cast<int>(level), conv_factory(mode), flops);
  };

  std::vector<StepResult> rows;
  std::vector<std::string> ratio_lines;
  PrintHeader();
  for (double level : levels) {
    StepResult ours = run_step(o.mode, level);
    if (in_process > 0 && o.mode != "echo") {
      ours.in_process_gflops = in_process;
      ours.ratio_in_process = ours.gflops / in_process;
    }
    PrintRow(ours);
    if (o.compare_echo && o.mode != "echo") {
      StepResult echo = run_step("echo", level);
      PrintRow(echo);
      ours.echo_rps = echo.rps;
      ours.ratio_echo = echo.rps > 0 ? ours.rps / echo.rps : 0;
      ratio_lines.push_back(absl::StrFormat(
          "ratio ours/echo throughput at %s: %.3f (%s %.1f req/s, echo %.1f req/s)", ours.load,
          ours.ratio_echo, ours.mode, ours.rps, echo.rps));
      rows.push_back(ours);
      rows.push_back(echo);
    } else {
      rows.push_back(ours);
    }
    if (ours.in_process_gflops > 0) {
      ratio_lines.push_back(absl::StrFormat(
          "ratio served/in-process GFLOP/s at %s: %.3f (served %.2f, in-process %.2f)", ours.load,
          ours.ratio_in_process, ours.gflops, in_process));
    }
  }
  for (const std::string& line : ratio_lines) std::printf("%s\n", line.c_str());

  if (!o.csv_path.empty() && !WriteCsv(o.csv_path, rows)) {
    std::cerr << "error: cannot write " << o.csv_path << "\n";
    return EXIT_FAILURE;
  }
  if (!o.json_path.empty() && !WriteJson(o.json_path, o, w, rows)) {
    std::cerr << "error: cannot write " << o.json_path << "\n";
    return EXIT_FAILURE;
  }
  if (!o.latency_log_path.empty() && !WriteLatencyLog(o.latency_log_path, rows)) {
    std::cerr << "error: cannot write " << o.latency_log_path << "\n";
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
