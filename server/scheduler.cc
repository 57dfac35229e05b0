#include "server/scheduler.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace convserve::server {
namespace {

using Clock = std::chrono::steady_clock;

// Why `job` may not run, checked just before it would: its deadline, then
// its cancellation.
absl::Status CheckStillWanted(const Job& job) {
  if (std::chrono::system_clock::now() > job.deadline) {
    return absl::DeadlineExceededError("the deadline passed before the request ran");
  }
  return job.cancelled ? job.cancelled() : absl::OkStatus();
}

}  // namespace

Scheduler::Scheduler(int64_t memory_budget_bytes, std::vector<Pool> pools)
    : memory_budget_bytes_(memory_budget_bytes) {
  for (Pool& pool : pools) {
    auto state = std::make_unique<PoolState>();
    state->backends = std::move(pool.backends);
    state->max_queue = pool.max_queue;
    pools_.push_back(std::move(state));
  }
  for (size_t i = 0; i < pools_.size(); ++i) {
    for (const auto& backend : pools_[i]->backends) {
      workers_.emplace_back([this, i, b = backend.get()] { WorkerLoop(i, *b); });
    }
  }
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  for (const auto& pool : pools_) pool->work_available.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

absl::StatusOr<int> Scheduler::Route(const Job& job) const {
  for (size_t i = 0; i < pools_.size(); ++i) {
    const Backend& backend = *pools_[i]->backends.front();
    if (job.backend.empty() ? backend.Computes(job.spec) : backend.Name() == job.backend) {
      return static_cast<int>(i);
    }
  }
  std::vector<std::string> names;
  for (const auto& pool : pools_) names.emplace_back(pool->backends.front()->Name());
  if (!job.backend.empty()) {
    return absl::NotFoundError(absl::StrCat("this server runs no ", job.backend,
                                            " workers (pools: ", absl::StrJoin(names, ", "), ")"));
  }
  return absl::UnimplementedError(
      absl::StrCat("no worker pool on this server computes ", TfTypeName(job.spec.dtype),
                   " convolutions of this shape (pools: ", absl::StrJoin(names, ", "), ")"));
}

bool Scheduler::HasRoomLocked(const PoolState& pool, int64_t bytes) const {
  return static_cast<int>(pool.queue.size()) < pool.max_queue &&
         bytes_admitted_ + bytes <= memory_budget_bytes_;
}

absl::Status Scheduler::Submit(Job& job) {
  absl::StatusOr<int> route = Route(job);
  if (!route.ok()) return route.status();
  PoolState& pool = *pools_[*route];
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return absl::UnavailableError("the server is shutting down");
    if (static_cast<int>(pool.queue.size()) >= pool.max_queue) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the server's queue is full (", pool.max_queue, " requests waiting); retry later"));
    }
    if (bytes_admitted_ + job.bytes > memory_budget_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the request's ", job.bytes, " bytes would exceed the server's memory budget (",
          bytes_admitted_, " of ", memory_budget_bytes_, " bytes in use); retry later"));
    }
    bytes_admitted_ += job.bytes;
    pool.queue.push_back(Queued{std::move(job), Clock::now()});
  }
  pool.work_available.notify_one();
  return absl::OkStatus();
}

Scheduler::Room Scheduler::RoomFor(const Job& job) const {
  absl::StatusOr<int> route = Route(job);
  return Room{.pool = route.ok() ? *route : -1, .bytes = job.bytes};
}

void Scheduler::NotifyWhenRoom(Room room, std::function<void()> callback) {
  if (room.pool >= 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!HasRoomLocked(*pools_[room.pool], room.bytes)) {
      room_waiters_.push_back(std::move(callback));
      return;
    }
  }
  callback();
}

void Scheduler::NotifyWaiters(std::unique_lock<std::mutex>& lock) {
  std::vector<std::function<void()>> waiters;
  waiters.swap(room_waiters_);
  lock.unlock();
  for (auto& waiter : waiters) waiter();
  lock.lock();
}

bool Scheduler::HandOnLocked(Queued& queued, size_t from) {
  // A job that asked for its pool stays there; once stopping, the other
  // pools' workers may have left.
  if (!queued.job.backend.empty() || stopping_) return false;
  for (size_t i = from + 1; i < pools_.size(); ++i) {
    PoolState& next = *pools_[i];
    if (!next.backends.front()->Computes(queued.job.spec)) continue;
    // Already admitted: it keeps its bytes and goes ahead of the queue.
    next.queue.push_front(std::move(queued));
    next.work_available.notify_one();
    return true;
  }
  return false;
}

void Scheduler::WorkerLoop(size_t pool_index, Backend& backend) {
  PoolState& pool = *pools_[pool_index];
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    pool.work_available.wait(lock, [&] { return stopping_ || !pool.queue.empty(); });
    if (pool.queue.empty()) return;  // stopping, and nothing left to do
    Queued queued = std::move(pool.queue.front());
    pool.queue.pop_front();
    ++pool.running;
    // Room appears when a job leaves the queue and again when it releases its bytes.
    NotifyWaiters(lock);
    lock.unlock();

    Job& job = queued.job;
    JobReport report;
    report.queued = Clock::now() - queued.admitted;
    absl::Status status = CheckStillWanted(job);
    if (status.ok()) {
      const TensorView output = job.output(job.spec);
      const Clock::time_point start = Clock::now();
      status = backend.Run(job.spec, job.operands, output);
      report.compute = Clock::now() - start;
      report.backend = backend.Name();
    } else {
      report.queued = {};
    }

    lock.lock();
    --pool.running;
    if (absl::IsUnimplemented(status) && HandOnLocked(queued, pool_index)) continue;
    lock.unlock();
    job.done(status, report);
    lock.lock();
    bytes_admitted_ -= job.bytes;
    NotifyWaiters(lock);
  }
}

int Scheduler::queue_depth() const {
  std::lock_guard<std::mutex> lock(mutex_);
  int depth = 0;
  for (const auto& pool : pools_) depth += static_cast<int>(pool->queue.size());
  return depth;
}

int Scheduler::running() const {
  std::lock_guard<std::mutex> lock(mutex_);
  int running = 0;
  for (const auto& pool : pools_) running += pool->running;
  return running;
}

int64_t Scheduler::bytes_admitted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_admitted_;
}

int Scheduler::workers() const { return static_cast<int>(workers_.size()); }

std::vector<Scheduler::PoolStatus> Scheduler::pool_status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PoolStatus> status;
  for (const auto& pool : pools_) {
    status.push_back(PoolStatus{.backend = std::string(pool->backends.front()->Name()),
                                .workers = static_cast<int>(pool->backends.size()),
                                .queue_depth = static_cast<int>(pool->queue.size()),
                                .running = pool->running});
  }
  return status;
}

std::vector<BackendInfo> Scheduler::DescribeBackends() const {
  std::vector<BackendInfo> infos;
  for (const auto& pool : pools_) infos.push_back(pool->backends.front()->Describe());
  return infos;
}

}  // namespace convserve::server
