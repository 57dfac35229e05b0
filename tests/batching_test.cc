// Dynamic batching in the scheduler: which jobs share a kernel call, that
// each result's bytes equal its unbatched result, the size, delay, deadline,
// cancellation and memory bounds, and batches a backend declines or whose
// device is lost. The backends compute with the reference loops (or oneDNN)
// behind a wrapper that records each Run's batch.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "core/make_spec.h"
#include "core/onednn/onednn_backend.h"
#include "core/reference/reference_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/scheduler.h"
#include "tests/gate.h"

namespace convserve::server {
namespace {

using ::testing::ElementsAre;
using namespace std::chrono_literals;

using test::Gate;

// The images of each Run call, in order, across backends.
class Calls {
 public:
  void Add(int64_t images) {
    std::lock_guard<std::mutex> lock(mutex_);
    images_.push_back(images);
  }
  std::vector<int64_t> images() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return images_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<int64_t> images_;
};

struct Behaviour {
  std::string name = "ref";
  std::string device = "cpu";
  Gate* gate = nullptr;
  Calls* calls = nullptr;
  bool invariant = true;  // what BatchInvariant says
  // For Runs of more than one image: decline them, or find the device lost.
  bool decline_batches = false;
  bool lose_device_on_batches = false;
};

// Computes with `inner` (the reference unless given) and behaves as told.
class Recording final : public Backend {
 public:
  explicit Recording(Behaviour behaviour, std::unique_ptr<Backend> inner = nullptr)
      : b_(std::move(behaviour)),
        inner_(inner ? std::move(inner) : std::make_unique<ReferenceBackend>()) {}
  absl::string_view Name() const override { return b_.name; }
  BackendInfo Describe() const override {
    BackendInfo info = inner_->Describe();
    info.name = b_.name;
    info.device_id = b_.device;
    return info;
  }
  bool Computes(const ConvSpec& spec) const override { return inner_->Computes(spec); }
  bool BatchInvariant(const ConvSpec& spec) const override {
    return b_.invariant && inner_->BatchInvariant(spec);
  }
  absl::Status Run(const ConvSpec& spec, const Operands& operands, TensorView out) override {
    if (b_.gate) b_.gate->Wait();
    if (b_.calls) b_.calls->Add(spec.batch);
    if (spec.batch > 1 && b_.decline_batches) return absl::UnimplementedError("declined");
    if (spec.batch > 1 && b_.lose_device_on_batches) {
      return absl::UnavailableError("device fell off the bus");
    }
    return inner_->Run(spec, operands, out);
  }

 private:
  const Behaviour b_;
  const std::unique_ptr<Backend> inner_;
};

Scheduler::Pool OnePool(Behaviour behaviour, int max_queue = 64,
                        std::unique_ptr<Backend> inner = nullptr) {
  Scheduler::Pool pool;
  pool.max_queue = max_queue;
  pool.backends.push_back(std::make_unique<Recording>(std::move(behaviour), std::move(inner)));
  return pool;
}

std::vector<Scheduler::Pool> Pools(Scheduler::Pool pool) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(std::move(pool));
  return pools;
}

const std::byte* Bytes(const auto& v) { return reinterpret_cast<const std::byte*>(v.data()); }

// One request: its tensors, its result and how it went.
struct Request {
  DataType dtype = DataType::kFloat32;
  ConvSpec spec;
  Shape input_shape, filter_shape;
  std::vector<std::byte> input, filter, bias;
  std::vector<std::byte> result;
  std::atomic<int> outputs{0};  // calls of job.output
  std::promise<std::pair<absl::Status, JobReport>> outcome;
  std::future<std::pair<absl::Status, JobReport>> future = outcome.get_future();
};

std::vector<std::byte> RandomBytes(DataType dtype, int64_t elements, std::mt19937& rng) {
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<std::byte> bytes(elements * ItemSize(dtype));
  for (int64_t i = 0; i < elements; ++i) {
    if (dtype == DataType::kFloat32) {
      reinterpret_cast<float*>(bytes.data())[i] = value(rng);
    } else {  // bfloat16: the top half of a float
      const float f = value(rng);
      uint32_t u;
      std::memcpy(&u, &f, 4);
      const uint16_t h = static_cast<uint16_t>(u >> 16);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
  }
  return bytes;
}

// A conv2d request of `batch` images of `image` (HWC) by a filter of `filter`
// (HWIO), SAME padding, with a bias when `bias`; its data from `seed`, its
// filter (and bias) from `filter_seed`.
std::unique_ptr<Request> MakeRequest(int64_t batch, int seed, int filter_seed = 1,
                                     bool bias = false, Shape image = {5, 5, 3},
                                     Shape filter = {3, 3, 3, 4},
                                     DataType dtype = DataType::kFloat32) {
  auto r = std::make_unique<Request>();
  r->dtype = dtype;
  r->input_shape = {batch, image[0], image[1], image[2]};
  r->filter_shape = filter;
  Conv2DParams params;
  params.strides = {1, 1, 1, 1};
  params.padding = Padding::kSame;
  OperandInfo info;
  info.input = {dtype, r->input_shape};
  info.filter = {dtype, filter};
  if (bias) info.bias = TensorInfo{dtype, {filter[3]}};
  r->spec = *MakeSpec(params, info, SpecLimits{});
  std::mt19937 rng(seed), filter_rng(filter_seed);
  r->input = RandomBytes(dtype, r->spec.InputElements(), rng);
  r->filter = RandomBytes(dtype, r->spec.FilterElements(), filter_rng);
  if (bias) r->bias = RandomBytes(dtype, filter[3], filter_rng);
  return r;
}

Job MakeJob(Request& r) {
  Job job;
  job.spec = r.spec;
  job.operands.input = {r.dtype, r.input_shape, r.input.data()};
  job.operands.filter = {r.dtype, r.filter_shape, r.filter.data()};
  if (!r.bias.empty()) job.operands.bias = {r.dtype, {r.filter_shape[3]}, r.bias.data()};
  job.bytes = static_cast<int64_t>(r.input.size()) + r.spec.ResultElements() * ItemSize(r.dtype);
  job.output = [&r](const ConvSpec& spec) {
    ++r.outputs;
    r.result.assign(spec.ResultElements() * ItemSize(spec.dtype), std::byte{0});
    return TensorView{spec.dtype, spec.result_shape, r.result.data()};
  };
  job.done = [&r](const absl::Status& status, const JobReport& report) {
    r.outcome.set_value({status, report});
  };
  return job;
}

// The request's result computed alone by `backend`.
std::vector<std::byte> Alone(Backend& backend, Request& r) {
  Job job = MakeJob(r);
  std::vector<std::byte> out(r.spec.ResultElements() * ItemSize(r.dtype));
  const absl::Status status =
      backend.Run(r.spec, job.operands, TensorView{r.dtype, r.spec.result_shape, out.data()});
  EXPECT_TRUE(status.ok()) << status;
  return out;
}

std::vector<std::byte> Alone(Request& r) {
  ReferenceBackend reference;
  return Alone(reference, r);
}

Scheduler::Batching Batching(int max_images, std::chrono::microseconds delay = 0us,
                             std::vector<int> preferred = {}) {
  return Scheduler::Batching{.max_images = max_images,
                             .max_delay = delay,
                             .preferred_images = std::move(preferred),
                             .observe = nullptr};
}

// Submits a job that holds the pool's only worker at `gate` until opened.
std::unique_ptr<Request> Block(Scheduler& scheduler) {
  auto blocker = MakeRequest(1, 999, 999, false, {2, 2, 1}, {1, 1, 1, 1});
  Job job = MakeJob(*blocker);
  EXPECT_TRUE(scheduler.Submit(job).ok());
  while (scheduler.running() != 1) std::this_thread::yield();
  return blocker;
}

// Submits `count` single-image jobs (seeds 0, 1, ...), all compatible, and
// returns their requests; each must be admitted.
std::vector<std::unique_ptr<Request>> SubmitImages(Scheduler& scheduler, int count) {
  std::vector<std::unique_ptr<Request>> requests;
  for (int i = 0; i < count; ++i) {
    requests.push_back(MakeRequest(1, i));
    Job job = MakeJob(*requests.back());
    EXPECT_TRUE(scheduler.Submit(job).ok());
  }
  return requests;
}

TEST(Batching, CompatibleQueuedJobsShareOneKernelCallAndKeepTheirBytes) {
  Gate gate;
  Calls calls;
  std::vector<int> observed;
  std::mutex observed_mutex;
  Scheduler::Batching batching = Batching(16);
  batching.observe = [&](int requests, std::chrono::nanoseconds) {
    std::lock_guard<std::mutex> lock(observed_mutex);
    observed.push_back(requests);
  };
  Scheduler scheduler(1 << 30, Pools(OnePool({.gate = &gate, .calls = &calls})),
                      std::move(batching));
  auto blocker = Block(scheduler);
  std::vector<std::unique_ptr<Request>> requests;
  for (int64_t batch : {1, 2, 1, 3, 1}) {
    requests.push_back(MakeRequest(batch, static_cast<int>(requests.size()), 1, true));
  }
  for (auto& r : requests) {
    Job job = MakeJob(*r);
    ASSERT_TRUE(scheduler.Submit(job).ok());
  }
  EXPECT_EQ(scheduler.queue_depth(), 5);
  gate.Open();
  for (auto& r : requests) {
    const auto [status, report] = r->future.get();
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(r->result, Alone(*r)) << "a batched result's bytes differ from its unbatched ones";
    EXPECT_EQ(report.backend, "ref");
  }
  EXPECT_TRUE(blocker->future.get().first.ok());
  EXPECT_THAT(calls.images(), ElementsAre(1, 8));
  std::lock_guard<std::mutex> lock(observed_mutex);
  EXPECT_THAT(observed, ElementsAre(1, 5));
  while (scheduler.bytes_admitted() != 0) std::this_thread::yield();  // buffers released
}

TEST(Batching, EachRequestReportsTheBatchsComputeAndItsOwnQueueTime) {
  Gate gate;
  Scheduler scheduler(1 << 30, Pools(OnePool({.gate = &gate})), Batching(8));
  auto blocker = Block(scheduler);
  auto a = MakeRequest(1, 1), b = MakeRequest(1, 2);
  Job ja = MakeJob(*a);
  ASSERT_TRUE(scheduler.Submit(ja).ok());
  std::this_thread::sleep_for(20ms);
  Job jb = MakeJob(*b);
  ASSERT_TRUE(scheduler.Submit(jb).ok());
  gate.Open();
  const JobReport ra = a->future.get().second, rb = b->future.get().second;
  EXPECT_EQ(ra.compute, rb.compute);
  EXPECT_GE(ra.queued - rb.queued, 20ms);
}

TEST(Batching, IncompatibleJobsDoNotShareAKernelCall) {
  Gate gate;
  Calls calls;
  Scheduler scheduler(1 << 30, Pools(OnePool({.gate = &gate, .calls = &calls})), Batching(16));
  auto blocker = Block(scheduler);
  std::vector<std::unique_ptr<Request>> requests;
  requests.push_back(MakeRequest(1, 1));                                     // the first
  requests.push_back(MakeRequest(1, 2, /*filter_seed=*/2));                  // another filter
  requests.push_back(MakeRequest(1, 3, 1, /*bias=*/true));                   // a bias
  requests.push_back(MakeRequest(1, 4, 1, false, {6, 5, 3}));                // another image
  requests.push_back(MakeRequest(1, 5, 1, false, {5, 5, 3}, {3, 3, 3, 4}));  // as the first
  for (auto& r : requests) {
    Job job = MakeJob(*r);
    ASSERT_TRUE(scheduler.Submit(job).ok());
  }
  gate.Open();
  for (auto& r : requests) {
    ASSERT_TRUE(r->future.get().first.ok());
    EXPECT_EQ(r->result, Alone(*r));
  }
  // The first and last together, then the others in their order.
  EXPECT_THAT(calls.images(), ElementsAre(1, 2, 1, 1, 1));
}

TEST(Batching, EqualFilterBytesBatchAndEqualHashesOfOtherBytesDoNot) {
  Gate gate;
  Calls calls;
  Scheduler scheduler(1 << 30, Pools(OnePool({.gate = &gate, .calls = &calls})), Batching(16));
  auto blocker = Block(scheduler);
  // Three copies of one filter's bytes (different buffers), and a fourth
  // request claiming the same registered hash with other bytes.
  auto a = MakeRequest(1, 1), b = MakeRequest(1, 2), c = MakeRequest(1, 3);
  auto liar = MakeRequest(1, 4, /*filter_seed=*/7);
  std::vector<Request*> all = {a.get(), b.get(), liar.get(), c.get()};
  for (Request* r : all) {
    Job job = MakeJob(*r);
    if (r == liar.get() || r == b.get()) job.operands.filter_hash = 42;
    if (r == a.get() || r == c.get()) job.operands.filter_hash = std::nullopt;
    ASSERT_TRUE(scheduler.Submit(job).ok());
  }
  gate.Open();
  for (Request* r : all) {
    ASSERT_TRUE(r->future.get().first.ok());
    EXPECT_EQ(r->result, Alone(*r));
  }
  // a and c (hashed at admission) share a call; b and liar (hash 42) share a
  // batch whose bytes check splits them: b runs alone, as does liar.
  EXPECT_THAT(calls.images(), ElementsAre(1, 2, 1, 1));
}

TEST(Batching, NeverMoreImagesThanTheMaximum) {
  Gate gate;
  Calls calls;
  Scheduler scheduler(1 << 30, Pools(OnePool({.gate = &gate, .calls = &calls})), Batching(4));
  auto blocker = Block(scheduler);
  std::vector<std::unique_ptr<Request>> requests;
  for (int64_t batch : {1, 1, 3, 1, 1, 1, 1, 5}) {
    requests.push_back(MakeRequest(batch, static_cast<int>(requests.size())));
    Job job = MakeJob(*requests.back());
    ASSERT_TRUE(scheduler.Submit(job).ok());
  }
  gate.Open();
  for (auto& r : requests) {
    ASSERT_TRUE(r->future.get().first.ok());
    EXPECT_EQ(r->result, Alone(*r));
  }
  // 1+1+1+1 (the 3 would pass 4), 3+1, 1 (with the 5 it would pass 4), and
  // the 5, more than the maximum on its own, alone.
  EXPECT_THAT(calls.images(), ElementsAre(1, 4, 4, 1, 5));
}

TEST(Batching, WithoutDelayOnlyWhatIsQueuedAndWithDelayItWaitsForCompany) {
  {
    Calls calls;
    Scheduler scheduler(1 << 30, Pools(OnePool({.calls = &calls})), Batching(8));
    auto a = MakeRequest(1, 1);
    Job job = MakeJob(*a);
    ASSERT_TRUE(scheduler.Submit(job).ok());
    const auto [status, report] = a->future.get();
    EXPECT_TRUE(status.ok());
    EXPECT_LT(report.queued, 1s);
    EXPECT_THAT(calls.images(), ElementsAre(1));
  }
  {
    Calls calls;
    Scheduler scheduler(1 << 30, Pools(OnePool({.calls = &calls})), Batching(2, 10s));
    auto a = MakeRequest(1, 1), b = MakeRequest(1, 2);
    Job ja = MakeJob(*a);
    ASSERT_TRUE(scheduler.Submit(ja).ok());
    std::this_thread::sleep_for(30ms);
    Job jb = MakeJob(*b);
    ASSERT_TRUE(scheduler.Submit(jb).ok());
    const JobReport ra = a->future.get().second;  // ran as soon as the batch was full
    EXPECT_GE(ra.queued, 30ms);
    EXPECT_LT(ra.queued, 5s);
    EXPECT_TRUE(b->future.get().first.ok());
    EXPECT_EQ(a->result, Alone(*a));
    EXPECT_EQ(b->result, Alone(*b));
    EXPECT_THAT(calls.images(), ElementsAre(2));
  }
  {
    // Alone, it waits out the delay, then runs.
    Calls calls;
    Scheduler scheduler(1 << 30, Pools(OnePool({.calls = &calls})), Batching(8, 50ms));
    auto a = MakeRequest(1, 1);
    Job job = MakeJob(*a);
    ASSERT_TRUE(scheduler.Submit(job).ok());
    const JobReport report = a->future.get().second;
    EXPECT_GE(report.queued, 50ms);
    EXPECT_LT(report.queued, 5s);
    EXPECT_THAT(calls.images(), ElementsAre(1));
  }
}

TEST(Batching, AJobWhoseDeadlineFallsWithinTheDelayIsNotHeld) {
  Calls calls;
  Scheduler scheduler(1 << 30, Pools(OnePool({.calls = &calls})), Batching(8, 20s));
  auto a = MakeRequest(1, 1);
  Job job = MakeJob(*a);
  job.deadline = std::chrono::system_clock::now() + 10s;
  ASSERT_TRUE(scheduler.Submit(job).ok());
  const auto [status, report] = a->future.get();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_LT(report.queued, 5s);
}

TEST(Batching, AJoiningJobsDeadlineEndsTheWait) {
  Calls calls;
  Scheduler scheduler(1 << 30, Pools(OnePool({.calls = &calls})), Batching(8, 20s));
  auto a = MakeRequest(1, 1), b = MakeRequest(1, 2);
  Job ja = MakeJob(*a);
  ASSERT_TRUE(scheduler.Submit(ja).ok());
  std::this_thread::sleep_for(20ms);
  Job jb = MakeJob(*b);
  jb.deadline = std::chrono::system_clock::now() + 10s;
  ASSERT_TRUE(scheduler.Submit(jb).ok());
  EXPECT_TRUE(a->future.get().first.ok());
  const auto [status, report] = b->future.get();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_LT(report.queued, 5s);
  EXPECT_THAT(calls.images(), ElementsAre(2));
}

TEST(Batching, CancelledAndLateJobsAreDroppedAndTheRestRunTogether) {
  Gate gate;
  Calls calls;
  Scheduler scheduler(1 << 30, Pools(OnePool({.gate = &gate, .calls = &calls})), Batching(8));
  auto blocker = Block(scheduler);
  auto a = MakeRequest(1, 1), cancelled = MakeRequest(1, 2), late = MakeRequest(1, 3),
       b = MakeRequest(1, 4);
  for (Request* r : {a.get(), cancelled.get(), late.get(), b.get()}) {
    Job job = MakeJob(*r);
    if (r == cancelled.get()) job.cancelled = [] { return absl::CancelledError("gone"); };
    if (r == late.get()) job.deadline = std::chrono::system_clock::now() + 30ms;
    ASSERT_TRUE(scheduler.Submit(job).ok());
  }
  std::this_thread::sleep_for(60ms);
  gate.Open();
  EXPECT_TRUE(a->future.get().first.ok());
  EXPECT_TRUE(b->future.get().first.ok());
  EXPECT_EQ(cancelled->future.get().first, absl::CancelledError("gone"));
  EXPECT_TRUE(absl::IsDeadlineExceeded(late->future.get().first));
  EXPECT_EQ(cancelled->outputs, 0);
  EXPECT_EQ(late->outputs, 0);
  EXPECT_EQ(a->result, Alone(*a));
  EXPECT_EQ(b->result, Alone(*b));
  EXPECT_THAT(calls.images(), ElementsAre(1, 2));
  while (scheduler.bytes_admitted() != 0) std::this_thread::yield();
  EXPECT_EQ(scheduler.running(), 0);
}

TEST(Batching, ABatchsBuffersStayWithinTheMemoryBudget) {
  Gate gate;
  Calls calls;
  auto blocker = MakeRequest(1, 999, 999, false, {2, 2, 1}, {1, 1, 1, 1});
  std::vector<std::unique_ptr<Request>> requests;
  for (int i = 0; i < 4; ++i) requests.push_back(MakeRequest(1, i));
  // Each job holds its input and result (job.bytes); a batch's buffers hold
  // them again. Room for the four and the buffers of two.
  const int64_t each = MakeJob(*requests[0]).bytes;
  const int64_t budget = MakeJob(*blocker).bytes + 4 * each + 2 * each;
  Scheduler scheduler(budget, Pools(OnePool({.gate = &gate, .calls = &calls})), Batching(8));
  {
    Job job = MakeJob(*blocker);
    ASSERT_TRUE(scheduler.Submit(job).ok());
    while (scheduler.running() != 1) std::this_thread::yield();
  }
  for (auto& r : requests) {
    Job job = MakeJob(*r);
    ASSERT_TRUE(scheduler.Submit(job).ok());
  }
  gate.Open();
  for (auto& r : requests) {
    ASSERT_TRUE(r->future.get().first.ok());
    EXPECT_EQ(r->result, Alone(*r));
  }
  EXPECT_THAT(calls.images(), ElementsAre(1, 2, 2));
  while (scheduler.bytes_admitted() != 0) std::this_thread::yield();
}

TEST(Batching, PreferredSizesCutTheBatch) {
  Gate gate;
  Calls calls;
  Scheduler scheduler(1 << 30, Pools(OnePool({.gate = &gate, .calls = &calls})),
                      Batching(8, 0us, {2, 4}));
  auto blocker = Block(scheduler);
  std::vector<std::unique_ptr<Request>> requests = SubmitImages(scheduler, 7);
  gate.Open();
  for (auto& r : requests) {
    ASSERT_TRUE(r->future.get().first.ok());
    EXPECT_EQ(r->result, Alone(*r));
  }
  EXPECT_THAT(calls.images(), ElementsAre(1, 4, 2, 1));
}

TEST(Batching, NothingIsBatchedWhereTheBackendDoesNotVouchForIt) {
  Gate gate;
  Calls calls;
  Scheduler scheduler(1 << 30, Pools(OnePool({.gate = &gate, .calls = &calls, .invariant = false})),
                      Batching(8));
  auto blocker = Block(scheduler);
  std::vector<std::unique_ptr<Request>> requests = SubmitImages(scheduler, 3);
  gate.Open();
  for (auto& r : requests) ASSERT_TRUE(r->future.get().first.ok());
  EXPECT_THAT(calls.images(), ElementsAre(1, 1, 1, 1));
}

// A backend that declines the larger spec (as oneDNN may) computes each job
// alone: batching changes no outcome, and a job that asked for its backend
// is not refused.
TEST(Batching, ADeclinedBatchRunsAgainJobByJob) {
  Gate gate;
  Calls picky_calls, other_calls;
  std::vector<Scheduler::Pool> pools;
  pools.push_back(
      OnePool({.name = "picky", .gate = &gate, .calls = &picky_calls, .decline_batches = true}));
  pools.push_back(OnePool({.name = "other", .calls = &other_calls, .invariant = false}));
  Scheduler scheduler(1 << 30, std::move(pools), Batching(8));
  auto blocker = Block(scheduler);
  std::vector<std::unique_ptr<Request>> requests = SubmitImages(scheduler, 3);
  gate.Open();
  for (auto& r : requests) {
    const auto [status, report] = r->future.get();
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(report.backend, "picky");
    EXPECT_EQ(r->result, Alone(*r));
  }
  EXPECT_THAT(picky_calls.images(), ElementsAre(1, 3, 1, 1, 1));
  EXPECT_THAT(other_calls.images(), ElementsAre());
  while (scheduler.bytes_admitted() != 0) std::this_thread::yield();
}

TEST(Batching, ABatchOnALostDeviceGoesElsewhere) {
  Gate gate;
  Calls gpu_calls, cpu_calls;
  std::vector<Scheduler::Pool> pools;
  pools.push_back(OnePool({.name = "gpu",
                           .device = "cuda:0",
                           .gate = &gate,
                           .calls = &gpu_calls,
                           .lose_device_on_batches = true}));
  pools.push_back(OnePool({.name = "cpu", .calls = &cpu_calls}));
  Scheduler scheduler(1 << 30, std::move(pools), Batching(8));
  auto blocker = Block(scheduler);
  std::vector<std::unique_ptr<Request>> requests = SubmitImages(scheduler, 3);
  gate.Open();
  for (auto& r : requests) {
    const auto [status, report] = r->future.get();
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(report.device, "cpu");
    EXPECT_EQ(r->result, Alone(*r));
  }
  EXPECT_THAT(gpu_calls.images(), ElementsAre(1, 3));
  EXPECT_FALSE(scheduler.pool_status()[0].in_service);
  while (scheduler.bytes_admitted() != 0) std::this_thread::yield();
}

TEST(Batching, OffByDefault) {
  Gate gate;
  Calls calls;
  Scheduler scheduler(1 << 30, Pools(OnePool({.gate = &gate, .calls = &calls})));
  auto blocker = Block(scheduler);
  std::vector<std::unique_ptr<Request>> requests = SubmitImages(scheduler, 3);
  gate.Open();
  for (auto& r : requests) ASSERT_TRUE(r->future.get().first.ok());
  EXPECT_THAT(calls.images(), ElementsAre(1, 1, 1, 1));
}

// The real oneDNN backend: where it vouches for batching, a batched
// request's bytes equal its unbatched ones.
TEST(Batching, OneDnnBatchedResultsEqualUnbatched) {
  for (DataType dtype : {DataType::kBFloat16, DataType::kFloat32}) {
    SCOPED_TRACE(TfTypeName(dtype));
    Gate gate;
    Calls calls;
    Scheduler scheduler(int64_t{1} << 30,
                        Pools(OnePool({.name = "onednn", .gate = &gate, .calls = &calls}, 64,
                                      std::make_unique<OneDnnBackend>(
                                          OneDnnOptions{.threads = 2, .weight_cache = nullptr}))),
                        Batching(16));
    auto blocker = Block(scheduler);
    std::vector<std::unique_ptr<Request>> requests;
    for (int i = 0; i < 6; ++i) {
      requests.push_back(MakeRequest(1, i, 1, false, {14, 14, 256}, {3, 3, 256, 256}, dtype));
      Job job = MakeJob(*requests.back());
      ASSERT_TRUE(scheduler.Submit(job).ok());
    }
    gate.Open();
    OneDnnBackend alone(OneDnnOptions{.threads = 2, .weight_cache = nullptr});
    for (auto& r : requests) {
      ASSERT_TRUE(r->future.get().first.ok());
      EXPECT_EQ(r->result, Alone(alone, *r));
    }
    ConvSpec six = requests[0]->spec;
    six.batch = 6;
    six.result_shape[0] = 6;
    if (alone.BatchInvariant(six)) {
      EXPECT_THAT(calls.images(), ElementsAre(1, 6));
    } else {
      EXPECT_THAT(calls.images(), ElementsAre(1, 1, 1, 1, 1, 1, 1));
    }
  }
}

}  // namespace
}  // namespace convserve::server
