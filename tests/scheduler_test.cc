// The scheduler's pools without a network: routing, per-pool queue bounds,
// the shared memory budget, deadlines and cancellation, waiting for room.
#include "server/scheduler.h"

#include <condition_variable>
#include <future>
#include <mutex>

#include "core/make_spec.h"
#include "gtest/gtest.h"

namespace convserve::server {
namespace {

// Holds Run calls until opened.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    opened_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    opened_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
};

// A backend that computes the dtypes it is given, waits at `gate` (if any)
// and writes nothing; with `decline`, it finds at run time that it cannot.
class FakeBackend final : public Backend {
 public:
  FakeBackend(std::string name, std::vector<DataType> dtypes, Gate* gate = nullptr,
              bool decline = false)
      : name_(std::move(name)), dtypes_(std::move(dtypes)), gate_(gate), decline_(decline) {}
  absl::string_view Name() const override { return name_; }
  BackendInfo Describe() const override {
    BackendInfo info;
    info.name = name_;
    info.native_dtypes = dtypes_;
    return info;
  }
  bool Computes(const ConvSpec& spec) const override {
    return std::find(dtypes_.begin(), dtypes_.end(), spec.dtype) != dtypes_.end();
  }
  absl::Status Run(const ConvSpec&, const Operands&, TensorView) override {
    if (gate_) gate_->Wait();
    return decline_ ? absl::UnimplementedError("declined") : absl::OkStatus();
  }

 private:
  const std::string name_;
  const std::vector<DataType> dtypes_;
  Gate* const gate_;
  const bool decline_;
};

Scheduler::Pool MakePool(const std::string& name, std::vector<DataType> dtypes, int workers,
                         int max_queue, Gate* gate = nullptr, bool decline = false) {
  Scheduler::Pool pool;
  pool.max_queue = max_queue;
  for (int i = 0; i < workers; ++i) {
    pool.backends.push_back(std::make_unique<FakeBackend>(name, dtypes, gate, decline));
  }
  return pool;
}

ConvSpec Spec(DataType dtype) {
  OperandInfo info;
  info.input = {dtype, {1, 3, 3, 1}};
  info.filter = {dtype, {2, 2, 1, 1}};
  Conv2DParams params;
  params.padding = Padding::kValid;
  return *MakeSpec(params, info, SpecLimits{});
}

// A job whose outcome arrives in `outcome` (status, backend that ran it).
struct Outcome {
  absl::Status status;
  std::string backend;
};
Job MakeJob(DataType dtype, std::promise<Outcome>* outcome, int64_t bytes = 0) {
  Job job;
  job.spec = Spec(dtype);
  job.bytes = bytes;
  job.output = [](const ConvSpec&) { return TensorView{}; };
  job.done = [outcome](const absl::Status& status, const JobReport& report) {
    outcome->set_value({status, std::string(report.backend)});
  };
  return job;
}

const std::vector<DataType> kFloat32Only = {DataType::kFloat32};
const std::vector<DataType> kEverything = {std::begin(kAllDataTypes), std::end(kAllDataTypes)};

TEST(Scheduler, RoutesEachJobToTheFirstPoolThatComputesIt) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakePool("fast", kFloat32Only, 1, 4));
  pools.push_back(MakePool("slow", kEverything, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));
  EXPECT_EQ(scheduler.workers(), 2);

  std::promise<Outcome> f32, f64;
  Job a = MakeJob(DataType::kFloat32, &f32), b = MakeJob(DataType::kFloat64, &f64);
  EXPECT_EQ(*scheduler.Route(a), 0);
  EXPECT_EQ(*scheduler.Route(b), 1);
  ASSERT_TRUE(scheduler.Submit(a).ok());
  ASSERT_TRUE(scheduler.Submit(b).ok());
  EXPECT_EQ(f32.get_future().get().backend, "fast");
  EXPECT_EQ(f64.get_future().get().backend, "slow");
}

TEST(Scheduler, AJobNamingABackendRunsThereOrIsRefused) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakePool("fast", kFloat32Only, 1, 4));
  pools.push_back(MakePool("slow", kEverything, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));

  std::promise<Outcome> outcome;
  Job job = MakeJob(DataType::kFloat32, &outcome);
  job.backend = "slow";
  ASSERT_TRUE(scheduler.Submit(job).ok());
  EXPECT_EQ(outcome.get_future().get().backend, "slow");

  std::promise<Outcome> unused;
  Job unknown = MakeJob(DataType::kFloat32, &unused);
  unknown.backend = "cuda";
  EXPECT_TRUE(absl::IsNotFound(scheduler.Submit(unknown)));
}

TEST(Scheduler, RefusesWhatNoPoolComputes) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakePool("fast", kFloat32Only, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));
  std::promise<Outcome> unused;
  Job job = MakeJob(DataType::kInt32, &unused);
  const absl::Status status = scheduler.Submit(job);
  EXPECT_TRUE(absl::IsUnimplemented(status)) << status;
  EXPECT_NE(status.message().find("int32"), std::string::npos) << status;
  EXPECT_TRUE(job.done) << "a refused job is left untouched";
}

TEST(Scheduler, EachPoolHasItsOwnQueueBound) {
  Gate gate;
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakePool("fast", kFloat32Only, 1, 1, &gate));
  pools.push_back(MakePool("slow", kEverything, 1, 1));
  Scheduler scheduler(1 << 20, std::move(pools));

  std::promise<Outcome> running, queued, refused, other;
  Job a = MakeJob(DataType::kFloat32, &running);
  ASSERT_TRUE(scheduler.Submit(a).ok());
  while (scheduler.running() != 1) std::this_thread::yield();
  Job b = MakeJob(DataType::kFloat32, &queued);
  ASSERT_TRUE(scheduler.Submit(b).ok());
  Job c = MakeJob(DataType::kFloat32, &refused);
  EXPECT_TRUE(absl::IsResourceExhausted(scheduler.Submit(c)));
  // The other pool's queue is its own.
  Job d = MakeJob(DataType::kFloat64, &other);
  ASSERT_TRUE(scheduler.Submit(d).ok());
  EXPECT_TRUE(other.get_future().get().status.ok());

  const std::vector<Scheduler::PoolStatus> status = scheduler.pool_status();
  ASSERT_EQ(status.size(), 2u);
  EXPECT_EQ(status[0].backend, "fast");
  EXPECT_EQ(status[0].queue_depth, 1);
  EXPECT_EQ(status[0].running, 1);
  gate.Open();
  EXPECT_TRUE(running.get_future().get().status.ok());
  EXPECT_TRUE(queued.get_future().get().status.ok());
}

TEST(Scheduler, OneMemoryBudgetCoversEveryPool) {
  Gate gate;
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakePool("fast", kFloat32Only, 1, 4, &gate));
  pools.push_back(MakePool("slow", kEverything, 1, 4, &gate));
  Scheduler scheduler(100, std::move(pools));
  std::promise<Outcome> first, second;
  Job a = MakeJob(DataType::kFloat32, &first, 60);
  ASSERT_TRUE(scheduler.Submit(a).ok());
  while (scheduler.running() != 1) std::this_thread::yield();  // a left the queue
  Job b = MakeJob(DataType::kFloat64, &second, 60);
  const absl::Status status = scheduler.Submit(b);
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_EQ(scheduler.bytes_admitted(), 60);

  // Room appears once the first job has finished; the waiter is told then.
  std::promise<void> room;
  std::future<void> room_found = room.get_future();
  scheduler.NotifyWhenRoom(scheduler.RoomFor(b), [&room] { room.set_value(); });
  EXPECT_EQ(room_found.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  gate.Open();
  EXPECT_TRUE(first.get_future().get().status.ok());
  room_found.wait();
  ASSERT_TRUE(scheduler.Submit(b).ok());
  EXPECT_TRUE(second.get_future().get().status.ok());
}

TEST(Scheduler, DropsJobsPastTheirDeadlineOrCancelledUnrun) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakePool("fast", kFloat32Only, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));

  std::promise<Outcome> late, cancelled;
  Job a = MakeJob(DataType::kFloat32, &late);
  a.deadline = std::chrono::system_clock::now() - std::chrono::seconds(1);
  a.output = [](const ConvSpec&) {
    ADD_FAILURE() << "a job past its deadline was run";
    return TensorView{};
  };
  ASSERT_TRUE(scheduler.Submit(a).ok());
  const Outcome a_outcome = late.get_future().get();
  EXPECT_TRUE(absl::IsDeadlineExceeded(a_outcome.status)) << a_outcome.status;
  EXPECT_EQ(a_outcome.backend, "") << "no backend ran it";

  Job b = MakeJob(DataType::kFloat32, &cancelled);
  b.cancelled = [] { return absl::CancelledError("gone"); };
  ASSERT_TRUE(scheduler.Submit(b).ok());
  EXPECT_EQ(cancelled.get_future().get().status, absl::CancelledError("gone"));
}

TEST(Scheduler, AJobItsBackendDeclinesRunsOnTheNextPoolThatComputesIt) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakePool("picky", kFloat32Only, 1, 4, nullptr, /*decline=*/true));
  pools.push_back(MakePool("float64", {DataType::kFloat64}, 1, 4));
  pools.push_back(MakePool("slow", kEverything, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));
  std::promise<Outcome> outcome;
  Job job = MakeJob(DataType::kFloat32, &outcome, 10);
  ASSERT_TRUE(scheduler.Submit(job).ok());
  const Outcome result = outcome.get_future().get();
  EXPECT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.backend, "slow");
  while (scheduler.bytes_admitted() != 0) std::this_thread::yield();  // released once
}

TEST(Scheduler, ADeclinedJobWithNoOtherPoolOrANamedBackendFailsUnimplemented) {
  for (bool named : {false, true}) {
    std::vector<Scheduler::Pool> pools;
    pools.push_back(MakePool("picky", kEverything, 1, 4, nullptr, /*decline=*/true));
    if (named) pools.push_back(MakePool("slow", kEverything, 1, 4));
    Scheduler scheduler(1 << 20, std::move(pools));
    std::promise<Outcome> outcome;
    Job job = MakeJob(DataType::kFloat32, &outcome);
    if (named) job.backend = "picky";
    ASSERT_TRUE(scheduler.Submit(job).ok());
    const Outcome result = outcome.get_future().get();
    EXPECT_TRUE(absl::IsUnimplemented(result.status)) << result.status;
    EXPECT_EQ(result.backend, "picky");
  }
}

TEST(Scheduler, DescribesEachPoolInRoutingOrder) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakePool("fast", kFloat32Only, 2, 4));
  pools.push_back(MakePool("slow", kEverything, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));
  const std::vector<BackendInfo> infos = scheduler.DescribeBackends();
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_EQ(infos[0].name, "fast");
  EXPECT_EQ(infos[1].name, "slow");
  EXPECT_EQ(scheduler.pool_status()[0].workers, 2);
}

}  // namespace
}  // namespace convserve::server
