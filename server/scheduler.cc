#include "server/scheduler.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/weight_cache.h"
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

// What a job costs a thread, in floating-point operations: its FLOPs, but at
// least one per element it reads or writes (a transposed op with strides
// larger than its filter writes a large result from a few products).
double InlineCost(const ConvSpec& spec) {
  return std::max(spec.Flops(), static_cast<double>(spec.InputElements()) +
                                    static_cast<double>(spec.ResultElements()));
}

// Batching.

int64_t Elements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Bytes of a job's input (x, or dy when transposed).
int64_t InputBytes(const Job& job) {
  return Elements(job.operands.input.shape) * ItemSize(job.operands.input.dtype);
}

// Bytes of a job's input and result: its share of a batch's concatenated buffers.
int64_t BatchBufferBytes(const Job& job) {
  return InputBytes(job) + job.spec.ResultElements() * ItemSize(job.spec.dtype);
}

// Whether `job` may share a kernel call at all: its batch is the first (and
// only) batch dimension of its input and result, so that jobs concatenate
// along it byte by byte.
bool Batchable(const Job& job) {
  const ConvSpec& spec = job.spec;
  return spec.batch > 0 && !spec.result_shape.empty() && spec.result_shape[0] == spec.batch &&
         !job.operands.input.shape.empty() && job.operands.input.shape[0] == spec.batch &&
         job.operands.input.data != nullptr;
}

// `spec` for `batch` images.
ConvSpec WithBatch(ConvSpec spec, int64_t batch) {
  spec.batch = batch;
  spec.result_shape[0] = batch;
  return spec;
}

bool SameShape(const ConstTensorView& a, const ConstTensorView& b) {
  return a.dtype == b.dtype && a.shape == b.shape;
}

// Whether two tensors hold the same bytes, by their content hashes when both
// are known (the bytes are compared before the call, see SameFilterBytes).
bool SameContent(const ConstTensorView& a, const ConstTensorView& b, std::optional<uint64_t> hash_a,
                 std::optional<uint64_t> hash_b) {
  if (!SameShape(a, b)) return false;
  if (a.data == b.data) return true;
  if (hash_a && hash_b) return *hash_a == *hash_b;
  return std::memcmp(a.data, b.data, Elements(a.shape) * ItemSize(a.dtype)) == 0;
}

// Whether `job` may join a batch that `lead` leads: the same spec but for
// the batch, the same filters (by content) and the same bias bytes.
bool Compatible(const Job& lead, const Job& job) {
  if (!Batchable(job) || lead.spec.rank != job.spec.rank ||
      lead.spec.result_shape.size() != job.spec.result_shape.size() ||
      WithBatch(lead.spec, 0) != WithBatch(job.spec, 0)) {
    return false;
  }
  const Operands& a = lead.operands;
  const Operands& b = job.operands;
  if (!SameContent(a.filter, b.filter, a.filter_hash, b.filter_hash)) return false;
  if (lead.spec.pointwise_out_channels > 0 &&
      !SameContent(a.pointwise_filter, b.pointwise_filter, a.pointwise_filter_hash,
                   b.pointwise_filter_hash)) {
    return false;
  }
  return !lead.spec.has_bias || SameContent(a.bias, b.bias, std::nullopt, std::nullopt);
}

// Whether the filters of `job` hold the bytes of `lead`'s: the check behind
// equal content hashes, made outside the lock before the call.
bool SameFilterBytes(const Job& lead, const Job& job) {
  const Operands& a = lead.operands;
  const Operands& b = job.operands;
  return SameContent(a.filter, b.filter, std::nullopt, std::nullopt) &&
         (lead.spec.pointwise_out_channels == 0 ||
          SameContent(a.pointwise_filter, b.pointwise_filter, std::nullopt, std::nullopt));
}

uint64_t HashOf(const ConstTensorView& view) {
  return ContentHash(absl::string_view(reinterpret_cast<const char*>(view.data),
                                       Elements(view.shape) * ItemSize(view.dtype)));
}

}  // namespace

Scheduler::Scheduler(int64_t memory_budget_bytes, std::vector<Pool> pools)
    : Scheduler(memory_budget_bytes, std::move(pools), Batching{}) {}

Scheduler::Scheduler(int64_t memory_budget_bytes, std::vector<Pool> pools, Batching batching,
                     double inline_max_flops)
    : memory_budget_bytes_(memory_budget_bytes),
      batching_(std::move(batching)),
      inline_max_flops_(inline_max_flops) {
  for (Pool& pool : pools) {
    auto state = std::make_unique<PoolState>();
    state->backends = std::move(pool.backends);
    state->max_queue = pool.max_queue;
    state->name = std::string(state->backends.front()->Name());
    state->device_id = state->backends.front()->Describe().device_id;
    for (const auto& backend : state->backends) state->idle.push_back(backend.get());
    pools_.push_back(std::move(state));
  }
  for (size_t i = 0; i < pools_.size(); ++i) {
    for (size_t worker = 0; worker < pools_[i]->backends.size(); ++worker) {
      workers_.emplace_back([this, i] { WorkerLoop(i); });
    }
  }
}

Scheduler::~Scheduler() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    stopping_ = true;
    inline_done_.wait(lock, [&] { return inline_runs_ == 0; });
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
  // With batching, jobs are matched by their filters' content hashes:
  // computed here, outside the lock, where the caller did not know them
  // (a backend that caches weights would compute them anyway).
  std::optional<uint64_t> filter_hash = job.operands.filter_hash;
  std::optional<uint64_t> pointwise_hash = job.operands.pointwise_filter_hash;
  if (batching_.max_images > 1 && Batchable(job) && job.spec.batch < batching_.max_images) {
    if (!filter_hash && job.operands.filter.data != nullptr) {
      filter_hash = HashOf(job.operands.filter);
    }
    if (!pointwise_hash && job.spec.pointwise_out_channels > 0 &&
        job.operands.pointwise_filter.data != nullptr) {
      pointwise_hash = HashOf(job.operands.pointwise_filter);
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  absl::StatusOr<int> route = RouteLocked(job);
  if (!route.ok()) return route.status();
  return EnqueueLocked(job, *pools_[*route], filter_hash, pointwise_hash);
}

absl::Status Scheduler::EnqueueLocked(Job& job, PoolState& pool,
                                      std::optional<uint64_t> filter_hash,
                                      std::optional<uint64_t> pointwise_hash) {
  if (stopping_) return absl::UnavailableError("the server is shutting down");
  if (static_cast<int>(pool.queue.size()) >= pool.max_queue) {
    return absl::ResourceExhaustedError(absl::StrCat("the server's queue is full (", pool.max_queue,
                                                     " requests waiting); retry later"));
  }
  if (absl::Status fits = FitsBudgetLocked(job); !fits.ok()) return fits;
  bytes_admitted_ += job.bytes;
  job.operands.filter_hash = filter_hash;
  job.operands.pointwise_filter_hash = pointwise_hash;
  pool.queue.push_back(Queued{std::move(job), Clock::now()});
  WakeWorkersLocked(pool);
  return absl::OkStatus();
}

void Scheduler::WakeWorkersLocked(PoolState& pool, bool all) {
  // A worker gathering a batch waits without a predicate and may take a
  // single notification for a job it cannot batch: then wake them all.
  if (all || pool.gathering > 0) {
    pool.work_available.notify_all();
  } else {
    pool.work_available.notify_one();
  }
}

absl::Status Scheduler::FitsBudgetLocked(const Job& job) const {
  if (bytes_admitted_ + job.bytes <= memory_budget_bytes_) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("the request's ", job.bytes, " bytes would exceed the server's memory budget (",
                   bytes_admitted_, " of ", memory_budget_bytes_, " bytes in use); retry later"));
}

bool Scheduler::WouldBatch(const Job& job, const Backend& backend) const {
  return batching_.max_images > 1 && Batchable(job) && job.spec.batch < batching_.max_images &&
         backend.BatchInvariant(job.spec);
}

absl::Status Scheduler::SubmitOrRun(Job& job) {
  if (inline_max_flops_ <= 0 || InlineCost(job.spec) > inline_max_flops_) return Submit(job);
  std::unique_lock<std::mutex> lock(mutex_);
  absl::StatusOr<int> route = RouteLocked(job);
  if (!route.ok()) return route.status();
  const size_t pool_index = static_cast<size_t>(*route);
  PoolState& pool = *pools_[pool_index];
  if (stopping_ || pool.device_id != kCpuDeviceId || !pool.queue.empty() || pool.idle.empty() ||
      WouldBatch(job, *pool.idle.back())) {
    // With batching on, Submit first learns the filters' hashes, outside the lock.
    if (batching_.max_images > 1) {
      lock.unlock();
      return Submit(job);
    }
    return EnqueueLocked(job, pool, job.operands.filter_hash, job.operands.pointwise_filter_hash);
  }
  if (absl::Status fits = FitsBudgetLocked(job); !fits.ok()) return fits;
  bytes_admitted_ += job.bytes;
  ++pool.running;
  ++inline_runs_;
  Backend& backend = *pool.idle.back();
  pool.idle.pop_back();
  std::vector<Queued> jobs;
  jobs.push_back(Queued{std::move(job), Clock::now()});
  RunLocked(pool_index, backend, jobs, std::chrono::nanoseconds(0), lock);
  pool.idle.push_back(&backend);
  if (!pool.queue.empty()) WakeWorkersLocked(pool);  // a worker may wait for a backend
  if (--inline_runs_ == 0 && stopping_) inline_done_.notify_all();
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
    WakeWorkersLocked(next);
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

bool Scheduler::TakeCompatibleLocked(PoolState& pool, const Backend& backend,
                                     std::vector<Queued>& batch, int64_t& images,
                                     int64_t& extra_bytes) {
  bool took = false;
  for (auto it = pool.queue.begin(); it != pool.queue.end() && images < batching_.max_images;) {
    const Job& lead = batch.front().job;
    const Job& job = it->job;
    const int64_t total = images + job.spec.batch;
    if (total > batching_.max_images || !Compatible(lead, job)) {
      ++it;
      continue;
    }
    const ConvSpec spec = WithBatch(lead.spec, total);
    if (!backend.Computes(spec) || !backend.BatchInvariant(spec)) {
      ++it;
      continue;
    }
    // The concatenated input and result: the first job's share comes with the second job.
    const int64_t extra = (batch.size() == 1 ? BatchBufferBytes(lead) : 0) + BatchBufferBytes(job);
    if (bytes_admitted_ + extra > memory_budget_bytes_) break;
    bytes_admitted_ += extra;
    extra_bytes += extra;
    images = total;
    batch.push_back(std::move(*it));
    it = pool.queue.erase(it);
    ++pool.running;
    took = true;
  }
  return took;
}

void Scheduler::GatherLocked(PoolState& pool, const Backend& backend, std::vector<Queued>& batch,
                             int64_t& extra_bytes, std::unique_lock<std::mutex>& lock) {
  {
    // (`batch` grows below: no reference into it is kept.)
    const Job& lead = batch.front().job;
    if (!Batchable(lead) || lead.spec.batch >= batching_.max_images ||
        !backend.BatchInvariant(lead.spec)) {
      return;
    }
  }
  const std::vector<int>& preferred = batching_.preferred_images;
  auto is_preferred = [&](int64_t images) {
    return std::find(preferred.begin(), preferred.end(), images) != preferred.end();
  };
  int64_t images = batch.front().job.spec.batch;
  const Clock::time_point wait_end = batch.front().admitted + batching_.max_delay;
  while (true) {
    TakeCompatibleLocked(pool, backend, batch, images, extra_bytes);
    if (images >= batching_.max_images || is_preferred(images) || stopping_ || !pool.in_service) {
      break;
    }
    const Clock::time_point now = Clock::now();
    if (now >= wait_end) break;
    // Never hold a job whose deadline falls within the wait.
    const auto system_now = std::chrono::system_clock::now();
    bool deadline_within = false;
    for (const Queued& queued : batch) {
      deadline_within = deadline_within || queued.job.deadline - system_now <= wait_end - now;
    }
    if (deadline_within) break;
    ++pool.gathering;
    pool.work_available.wait_until(lock, wait_end);
    --pool.gathering;
  }
  // Preferred sizes: the longest leading part of the batch that makes one
  // runs; the rest go back to the front of the queue, in their order.
  // (Not on a pool that left service meanwhile: its queue is served no more.)
  if (!preferred.empty() && !is_preferred(images) && batch.size() > 1 && pool.in_service) {
    size_t keep = 0;
    int64_t sum = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      sum += batch[i].job.spec.batch;
      if (is_preferred(sum)) keep = i + 1;
    }
    if (keep > 0 && keep < batch.size()) {
      for (size_t i = batch.size(); i-- > keep;) {
        const int64_t bytes = BatchBufferBytes(batch[i].job);
        bytes_admitted_ -= bytes;
        extra_bytes -= bytes;
        pool.queue.push_front(std::move(batch[i]));
        --pool.running;
      }
      batch.resize(keep);
      if (keep == 1) {  // no batch after all: no buffers
        bytes_admitted_ -= extra_bytes;
        extra_bytes = 0;
      }
      WakeWorkersLocked(pool, /*all=*/true);
    }
  }
}

namespace {

// Runs `jobs` (one, or a batch of compatible jobs) as one Run of `backend`,
// fills in their reports and, when it succeeds, their outputs.
absl::Status RunJobs(Backend& backend, std::vector<Job*>& jobs,
                     std::vector<Clock::time_point>& admitted, std::vector<JobReport>& reports,
                     absl::string_view name, absl::string_view device) {
  reports.assign(jobs.size(), JobReport{});
  absl::Status status;
  Clock::time_point start, end;
  std::string precision;
  if (jobs.size() == 1) {
    Job& job = *jobs.front();
    const TensorView output = job.output(job.spec);
    start = Clock::now();
    status = backend.Run(job.spec, job.operands, output);
    end = Clock::now();
    if (status.ok()) precision = backend.Precision(job.spec);
  } else {
    // One spec for every image; inputs and results concatenated along the batch.
    const Job& lead = *jobs.front();
    int64_t images = 0;
    for (const Job* job : jobs) images += job->spec.batch;
    const ConvSpec spec = WithBatch(lead.spec, images);
    const int64_t item = ItemSize(spec.dtype);
    int64_t input_bytes = 0;
    for (const Job* job : jobs) input_bytes += InputBytes(*job);
    auto input = std::make_unique_for_overwrite<std::byte[]>(static_cast<size_t>(input_bytes));
    int64_t offset = 0;
    for (const Job* job : jobs) {
      const int64_t bytes = InputBytes(*job);
      std::memcpy(input.get() + offset, job->operands.input.data, static_cast<size_t>(bytes));
      offset += bytes;
    }
    Operands operands = lead.operands;
    operands.input.data = input.get();
    operands.input.shape[0] = images;
    auto result = std::make_unique_for_overwrite<std::byte[]>(
        static_cast<size_t>(spec.ResultElements() * item));
    start = Clock::now();
    status = backend.Run(spec, operands, TensorView{spec.dtype, spec.result_shape, result.get()});
    end = Clock::now();
    if (status.ok()) {
      precision = backend.Precision(spec);
      offset = 0;
      for (Job* job : jobs) {
        const int64_t bytes = job->spec.ResultElements() * item;
        const TensorView output = job->output(job->spec);
        std::memcpy(output.data, result.get() + offset, static_cast<size_t>(bytes));
        offset += bytes;
      }
    }
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    reports[i].queued = start - admitted[i];
    reports[i].compute = end - start;
    reports[i].backend = name;
    reports[i].device = device;
    reports[i].precision = precision;
  }
  return status;
}

}  // namespace

void Scheduler::SettleLocked(size_t pool_index, std::vector<Queued>& jobs,
                             const std::vector<JobReport>& reports, absl::Status status, bool ran,
                             std::unique_lock<std::mutex>& lock) {
  PoolState& pool = *pools_[pool_index];
  pool.running -= static_cast<int>(jobs.size());
  std::vector<size_t> finish;  // from the back
  if (ran && absl::IsUnimplemented(status)) {
    // From the back, each to the front of its new pool: they keep their order.
    for (size_t i = jobs.size(); i-- > 0;) {
      if (!HandOnLocked(jobs[i], pool_index, /*device_lost=*/false)) finish.push_back(i);
    }
  } else if (ran && absl::IsUnavailable(status)) {
    // The device is lost: this pool leaves service, its jobs go elsewhere.
    std::vector<Queued> stranded;
    const bool lost_now = TakeOutOfServiceLocked(pool_index, status, stranded);
    const absl::Status out_of_service =
        OutOfService(pool.name, pool.device_id, pool.out_of_service_reason);
    for (size_t i = jobs.size(); i-- > 0;) {
      if (!HandOnLocked(jobs[i], pool_index, /*device_lost=*/true)) finish.push_back(i);
    }
    if (lost_now) {
      lock.unlock();
      spdlog::error(
          "worker pool {} on {} is out of service for good: {}; its requests go to the other "
          "pools",
          pool.name, pool.device_id, std::string(status.message()));
      lock.lock();
    }
    FailJobs(stranded, out_of_service, lock);
    status = out_of_service;
  } else {
    for (size_t i = jobs.size(); i-- > 0;) finish.push_back(i);
  }
  if (finish.size() < jobs.size()) NotifyWaiters(lock);  // their waiters retry elsewhere
  if (finish.empty()) return;
  lock.unlock();
  for (auto it = finish.rbegin(); it != finish.rend(); ++it) {
    jobs[*it].job.done(status, reports[*it]);
  }
  lock.lock();
  for (size_t i : finish) bytes_admitted_ -= jobs[i].job.bytes;
  NotifyWaiters(lock);
}

void Scheduler::RunLocked(size_t pool_index, Backend& backend, std::vector<Queued>& batch,
                          std::chrono::nanoseconds waited, std::unique_lock<std::mutex>& lock) {
  const PoolState& pool = *pools_[pool_index];
  lock.unlock();
  // Outside the lock: drop the jobs no longer wanted; the others run
  // together, except any whose filters' bytes turn out to differ from the
  // first's (equal hashes of different bytes), which run alone after.
  std::vector<std::vector<Queued>> groups;
  std::vector<std::pair<Queued, absl::Status>> dropped;
  for (Queued& queued : batch) {
    absl::Status wanted = CheckStillWanted(queued.job);
    if (!wanted.ok()) {
      dropped.emplace_back(std::move(queued), std::move(wanted));
    } else if (groups.empty() || SameFilterBytes(groups.front().front().job, queued.job)) {
      if (groups.empty()) groups.emplace_back();
      groups.front().push_back(std::move(queued));
    } else {
      groups.emplace_back().push_back(std::move(queued));
    }
  }
  lock.lock();
  for (auto& [queued, why] : dropped) {
    std::vector<Queued> one;
    one.push_back(std::move(queued));
    SettleLocked(pool_index, one, {JobReport{}}, why, /*ran=*/false, lock);
  }
  for (std::vector<Queued>& group : groups) {
    lock.unlock();
    std::vector<Job*> jobs;
    std::vector<Clock::time_point> admitted;
    for (Queued& queued : group) {
      jobs.push_back(&queued.job);
      admitted.push_back(queued.admitted);
    }
    std::vector<JobReport> reports;
    const absl::Status status =
        RunJobs(backend, jobs, admitted, reports, pool.name, pool.device_id);
    if (batching_.observe) batching_.observe(static_cast<int>(group.size()), waited);
    if (group.size() > 1 && !status.ok() && !absl::IsUnavailable(status)) {
      // A batch that failed (its backend declined the larger spec, or ran
      // out of memory) runs again job by job: batching changes no outcome.
      for (Queued& queued : group) {
        std::vector<Job*> one = {&queued.job};
        std::vector<Clock::time_point> one_admitted = {queued.admitted};
        std::vector<JobReport> report;
        const absl::Status alone =
            RunJobs(backend, one, one_admitted, report, pool.name, pool.device_id);
        std::vector<Queued> settled;
        settled.push_back(std::move(queued));
        lock.lock();
        SettleLocked(pool_index, settled, report, alone, /*ran=*/true, lock);
        lock.unlock();
      }
      lock.lock();
      continue;
    }
    lock.lock();
    SettleLocked(pool_index, group, reports, status, /*ran=*/true, lock);
  }
}

void Scheduler::WorkerLoop(size_t pool_index) {
  PoolState& pool = *pools_[pool_index];
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    pool.work_available.wait(lock, [&] {
      return !pool.in_service || (!pool.queue.empty() && !pool.idle.empty()) ||
             (stopping_ && pool.queue.empty());
    });
    // Out of service (its jobs went elsewhere), or stopping with nothing left to do.
    if (!pool.in_service || pool.queue.empty()) return;
    Backend& backend = *pool.idle.back();
    pool.idle.pop_back();
    std::vector<Queued> batch;
    batch.push_back(std::move(pool.queue.front()));
    pool.queue.pop_front();
    ++pool.running;
    // Room appears when a job leaves the queue and again when it releases its bytes.
    NotifyWaiters(lock);
    const Clock::time_point taken = Clock::now();
    int64_t extra_bytes = 0;  // the batch's buffers, counted against the budget
    if (batching_.max_images > 1) {
      GatherLocked(pool, backend, batch, extra_bytes, lock);
      if (batch.size() > 1) NotifyWaiters(lock);
    }
    RunLocked(pool_index, backend, batch, Clock::now() - taken, lock);
    pool.idle.push_back(&backend);
    if (extra_bytes > 0) {
      bytes_admitted_ -= extra_bytes;
      NotifyWaiters(lock);
    }
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
                                .max_queue = pool.max_queue,
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
