// The scheduler's pools without a network: routing, per-pool queue bounds,
// the shared memory budget, deadlines and cancellation, waiting for room.
#include "server/scheduler.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "core/make_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/gate.h"

namespace convserve::server {
namespace {

using test::Gate;

// What a fake backend's Run does after its gate: compute (write nothing),
// decline (UNIMPLEMENTED), or find its device lost (UNAVAILABLE).
enum class Outcome { kCompute, kDecline, kLoseDevice };

// A backend that computes the dtypes it is given on `device`, waits at
// `gate` (if any) and then does what `outcome` says; counts its Run calls.
class FakeBackend final : public Backend {
 public:
  FakeBackend(std::string name, std::vector<DataType> dtypes, Gate* gate = nullptr,
              bool decline = false, std::string device = "cpu", Outcome outcome = Outcome::kCompute,
              std::atomic<int>* runs = nullptr)
      : name_(std::move(name)),
        dtypes_(std::move(dtypes)),
        gate_(gate),
        outcome_(decline ? Outcome::kDecline : outcome),
        device_(std::move(device)),
        runs_(runs) {}
  absl::string_view Name() const override { return name_; }
  BackendInfo Describe() const override {
    BackendInfo info;
    info.name = name_;
    info.device_id = device_;
    info.native_dtypes = dtypes_;
    return info;
  }
  bool Computes(const ConvSpec& spec) const override {
    return std::find(dtypes_.begin(), dtypes_.end(), spec.dtype) != dtypes_.end();
  }
  int64_t DeviceBytes() const override { return device_ == "cpu" ? 0 : 1000; }
  absl::Status Run(const ConvSpec& spec, const Operands&, TensorView out) override {
    if (runs_) ++*runs_;
    if (gate_) gate_->Wait();
    switch (outcome_) {
      case Outcome::kCompute:
        // Enough for the warm-up's check (its result is all 4s); others pass no buffer.
        if (out.data != nullptr && out.dtype == DataType::kFloat32) {
          std::fill_n(out.as<float>(), spec.ResultElements(), 4.0f);
        }
        return absl::OkStatus();
      case Outcome::kDecline: return absl::UnimplementedError("declined");
      case Outcome::kLoseDevice: return absl::UnavailableError("device fell off the bus");
    }
    return absl::InternalError("unreachable");
  }

 private:
  const std::string name_;
  const std::vector<DataType> dtypes_;
  Gate* const gate_;
  const Outcome outcome_;
  const std::string device_;
  std::atomic<int>* const runs_;
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

// A pool of one worker on a GPU-like `device`, as the server runs one per GPU.
Scheduler::Pool MakeDevicePool(const std::string& device, std::vector<DataType> dtypes,
                               int max_queue, Gate* gate = nullptr,
                               Outcome outcome = Outcome::kCompute,
                               std::atomic<int>* runs = nullptr) {
  Scheduler::Pool pool;
  pool.max_queue = max_queue;
  pool.backends.push_back(
      std::make_unique<FakeBackend>("gpu", dtypes, gate, false, device, outcome, runs));
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

// A job whose result arrives in `result` (status, backend and device that ran it).
struct Result {
  absl::Status status;
  std::string backend;
  std::string device;
};
Job MakeJob(DataType dtype, std::promise<Result>* result, int64_t bytes = 0) {
  Job job;
  job.spec = Spec(dtype);
  job.bytes = bytes;
  job.output = [](const ConvSpec&) { return TensorView{}; };
  job.done = [result](const absl::Status& status, const JobReport& report) {
    result->set_value({status, std::string(report.backend), std::string(report.device)});
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

  std::promise<Result> f32, f64;
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

  std::promise<Result> outcome;
  Job job = MakeJob(DataType::kFloat32, &outcome);
  job.backend = "slow";
  ASSERT_TRUE(scheduler.Submit(job).ok());
  EXPECT_EQ(outcome.get_future().get().backend, "slow");

  std::promise<Result> unused;
  Job unknown = MakeJob(DataType::kFloat32, &unused);
  unknown.backend = "cuda";
  EXPECT_TRUE(absl::IsNotFound(scheduler.Submit(unknown)));
}

TEST(Scheduler, RefusesWhatNoPoolComputes) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakePool("fast", kFloat32Only, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));
  std::promise<Result> unused;
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

  std::promise<Result> running, queued, refused, other;
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
  std::promise<Result> first, second;
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

  std::promise<Result> late, cancelled;
  Job a = MakeJob(DataType::kFloat32, &late);
  a.deadline = std::chrono::system_clock::now() - std::chrono::seconds(1);
  a.output = [](const ConvSpec&) {
    ADD_FAILURE() << "a job past its deadline was run";
    return TensorView{};
  };
  ASSERT_TRUE(scheduler.Submit(a).ok());
  const Result a_outcome = late.get_future().get();
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
  std::promise<Result> outcome;
  Job job = MakeJob(DataType::kFloat32, &outcome, 10);
  ASSERT_TRUE(scheduler.Submit(job).ok());
  const Result result = outcome.get_future().get();
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
    std::promise<Result> outcome;
    Job job = MakeJob(DataType::kFloat32, &outcome);
    if (named) job.backend = "picky";
    ASSERT_TRUE(scheduler.Submit(job).ok());
    const Result result = outcome.get_future().get();
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

TEST(Scheduler, ReportsEachJobsDeviceAndEachPoolsState) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakeDevicePool("cuda:0", kFloat32Only, 4));
  pools.push_back(MakePool("cpu", kEverything, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));
  std::promise<Result> f32, f64;
  Job a = MakeJob(DataType::kFloat32, &f32), b = MakeJob(DataType::kFloat64, &f64);
  ASSERT_TRUE(scheduler.Submit(a).ok());
  ASSERT_TRUE(scheduler.Submit(b).ok());
  const Result on_gpu = f32.get_future().get(), on_cpu = f64.get_future().get();
  EXPECT_EQ(on_gpu.backend, "gpu");
  EXPECT_EQ(on_gpu.device, "cuda:0");
  EXPECT_EQ(on_cpu.backend, "cpu");
  EXPECT_EQ(on_cpu.device, "cpu");

  const std::vector<Scheduler::PoolStatus> status = scheduler.pool_status();
  ASSERT_EQ(status.size(), 2u);
  EXPECT_EQ(status[0].device_id, "cuda:0");
  EXPECT_TRUE(status[0].in_service);
  EXPECT_EQ(status[0].out_of_service_reason, "");
  EXPECT_EQ(status[0].device_bytes, 1000);
  EXPECT_EQ(status[1].device_id, "cpu");
  EXPECT_EQ(status[1].device_bytes, 0);
}

TEST(Scheduler, APoolGroupTakesEachJobOnItsLeastLoadedMember) {
  Gate gate;
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakeDevicePool("cuda:0", kFloat32Only, 8, &gate));
  pools.push_back(MakeDevicePool("cuda:1", kFloat32Only, 8, &gate));
  pools.push_back(MakePool("cpu", kEverything, 1, 8));
  Scheduler scheduler(1 << 20, std::move(pools));

  // Load is queued plus running, so it does not matter whether a worker took a job yet.
  std::promise<Result> results[4];
  const char* const expected[] = {"cuda:0", "cuda:1", "cuda:0", "cuda:1"};
  for (int i = 0; i < 3; ++i) {
    Job job = MakeJob(DataType::kFloat32, &results[i]);
    EXPECT_EQ(*scheduler.Route(job), i % 2) << "ties go to the first";
    ASSERT_TRUE(scheduler.Submit(job).ok());
  }
  // Asked for by name, the backend's least loaded pool: cuda:1 (1 job, cuda:0 has 2).
  Job named = MakeJob(DataType::kFloat32, &results[3]);
  named.backend = "gpu";
  EXPECT_EQ(*scheduler.Route(named), 1);
  ASSERT_TRUE(scheduler.Submit(named).ok());
  // What the group does not compute still goes to the next pool.
  std::promise<Result> f64;
  Job other = MakeJob(DataType::kFloat64, &f64);
  EXPECT_EQ(*scheduler.Route(other), 2);

  gate.Open();
  for (int i = 0; i < 4; ++i) {
    const Result result = results[i].get_future().get();
    EXPECT_TRUE(result.status.ok()) << result.status;
    EXPECT_EQ(result.device, expected[i]) << "job " << i;
  }
}

TEST(Scheduler, AGroupPrefersAMemberWhoseQueueHasRoom) {
  Gate gate;
  std::vector<Scheduler::Pool> pools;
  // cuda:0 queues at most 1 job, cuda:1 at most 4.
  pools.push_back(MakeDevicePool("cuda:0", kFloat32Only, 1, &gate));
  pools.push_back(MakeDevicePool("cuda:1", kFloat32Only, 4, &gate));
  Scheduler scheduler(1 << 20, std::move(pools));
  std::promise<Result> results[5];
  std::vector<Job> jobs;
  for (auto& result : results) jobs.push_back(MakeJob(DataType::kFloat32, &result));
  ASSERT_TRUE(scheduler.Submit(jobs[0]).ok());  // cuda:0 runs it
  while (scheduler.running() != 1) std::this_thread::yield();
  ASSERT_TRUE(scheduler.Submit(jobs[1]).ok());  // cuda:1 runs it
  while (scheduler.running() != 2) std::this_thread::yield();
  ASSERT_TRUE(scheduler.Submit(jobs[2]).ok());  // tied: cuda:0's queue, now full
  ASSERT_TRUE(scheduler.Submit(jobs[3]).ok());  // cuda:1's queue
  // Loads tied again (2 and 2): the first member's queue is full, so cuda:1.
  EXPECT_EQ(*scheduler.Route(jobs[4]), 1);
  const bool admitted = scheduler.Submit(jobs[4]).ok();
  EXPECT_TRUE(admitted) << "refused while cuda:1 had room";
  gate.Open();
  for (int i = 0; i < (admitted ? 5 : 4); ++i) {
    EXPECT_TRUE(results[i].get_future().get().status.ok());
  }
}

TEST(Scheduler, AJobNamingABackendGoesToAMemberThatComputesIt) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakeDevicePool("cuda:0", kFloat32Only, 4));  // an older GPU
  pools.push_back(MakeDevicePool("cuda:1", kEverything, 4));
  pools.push_back(MakePool("cpu", {DataType::kFloat32}, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));
  std::promise<Result> unused;
  Job f64 = MakeJob(DataType::kFloat64, &unused);
  f64.backend = "gpu";
  EXPECT_EQ(*scheduler.Route(f64), 1);
  Job on_cpu = MakeJob(DataType::kFloat64, &unused);
  on_cpu.backend = "cpu";
  const absl::StatusOr<int> refused = scheduler.Route(on_cpu);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
}

TEST(Scheduler, ADeclinedJobGoesToAnotherBackendNotToASibling) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakeDevicePool("cuda:0", kFloat32Only, 4, nullptr, Outcome::kDecline));
  pools.push_back(MakeDevicePool("cuda:1", kFloat32Only, 4));
  pools.push_back(MakePool("cpu", kEverything, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));
  std::promise<Result> result;
  Job job = MakeJob(DataType::kFloat32, &result);
  ASSERT_EQ(*scheduler.Route(job), 0);
  ASSERT_TRUE(scheduler.Submit(job).ok());
  const Result outcome = result.get_future().get();
  EXPECT_TRUE(outcome.status.ok()) << outcome.status;
  EXPECT_EQ(outcome.backend, "cpu");
  EXPECT_TRUE(scheduler.pool_status()[0].in_service) << "declining is not losing the device";
}

TEST(Scheduler, ALostDeviceTakesItsPoolOutOfServiceAndItsJobsGoElsewhere) {
  Gate gate;
  std::atomic<int> gpu_runs{0};
  std::vector<Scheduler::Pool> pools;
  pools.push_back(
      MakeDevicePool("cuda:0", kFloat32Only, 8, &gate, Outcome::kLoseDevice, &gpu_runs));
  pools.push_back(MakePool("cpu", kEverything, 1, 8));
  Scheduler scheduler(1 << 20, std::move(pools));
  EXPECT_EQ(scheduler.workers(), 2);

  // The order the CPU's one worker completes jobs in.
  std::mutex mutex;
  std::vector<int> order;
  std::promise<Result> results[4];
  std::vector<Job> jobs;
  for (int i = 0; i < 4; ++i) {
    Job job = MakeJob(DataType::kFloat32, &results[i], 10);
    job.done = [&, i](const absl::Status& status, const JobReport& report) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        order.push_back(i);
      }
      results[i].set_value({status, std::string(report.backend), std::string(report.device)});
    };
    if (i == 3) job.backend = "gpu";  // asked for by name: it fails instead
    jobs.push_back(std::move(job));
  }
  ASSERT_TRUE(scheduler.Submit(jobs[0]).ok());
  while (scheduler.running() != 1) std::this_thread::yield();
  for (int i = 1; i < 4; ++i) ASSERT_TRUE(scheduler.Submit(jobs[i]).ok());
  EXPECT_EQ(scheduler.pool_status()[0].queue_depth, 3);

  gate.Open();  // the running job finds the device lost
  for (int i = 0; i < 3; ++i) {
    const Result result = results[i].get_future().get();
    EXPECT_TRUE(result.status.ok()) << "job " << i << ": " << result.status;
    EXPECT_EQ(result.backend, "cpu") << "job " << i;
    EXPECT_EQ(result.device, "cpu") << "job " << i;
  }
  const Result named = results[3].get_future().get();
  EXPECT_TRUE(absl::IsUnavailable(named.status)) << named.status;
  EXPECT_THAT(std::string(named.status.message()), ::testing::HasSubstr("device fell off the bus"));
  EXPECT_EQ(gpu_runs.load(), 1) << "the lost device's worker never runs again";
  {
    std::lock_guard<std::mutex> lock(mutex);
    // The named job fails at once; the others keep their order on the CPU.
    std::vector<int> moved;
    for (int i : order) {
      if (i != 3) moved.push_back(i);
    }
    EXPECT_EQ(moved, (std::vector<int>{0, 1, 2}));
  }

  const std::vector<Scheduler::PoolStatus> status = scheduler.pool_status();
  EXPECT_FALSE(status[0].in_service);
  EXPECT_EQ(status[0].out_of_service_reason, "device fell off the bus");
  EXPECT_EQ(status[0].queue_depth, 0);
  EXPECT_TRUE(status[1].in_service);
  EXPECT_EQ(scheduler.workers(), 1) << "only the pools in service count";

  // Later jobs skip the pool; asking for it by name or index is UNAVAILABLE.
  std::promise<Result> later;
  Job job = MakeJob(DataType::kFloat32, &later);
  EXPECT_EQ(*scheduler.Route(job), 1);
  ASSERT_TRUE(scheduler.Submit(job).ok());
  EXPECT_EQ(later.get_future().get().backend, "cpu");
  std::promise<Result> unused;
  Job by_name = MakeJob(DataType::kFloat32, &unused);
  by_name.backend = "gpu";
  const absl::Status refused = scheduler.Submit(by_name);
  EXPECT_TRUE(absl::IsUnavailable(refused)) << refused;
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("out of service"));
  Job by_index = MakeJob(DataType::kFloat32, &unused);
  by_index.pool = 0;
  EXPECT_TRUE(absl::IsUnavailable(scheduler.Submit(by_index)));
  EXPECT_TRUE(by_index.done) << "a refused job is left untouched";
  while (scheduler.bytes_admitted() != 0) std::this_thread::yield();  // each released once
  EXPECT_EQ(gpu_runs.load(), 1);
}

TEST(Scheduler, ALostDeviceLeavesItsSiblingsInService) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakeDevicePool("cuda:0", kFloat32Only, 4, nullptr, Outcome::kLoseDevice));
  pools.push_back(MakeDevicePool("cuda:1", kFloat32Only, 4));
  pools.push_back(MakePool("cpu", kEverything, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));
  std::promise<Result> first;
  Job job = MakeJob(DataType::kFloat32, &first);
  ASSERT_EQ(*scheduler.Route(job), 0);
  ASSERT_TRUE(scheduler.Submit(job).ok());
  const Result moved = first.get_future().get();
  EXPECT_TRUE(moved.status.ok()) << moved.status;
  EXPECT_EQ(moved.device, "cuda:1") << "a lost device's job goes to its sibling in service first";

  std::promise<Result> second;
  Job next = MakeJob(DataType::kFloat32, &second);
  EXPECT_EQ(*scheduler.Route(next), 1);
  ASSERT_TRUE(scheduler.Submit(next).ok());
  EXPECT_EQ(second.get_future().get().device, "cuda:1");
  Job named = MakeJob(DataType::kFloat32, &second);
  named.backend = "gpu";
  EXPECT_EQ(*scheduler.Route(named), 1);
  EXPECT_FALSE(scheduler.pool_status()[0].in_service);
  EXPECT_TRUE(scheduler.pool_status()[1].in_service);
}

TEST(Scheduler, RoomWaitersAreToldWhenAPoolLeavesService) {
  Gate gate;
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakeDevicePool("cuda:0", kFloat32Only, 1, &gate, Outcome::kLoseDevice));
  pools.push_back(MakePool("cpu", kEverything, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));
  std::promise<Result> running, queued, waiting;
  Job a = MakeJob(DataType::kFloat32, &running);
  ASSERT_TRUE(scheduler.Submit(a).ok());
  while (scheduler.running() != 1) std::this_thread::yield();
  Job b = MakeJob(DataType::kFloat32, &queued);
  ASSERT_TRUE(scheduler.Submit(b).ok());
  Job c = MakeJob(DataType::kFloat32, &waiting);
  ASSERT_TRUE(absl::IsResourceExhausted(scheduler.Submit(c)));

  std::promise<void> room;
  std::future<void> room_found = room.get_future();
  const Scheduler::Room for_c = scheduler.RoomFor(c);
  EXPECT_EQ(for_c.pool, 0);
  scheduler.NotifyWhenRoom(for_c, [&room] { room.set_value(); });
  EXPECT_EQ(room_found.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  gate.Open();
  room_found.wait();
  ASSERT_TRUE(scheduler.Submit(c).ok()) << "routed to the pool in service";
  EXPECT_EQ(waiting.get_future().get().backend, "cpu");
  EXPECT_EQ(running.get_future().get().backend, "cpu");
  EXPECT_EQ(queued.get_future().get().backend, "cpu");

  // Waiting for room on a pool out of service returns at once.
  bool called = false;
  scheduler.NotifyWhenRoom(for_c, [&called] { called = true; });
  EXPECT_TRUE(called);
}

TEST(Scheduler, WhatOnlyPoolsOutOfServiceComputeIsUnavailable) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakeDevicePool("cuda:0", kFloat32Only, 4, nullptr, Outcome::kLoseDevice));
  pools.push_back(MakePool("cpu", {DataType::kFloat64}, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));
  std::promise<Result> lost;
  Job job = MakeJob(DataType::kFloat32, &lost);
  ASSERT_TRUE(scheduler.Submit(job).ok());
  const Result result = lost.get_future().get();
  EXPECT_TRUE(absl::IsUnavailable(result.status)) << "no other pool computes it: " << result.status;
  EXPECT_EQ(result.device, "cuda:0");

  std::promise<Result> unused;
  Job f32 = MakeJob(DataType::kFloat32, &unused);
  const absl::Status refused = scheduler.Submit(f32);
  EXPECT_TRUE(absl::IsUnavailable(refused)) << refused;
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("device fell off the bus"));
  Job int32 = MakeJob(DataType::kInt32, &unused);
  const absl::Status unimplemented = scheduler.Submit(int32);
  EXPECT_TRUE(absl::IsUnimplemented(unimplemented)) << unimplemented;
  EXPECT_THAT(std::string(unimplemented.message()),
              ::testing::HasSubstr("pools: gpu (out of service), cpu"));
}

TEST(Scheduler, AJobForAPoolIndexRunsThereAndIsNeverHandedOn) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakePool("picky", kFloat32Only, 1, 4, nullptr, /*decline=*/true));
  pools.push_back(MakePool("slow", kEverything, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));
  std::promise<Result> declined, ran;
  Job job = MakeJob(DataType::kFloat32, &declined);
  job.pool = 0;
  ASSERT_TRUE(scheduler.Submit(job).ok());
  EXPECT_TRUE(absl::IsUnimplemented(declined.get_future().get().status));
  Job f64 = MakeJob(DataType::kFloat64, &ran);
  f64.pool = 1;
  EXPECT_EQ(*scheduler.Route(f64), 1);
  ASSERT_TRUE(scheduler.Submit(f64).ok());
  EXPECT_EQ(ran.get_future().get().backend, "slow");
  std::promise<Result> unused;
  Job missing = MakeJob(DataType::kFloat32, &unused);
  missing.pool = 2;
  EXPECT_TRUE(absl::IsNotFound(scheduler.Submit(missing)));
}

TEST(Scheduler, StoppingWithALostDeviceFailsWhatCannotMoveAndNeverHangs) {
  Gate gate;
  std::promise<Result> running, queued;
  std::thread opener;
  {
    std::vector<Scheduler::Pool> pools;
    pools.push_back(MakeDevicePool("cuda:0", kFloat32Only, 4, &gate, Outcome::kLoseDevice));
    pools.push_back(MakePool("cpu", kEverything, 1, 4));
    Scheduler scheduler(1 << 20, std::move(pools));
    Job a = MakeJob(DataType::kFloat32, &running), b = MakeJob(DataType::kFloat32, &queued);
    ASSERT_TRUE(scheduler.Submit(a).ok());
    while (scheduler.running() != 1) std::this_thread::yield();
    ASSERT_TRUE(scheduler.Submit(b).ok());
    opener = std::thread([&gate] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      gate.Open();
    });
  }  // the destructor stops while the device is lost
  opener.join();
  for (std::promise<Result>* result : {&running, &queued}) {
    const Result outcome = result->get_future().get();
    EXPECT_TRUE(outcome.status.ok() || absl::IsUnavailable(outcome.status)) << outcome.status;
  }
}

// The warm-up runs on every pool, by index, even several of one backend.
TEST(WarmUp, RunsOnEveryPoolAndSkipsAGpuWhoseDeviceCannotBeUsed) {
  std::atomic<int> first_runs{0}, second_runs{0};
  std::vector<Scheduler::Pool> pools;
  pools.push_back(
      MakeDevicePool("cuda:0", kFloat32Only, 4, nullptr, Outcome::kLoseDevice, &first_runs));
  pools.push_back(
      MakeDevicePool("cuda:1", kFloat32Only, 4, nullptr, Outcome::kCompute, &second_runs));
  pools.push_back(MakePool("cpu", kEverything, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));
  const absl::Status status = WarmUp(scheduler);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(first_runs.load(), 1);
  EXPECT_EQ(second_runs.load(), 1) << "each GPU pool warmed up, not just the least loaded";
  const std::vector<Scheduler::PoolStatus> state = scheduler.pool_status();
  EXPECT_FALSE(state[0].in_service);
  EXPECT_EQ(state[0].out_of_service_reason, "device fell off the bus");
  EXPECT_TRUE(state[1].in_service);
  EXPECT_TRUE(state[2].in_service);
}

TEST(WarmUp, AnyFailureOfAGpuTakesItOutOfServiceAndTheServerStarts) {
  // A decline (say, an architecture cuDNN does not run on) is no better than
  // a lost device: the GPU leaves service, the CPU pools serve.
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakeDevicePool("cuda:0", kFloat32Only, 4, nullptr, Outcome::kDecline));
  pools.push_back(MakePool("cpu", kEverything, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools));
  const absl::Status status = WarmUp(scheduler);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_FALSE(scheduler.pool_status()[0].in_service);
  EXPECT_EQ(scheduler.pool_status()[0].out_of_service_reason, "declined");
  std::promise<Result> result;
  Job job = MakeJob(DataType::kFloat32, &result);
  EXPECT_EQ(*scheduler.Route(job), 1);
}

TEST(WarmUp, ACpuPoolsFailureFailsTheStartNamingThePool) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakePool("cpu", kEverything, 1, 4, nullptr, /*decline=*/true));
  Scheduler scheduler(1 << 20, std::move(pools));
  const absl::Status status = WarmUp(scheduler);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented) << status;
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("cpu: declined"));
}

// Inline runs (SubmitOrRun): small jobs on the caller's thread.

constexpr double kInlineUpTo = 1000;  // flops; Spec() has 32

// Submits `job` with SubmitOrRun and returns the thread its callback ran on.
std::thread::id DoneOn(Scheduler& scheduler, Job job) {
  std::promise<std::thread::id> done_on;
  job.done = [&done_on](const absl::Status& status, const JobReport&) {
    EXPECT_TRUE(status.ok()) << status;
    done_on.set_value(std::this_thread::get_id());
  };
  EXPECT_TRUE(scheduler.SubmitOrRun(job).ok());
  return done_on.get_future().get();
}

TEST(InlineRun, ASmallJobRunsOnTheCallersThreadWhenAWorkerIsIdle) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakePool("cpu", kFloat32Only, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools), Scheduler::Batching{}, kInlineUpTo);
  std::promise<Result> unused;
  EXPECT_EQ(DoneOn(scheduler, MakeJob(DataType::kFloat32, &unused)), std::this_thread::get_id());
}

TEST(InlineRun, LargerJobsAndSchedulersWithoutInlineRunsUseTheWorkers) {
  for (double max_flops : {0.0, 31.0}) {
    std::vector<Scheduler::Pool> pools;
    pools.push_back(MakePool("cpu", kFloat32Only, 1, 4));
    Scheduler scheduler(1 << 20, std::move(pools), Scheduler::Batching{}, max_flops);
    std::promise<Result> unused;
    EXPECT_NE(DoneOn(scheduler, MakeJob(DataType::kFloat32, &unused)), std::this_thread::get_id())
        << max_flops;
  }
}

TEST(InlineRun, AJobOfFewFlopsOverManyElementsUsesTheWorkers) {
  // Say, a transposed conv whose strides exceed its filter: few products, a
  // large result to write.
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakePool("cpu", kFloat32Only, 1, 4));
  Scheduler scheduler(1 << 20, std::move(pools), Scheduler::Batching{}, kInlineUpTo);
  std::promise<Result> unused;
  Job job = MakeJob(DataType::kFloat32, &unused);
  job.spec.input_spatial = {64, 64, 1};  // 4,096 elements > kInlineUpTo; Flops() unchanged
  EXPECT_NE(DoneOn(scheduler, std::move(job)), std::this_thread::get_id());
}

TEST(InlineRun, GpuPoolsNeverRunInline) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakeDevicePool("cuda:0", kFloat32Only, 4));
  Scheduler scheduler(1 << 20, std::move(pools), Scheduler::Batching{}, kInlineUpTo);
  std::promise<Result> unused;
  EXPECT_NE(DoneOn(scheduler, MakeJob(DataType::kFloat32, &unused)), std::this_thread::get_id());
}

TEST(InlineRun, WithEveryWorkerBusyTheJobQueuesAndAWorkerRunsIt) {
  Gate gate;
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakePool("cpu", kFloat32Only, 1, 4, &gate));
  Scheduler scheduler(1 << 20, std::move(pools), Scheduler::Batching{}, kInlineUpTo);
  std::promise<Result> first;
  Job blocking = MakeJob(DataType::kFloat32, &first);
  ASSERT_TRUE(scheduler.Submit(blocking).ok());
  std::promise<std::thread::id> done_on;
  Job job = MakeJob(DataType::kFloat32, nullptr);
  job.done = [&done_on](const absl::Status&, const JobReport&) {
    done_on.set_value(std::this_thread::get_id());
  };
  const absl::Status admitted = scheduler.SubmitOrRun(job);  // returns without waiting
  gate.Open();
  ASSERT_TRUE(admitted.ok()) << admitted;
  EXPECT_NE(done_on.get_future().get(), std::this_thread::get_id());
  EXPECT_TRUE(first.get_future().get().status.ok());
}

TEST(InlineRun, RefusesAsSubmitDoesWhenTheBudgetIsFull) {
  std::vector<Scheduler::Pool> pools;
  pools.push_back(MakePool("cpu", kFloat32Only, 1, 4));
  Scheduler scheduler(100, std::move(pools), Scheduler::Batching{}, kInlineUpTo);
  std::promise<Result> result;
  Job job = MakeJob(DataType::kFloat32, &result, /*bytes=*/101);
  EXPECT_EQ(scheduler.SubmitOrRun(job).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(scheduler.bytes_admitted(), 0);
}

// Fails the test if two threads are ever inside its Run at once; may vouch
// for batch invariance.
class ExclusiveBackend final : public Backend {
 public:
  explicit ExclusiveBackend(bool batch_invariant = false) : batch_invariant_(batch_invariant) {}
  absl::string_view Name() const override { return "exclusive"; }
  BackendInfo Describe() const override {
    BackendInfo info;
    info.name = "exclusive";
    return info;
  }
  bool Computes(const ConvSpec&) const override { return true; }
  bool BatchInvariant(const ConvSpec&) const override { return batch_invariant_; }
  absl::Status Run(const ConvSpec&, const Operands&, TensorView) override {
    EXPECT_EQ(inside_.fetch_add(1), 0) << "a backend ran on two threads at once";
    std::this_thread::yield();
    inside_.fetch_sub(1);
    return absl::OkStatus();
  }

 private:
  const bool batch_invariant_;
  std::atomic<int> inside_{0};
};

TEST(InlineRun, ABackendNeverRunsOnTwoThreadsAtOnce) {
  std::vector<Scheduler::Pool> pools;
  Scheduler::Pool pool;
  pool.max_queue = 4 * 300;  // every job may queue
  for (int i = 0; i < 2; ++i) pool.backends.push_back(std::make_unique<ExclusiveBackend>());
  pools.push_back(std::move(pool));
  Scheduler scheduler(1 << 20, std::move(pools), Scheduler::Batching{}, kInlineUpTo);
  std::atomic<int> done{0}, inline_runs{0};
  std::vector<std::thread> callers;
  constexpr int kCallers = 4, kJobsEach = 300;
  for (int caller = 0; caller < kCallers; ++caller) {
    callers.emplace_back([&, caller] {
      for (int i = 0; i < kJobsEach; ++i) {
        Job job = MakeJob(DataType::kFloat32, nullptr);
        const std::thread::id self = std::this_thread::get_id();
        job.done = [&, self](const absl::Status& status, const JobReport&) {
          EXPECT_TRUE(status.ok()) << status;
          if (std::this_thread::get_id() == self) ++inline_runs;
          ++done;
        };
        // Half through the queue, half inline where a backend is idle.
        const absl::Status admitted =
            (i + caller) % 2 == 0 ? scheduler.Submit(job) : scheduler.SubmitOrRun(job);
        ASSERT_TRUE(admitted.ok()) << admitted;
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  // Bounded: a lost job fails the test rather than hanging it.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (done.load() < kCallers * kJobsEach && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  ASSERT_EQ(done.load(), kCallers * kJobsEach);
  // How many ran inline depends on the timing; the test's point is that no
  // backend ever ran on two threads at once, inline or not.
  RecordProperty("inline_runs", inline_runs.load());
}

TEST(InlineRun, AJobThatBatchingMayHoldIsQueued) {
  std::vector<Scheduler::Pool> pools;
  Scheduler::Pool pool;
  pool.max_queue = 4;
  pool.backends.push_back(std::make_unique<ExclusiveBackend>(/*batch_invariant=*/true));
  pools.push_back(std::move(pool));
  Scheduler::Batching batching;
  batching.max_images = 4;
  Scheduler scheduler(1 << 20, std::move(pools), batching, kInlineUpTo);
  Job job = MakeJob(DataType::kFloat32, nullptr);
  const float input[9] = {};
  job.operands.input = {
      DataType::kFloat32, {1, 3, 3, 1}, reinterpret_cast<const std::byte*>(input)};
  EXPECT_NE(DoneOn(scheduler, std::move(job)), std::this_thread::get_id());
}

}  // namespace
}  // namespace convserve::server
