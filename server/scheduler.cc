#include "server/scheduler.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

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

// A pool's load: its jobs queued and running.
size_t Load(const auto& pool) { return pool.queue.size() + static_cast<size_t>(pool.running); }

absl::Status OutOfService(absl::string_view backend, absl::string_view device,
                          absl::string_view reason) {
  return absl::UnavailableError(
      absl::StrCat("the ", backend, " worker on ", device, " is out of service: ", reason));
}

}  // namespace

Scheduler::Scheduler(int64_t memory_budget_bytes, std::vector<Pool> pools)
    : memory_budget_bytes_(memory_budget_bytes) {
  for (Pool& pool : pools) {
    auto state = std::make_unique<PoolState>();
    state->backends = std::move(pool.backends);
    state->max_queue = pool.max_queue;
    state->name = std::string(state->backends.front()->Name());
    state->device_id = state->backends.front()->Describe().device_id;
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
  std::lock_guard<std::mutex> lock(mutex_);
  return RouteLocked(job);
}

int Scheduler::LeastLoadedLocked(size_t first, const ConvSpec& spec) const {
  int best = -1;
  bool best_has_room = false;
  size_t best_load = 0;
  for (size_t i = first; i < pools_.size(); ++i) {
    const PoolState& pool = *pools_[i];
    if (pool.name != pools_[first]->name || !pool.in_service) continue;
    if (!pool.backends.front()->Computes(spec)) continue;
    // A pool whose queue has room before any whose queue is full.
    const bool has_room = static_cast<int>(pool.queue.size()) < pool.max_queue;
    const size_t load = Load(pool);
    if (best < 0 || (has_room && !best_has_room) ||
        (has_room == best_has_room && load < best_load)) {
      best = static_cast<int>(i);
      best_has_room = has_room;
      best_load = load;
    }
  }
  return best;
}

size_t Scheduler::FirstOfBackendLocked(size_t index) const {
  size_t first = 0;
  while (pools_[first]->name != pools_[index]->name) ++first;
  return first;
}

absl::StatusOr<int> Scheduler::RouteLocked(const Job& job) const {
  if (job.pool >= 0) {
    if (static_cast<size_t>(job.pool) >= pools_.size()) {
      return absl::NotFoundError(
          absl::StrCat("this server has no pool ", job.pool, " (it runs ", pools_.size(), ")"));
    }
    const PoolState& pool = *pools_[job.pool];
    if (!pool.in_service) {
      return OutOfService(pool.name, pool.device_id, pool.out_of_service_reason);
    }
    return job.pool;
  }
  if (!job.backend.empty()) {
    std::vector<std::string> lost;
    bool runs = false, computes = false;
    for (size_t i = 0; i < pools_.size(); ++i) {
      const PoolState& pool = *pools_[i];
      if (pool.name != job.backend) continue;
      if (!runs) {
        runs = true;
        const int best = LeastLoadedLocked(i, job.spec);
        if (best >= 0) return best;
      }
      if (pool.backends.front()->Computes(job.spec)) computes = true;
      if (!pool.in_service) {
        lost.push_back(absl::StrCat(pool.device_id, ": ", pool.out_of_service_reason));
      }
    }
    if (runs && !computes) {
      return absl::FailedPreconditionError(
          absl::StrCat("the ", job.backend, " backend does not compute ",
                       TfTypeName(job.spec.dtype), " convolutions of this shape"));
    }
    if (!lost.empty()) {
      return absl::UnavailableError(absl::StrCat("every ", job.backend,
                                                 " worker of this server is out of service (",
                                                 absl::StrJoin(lost, "; "), ")"));
    }
    return absl::NotFoundError(absl::StrCat("this server runs no ", job.backend,
                                            " workers (pools: ", PoolNamesLocked(), ")"));
  }
  std::vector<std::string> lost;  // out-of-service pools that would compute it
  for (size_t i = 0; i < pools_.size(); ++i) {
    const PoolState& pool = *pools_[i];
    if (!pool.backends.front()->Computes(job.spec)) continue;
    if (pool.in_service) return LeastLoadedLocked(i, job.spec);
    lost.push_back(
        absl::StrCat(pool.name, " on ", pool.device_id, ": ", pool.out_of_service_reason));
  }
  if (!lost.empty()) {
    return absl::UnavailableError(
        absl::StrCat("every worker pool of this server that computes this request is out of "
                     "service (",
                     absl::StrJoin(lost, "; "), ")"));
  }
  return absl::UnimplementedError(
      absl::StrCat("no worker pool on this server computes ", TfTypeName(job.spec.dtype),
                   " convolutions of this shape (pools: ", PoolNamesLocked(), ")"));
}

std::string Scheduler::PoolNamesLocked() const {
  // Each backend once, in routing order; "(out of service)" when all its pools are.
  std::vector<std::string> names;
  for (size_t i = 0; i < pools_.size(); ++i) {
    const std::string& name = pools_[i]->name;
    bool seen = false, in_service = false;
    for (size_t j = 0; j < pools_.size(); ++j) {
      if (pools_[j]->name != name) continue;
      seen = seen || j < i;
      in_service = in_service || pools_[j]->in_service;
    }
    if (!seen) names.push_back(in_service ? name : absl::StrCat(name, " (out of service)"));
  }
  return absl::StrJoin(names, ", ");
}

bool Scheduler::HasRoomLocked(const PoolState& pool, int64_t bytes) const {
  return static_cast<int>(pool.queue.size()) < pool.max_queue &&
         bytes_admitted_ + bytes <= memory_budget_bytes_;
}

absl::Status Scheduler::Submit(Job& job) {
  PoolState* pool = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    absl::StatusOr<int> route = RouteLocked(job);
    if (!route.ok()) return route.status();
    pool = pools_[*route].get();
    if (stopping_) return absl::UnavailableError("the server is shutting down");
    if (static_cast<int>(pool->queue.size()) >= pool->max_queue) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the server's queue is full (", pool->max_queue, " requests waiting); retry later"));
    }
    if (bytes_admitted_ + job.bytes > memory_budget_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the request's ", job.bytes, " bytes would exceed the server's memory budget (",
          bytes_admitted_, " of ", memory_budget_bytes_, " bytes in use); retry later"));
    }
    bytes_admitted_ += job.bytes;
    pool->queue.push_back(Queued{std::move(job), Clock::now()});
  }
  pool->work_available.notify_one();
  return absl::OkStatus();
}

Scheduler::Room Scheduler::RoomFor(const Job& job) const {
  absl::StatusOr<int> route = Route(job);
  return Room{.pool = route.ok() ? *route : -1, .bytes = job.bytes};
}

void Scheduler::NotifyWhenRoom(Room room, std::function<void()> callback) {
  if (room.pool >= 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    const PoolState& pool = *pools_[room.pool];
    if (pool.in_service && !HasRoomLocked(pool, room.bytes)) {
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

bool Scheduler::HandOnLocked(Queued& queued, size_t from, bool device_lost) {
  // A job that asked for its pool stays there; once stopping, the other
  // pools' workers may have left.
  if (queued.job.pool >= 0 || stopping_) return false;
  auto move_to = [&](int target) {
    PoolState& next = *pools_[target];
    // Already admitted: it keeps its bytes and goes ahead of the queue.
    next.queue.push_front(std::move(queued));
    next.work_available.notify_one();
    return true;
  };
  // A lost device's jobs go to its siblings (other devices of the backend)
  // in service first; a declined job would be declined there too.
  if (device_lost) {
    const int sibling = LeastLoadedLocked(FirstOfBackendLocked(from), queued.job.spec);
    if (sibling >= 0) return move_to(sibling);
  }
  // A job that asked for its backend stays with it.
  if (!queued.job.backend.empty()) return false;
  for (size_t i = from + 1; i < pools_.size(); ++i) {
    // Not to a sibling (another device of the same backend): the next backend.
    if (pools_[i]->name == pools_[from]->name) continue;
    const int target = LeastLoadedLocked(i, queued.job.spec);
    if (target >= 0) return move_to(target);
  }
  return false;
}

bool Scheduler::TakeOutOfServiceLocked(size_t index, const absl::Status& status,
                                       std::vector<Queued>& stranded) {
  PoolState& pool = *pools_[index];
  if (!pool.in_service) return false;
  pool.in_service = false;
  pool.out_of_service_reason = std::string(status.message());
  // From the back, each to the front of its new pool: they keep their order.
  std::vector<Queued> kept;
  while (!pool.queue.empty()) {
    Queued queued = std::move(pool.queue.back());
    pool.queue.pop_back();
    if (!HandOnLocked(queued, index, /*device_lost=*/true)) kept.push_back(std::move(queued));
  }
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) stranded.push_back(std::move(*it));
  pool.work_available.notify_all();  // its other workers leave too
  return true;
}

void Scheduler::TakeOutOfService(int index, const absl::Status& reason) {
  std::unique_lock<std::mutex> lock(mutex_);
  std::vector<Queued> stranded;
  if (!TakeOutOfServiceLocked(static_cast<size_t>(index), reason, stranded)) return;
  const PoolState& pool = *pools_[index];
  FailJobs(stranded, OutOfService(pool.name, pool.device_id, pool.out_of_service_reason), lock);
  NotifyWaiters(lock);
}

void Scheduler::FailJobs(std::vector<Queued>& jobs, const absl::Status& status,
                         std::unique_lock<std::mutex>& lock) {
  if (jobs.empty()) return;
  lock.unlock();
  for (Queued& queued : jobs) {
    JobReport report;
    report.queued = Clock::now() - queued.admitted;
    queued.job.done(status, report);
  }
  lock.lock();
  for (const Queued& queued : jobs) bytes_admitted_ -= queued.job.bytes;
  NotifyWaiters(lock);
}

void Scheduler::WorkerLoop(size_t pool_index, Backend& backend) {
  PoolState& pool = *pools_[pool_index];
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    pool.work_available.wait(lock,
                             [&] { return stopping_ || !pool.queue.empty() || !pool.in_service; });
    // Out of service (its jobs went elsewhere), or stopping with nothing left to do.
    if (!pool.in_service || pool.queue.empty()) return;
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
    bool ran = false;
    if (status.ok()) {
      const TensorView output = job.output(job.spec);
      const Clock::time_point start = Clock::now();
      status = backend.Run(job.spec, job.operands, output);
      report.compute = Clock::now() - start;
      report.backend = pool.name;
      report.device = pool.device_id;
      if (status.ok()) report.precision = backend.Precision(job.spec);
      ran = true;
    } else {
      report.queued = {};
    }

    lock.lock();
    --pool.running;
    if (ran && absl::IsUnimplemented(status) &&
        HandOnLocked(queued, pool_index, /*device_lost=*/false)) {
      continue;
    }
    if (ran && absl::IsUnavailable(status)) {
      // The device is lost: this pool leaves service, its jobs go elsewhere.
      std::vector<Queued> stranded;
      const bool lost_now = TakeOutOfServiceLocked(pool_index, status, stranded);
      const absl::Status out_of_service =
          OutOfService(pool.name, pool.device_id, pool.out_of_service_reason);
      const bool handed_on = HandOnLocked(queued, pool_index, /*device_lost=*/true);
      if (lost_now) {
        lock.unlock();
        spdlog::error(
            "worker pool {} on {} is out of service for good: {}; its requests go to the other "
            "pools",
            pool.name, pool.device_id, std::string(status.message()));
        lock.lock();
      }
      FailJobs(stranded, out_of_service, lock);
      if (handed_on) {
        NotifyWaiters(lock);  // its waiters retry on the pools in service
        continue;             // and the loop ends: the pool is out of service
      }
      status = out_of_service;
    }
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

int Scheduler::workers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  int workers = 0;
  for (const auto& pool : pools_) {
    if (pool->in_service) workers += static_cast<int>(pool->backends.size());
  }
  return workers;
}

std::vector<Scheduler::PoolStatus> Scheduler::pool_status() const {
  // DeviceBytes is thread-safe and the backends are fixed: read outside the lock.
  std::vector<int64_t> device_bytes;
  for (const auto& pool : pools_) {
    int64_t bytes = 0;
    for (const auto& backend : pool->backends) bytes += backend->DeviceBytes();
    device_bytes.push_back(bytes);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PoolStatus> status;
  for (size_t i = 0; i < pools_.size(); ++i) {
    const PoolState& pool = *pools_[i];
    status.push_back(PoolStatus{.backend = pool.name,
                                .device_id = pool.device_id,
                                .workers = static_cast<int>(pool.backends.size()),
                                .queue_depth = static_cast<int>(pool.queue.size()),
                                .running = pool.running,
                                .in_service = pool.in_service,
                                .out_of_service_reason = pool.out_of_service_reason,
                                .device_bytes = device_bytes[i]});
  }
  return status;
}

std::vector<BackendInfo> Scheduler::DescribeBackends() const {
  std::vector<BackendInfo> infos;
  for (const auto& pool : pools_) infos.push_back(pool->backends.front()->Describe());
  return infos;
}

}  // namespace convserve::server
