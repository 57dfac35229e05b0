// The scheduler: worker pools, each of one backend kind with a bounded queue,
// under one memory budget. Admission is immediate: a job is queued or refused
// at once.
//
// Groups: pools of the same backend name (one per GPU: cuda on cuda:0, cuda on
// cuda:1) form a group; a job routed to a group goes to the member in service
// with the least load (queued plus running).
//
// Out of service: a backend whose Run returns UNAVAILABLE has lost its device
// (core/backend.h). Its pool leaves service for good: its reason is kept and
// logged once, its workers leave their loops, and its jobs (the one that failed
// and those queued) move to the next pool of another backend that computes
// them, or fail with UNAVAILABLE if they asked for their backend or pool. The
// process carries on.
//
// Dynamic batching (off unless Batching::max_images > 1): a worker that takes
// a job also takes the jobs queued in its pool that are batch-compatible with
// it (the same spec apart from the batch, whose only batch dimension is the
// first; the same filter, pointwise filter and bias bytes), up to max_images
// images in all, and may wait up to max_delay after the first job's admission
// for more, never while a deadline of theirs falls within the wait. It runs
// them as one kernel call on their inputs concatenated along the batch
// dimension and splits the result back; each request's reply has the batch's
// compute time and its own queue time (to the start of that call). It
// batches only where the backend says each image's bytes do not depend on
// the batch (Backend::BatchInvariant), so a result's bytes never change. The
// concatenated input and result count against the memory budget while the
// call runs; a batch that would exceed it is not formed. A batch that fails
// (say, its backend declines the larger spec) runs again job by job; one
// whose device is lost is handed on job by job as one job is.
//
// Small jobs on the caller's thread (SubmitOrRun; off unless inline_max_flops
// > 0): a job of at most inline_max_flops (its FLOPs, but at least one per
// element it reads and writes), routed to a CPU pool with nothing
// queued and an idle backend, that batching would not hold, runs on the
// thread that submits it, with that backend, instead of being handed to a
// worker thread and its result back: for a tiny convolution those two
// handoffs cost more than the compute. Its result, report and errors are
// the ones a worker would give; meanwhile the pool has one worker fewer, so
// no more runs compute at once than it has backends (a multi-threaded CPU
// backend forms its thread team, e.g. oneDNN's OpenMP team, on that thread).
//
// Ownership: the scheduler owns its pools' backends and every job it admits.
// Threading: a pool has one worker thread per backend; a worker, or a caller
// of SubmitOrRun, takes an idle backend for each run and gives it back, so a
// backend never runs on two threads at once (CPU backends may run on any
// thread; GPU pools never run inline). Submit, SubmitOrRun, NotifyWhenRoom
// and the accessors are thread-safe; job callbacks run on worker threads (or
// SubmitOrRun's caller), never under the scheduler's lock, so they may call
// Submit.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/backend.h"
#include "server/job.h"

namespace convserve::server {

class Scheduler {
 public:
  // Workers of one backend kind and their queue.
  struct Pool {
    std::vector<std::unique_ptr<Backend>> backends;  // one worker each, all of one kind
    int max_queue = 64;                              // jobs admitted but not running
  };
  // What a pool is doing, for metrics and GetServerInfo.
  struct PoolStatus {
    std::string backend = {};
    std::string device_id = {};  // its first backend's BackendInfo::device_id: "cpu", "cuda:0"
    int workers = 0;
    int queue_depth = 0;
    int max_queue = 0;  // the queue's capacity (Pool::max_queue)
    int running = 0;
    bool in_service = true;
    std::string out_of_service_reason = {};  // once out of service: the backend's message
    int64_t device_bytes = 0;                // Backend::DeviceBytes summed over its workers
  };

  // Dynamic batching settings (see above).
  struct Batching {
    // Images (the sum of the jobs' spec.batch) one kernel call may take; 1: off.
    int max_images = 1;
    // How long after its admission a batch's first job may wait for more
    // compatible jobs while the batch has fewer than max_images images (or
    // none of preferred_images); 0: only the jobs already queued.
    std::chrono::microseconds max_delay{0};
    // Batch sizes, in images, to prefer: a batch that reaches one stops
    // waiting, and once the wait is over a batch that is not one runs the
    // longest of its leading jobs that make one (the rest stay queued, first).
    std::vector<int> preferred_images;
    // Called on a worker thread, outside the scheduler's lock, once per kernel
    // call while batching is on: the requests it computed together and how
    // long the worker waited for company. May be empty.
    std::function<void(int requests, std::chrono::nanoseconds wait)> observe;
  };

  // Starts one worker thread per backend of every pool. Routing tries the
  // pools in this order. `memory_budget_bytes` bounds the Job::bytes of all
  // admitted jobs (and of batches' buffers), over every pool. Jobs of at most
  // `inline_max_flops` (ConvSpec::Flops) may run inline (see above); 0: none.
  Scheduler(int64_t memory_budget_bytes, std::vector<Pool> pools, Batching batching,
            double inline_max_flops = 0);
  // Without batching or inline runs.
  Scheduler(int64_t memory_budget_bytes, std::vector<Pool> pools);
  // Waits for the inline runs, runs (or drops, per their deadline and
  // cancellation) every admitted job, then joins the workers.
  ~Scheduler();

  // The pool `job` would run on now: job.pool if that is set; else, among
  // the pools in service, the least loaded of those whose backend is
  // job.backend if that is set, else of the first group (in routing order)
  // whose backend computes job.spec. NOT_FOUND for a backend or pool index
  // this scheduler does not run; UNAVAILABLE when the pool, or every pool of
  // the backend, asked for is out of service, or when only pools out of
  // service compute the spec; UNIMPLEMENTED when no pool computes it.
  // A backend that declines a job at run time (Run returns UNIMPLEMENTED)
  // hands it, still admitted, to the next pool of another backend that
  // computes it (not to a sibling of its group).
  absl::StatusOr<int> Route(const Job& job) const;

  // Routes `job` and admits it (moving from it) or refuses it at once,
  // leaving it untouched: RESOURCE_EXHAUSTED when its pool's queue is full or
  // its bytes would exceed the memory budget, UNAVAILABLE once stopping, and
  // Route's errors.
  absl::Status Submit(Job& job);
  // Submit, or for a job that may run inline (see above) admits it and runs
  // it on this thread, where its callbacks run before this returns (unless
  // its backend declines it: it then goes on to another pool's queue).
  // Refuses as Submit does.
  absl::Status SubmitOrRun(Job& job);

  // What a job needs to be admitted: room in its pool's queue and its bytes
  // under the budget. pool < 0: the job cannot be routed.
  struct Room {
    int pool = -1;
    int64_t bytes = 0;
  };
  Room RoomFor(const Job& job) const;
  // Calls `callback` once, on some thread, when `room` may be free: at once
  // if it is now (or pool < 0, or the pool is out of service), else after
  // some job leaves a queue or finishes, or a pool leaves service. The caller
  // then retries Submit (others may take the room, or route it elsewhere).
  void NotifyWhenRoom(Room room, std::function<void()> callback);

  // Takes pool `index` out of service for good because of `reason` (say,
  // its device failed the warm-up), as a lost device does: its queued jobs
  // move to other pools or fail with UNAVAILABLE, its workers leave.
  void TakeOutOfService(int index, const absl::Status& reason);

  // Totals over every pool (workers: over the pools in service).
  int queue_depth() const;
  int running() const;
  int64_t bytes_admitted() const;
  int workers() const;
  std::vector<PoolStatus> pool_status() const;
  // What each pool's backend says of itself, in routing order (one entry per
  // pool, so a backend with a pool per GPU appears once per GPU).
  std::vector<BackendInfo> DescribeBackends() const;

 private:
  struct Queued {
    Job job;
    std::chrono::steady_clock::time_point admitted;
  };
  struct PoolState {
    std::vector<std::unique_ptr<Backend>> backends;
    int max_queue = 0;
    std::string name;       // the backends' Name(), fixed
    std::string device_id;  // the first backend's Describe().device_id, fixed
    std::condition_variable work_available;
    std::vector<Backend*> idle;         // backends no thread runs; guarded by mutex_
    std::deque<Queued> queue;           // guarded by Scheduler::mutex_
    int running = 0;                    // guarded by Scheduler::mutex_
    int gathering = 0;                  // workers waiting for company; guarded by mutex_
    bool in_service = true;             // guarded by Scheduler::mutex_; never true again
    std::string out_of_service_reason;  // guarded by Scheduler::mutex_
  };
  absl::StatusOr<int> RouteLocked(const Job& job) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The backends' names, each once, in routing order, for messages.
  std::string PoolNamesLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The pool in service of the same backend as pools_[first], at index
  // `first` or later, that computes `spec` with the least load (queued plus
  // running), preferring pools whose queue has room; -1 if none.
  int LeastLoadedLocked(size_t first, const ConvSpec& spec) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  bool HasRoomLocked(const PoolState& pool, int64_t bytes) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Admits `job` (moving from it, with the filter hashes given) into the
  // queue of `pool`, or refuses it untouched as Submit says.
  absl::Status EnqueueLocked(Job& job, PoolState& pool, std::optional<uint64_t> filter_hash,
                             std::optional<uint64_t> pointwise_hash)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // RESOURCE_EXHAUSTED if `job`'s bytes would exceed the memory budget.
  absl::Status FitsBudgetLocked(const Job& job) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Whether batching may hold `job` on `backend` for company.
  bool WouldBatch(const Job& job, const Backend& backend) const;
  // Wakes one worker of `pool` for a job queued or a backend given back, or
  // all of them when `all` or when one may be gathering a batch.
  void WakeWorkersLocked(PoolState& pool, bool all = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void WorkerLoop(size_t pool_index);
  // Runs `batch` (taken by this thread with `backend`, idle no more) on pool
  // `pool_index` and settles it: drops the jobs no longer wanted, runs the
  // rest as one call per filter content, and settles each call. `waited` is
  // the batch's wait for company. Releases the lock while it runs.
  void RunLocked(size_t pool_index, Backend& backend, std::vector<Queued>& batch,
                 std::chrono::nanoseconds waited, std::unique_lock<std::mutex>& lock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Settles `jobs`, which ran together with `status` (or, when !ran, were
  // dropped unrun with it): hands on those a backend declined or whose
  // device was lost, finishes the others and releases their bytes. Releases
  // the lock while callbacks run.
  void SettleLocked(size_t pool_index, std::vector<Queued>& jobs,
                    const std::vector<JobReport>& reports, absl::Status status, bool ran,
                    std::unique_lock<std::mutex>& lock) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Batching: adds to `batch` (its first job taken from the pool's queue)
  // the compatible jobs queued, waiting for more as Batching says, and
  // reserves the bytes of its concatenated buffers in `extra_bytes`. May
  // release the lock while waiting.
  void GatherLocked(PoolState& pool, const Backend& backend, std::vector<Queued>& batch,
                    int64_t& extra_bytes, std::unique_lock<std::mutex>& lock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Takes from the pool's queue, in order, the jobs that may join `batch`
  // (and fit in the budget and max_images). True if it took any.
  bool TakeCompatibleLocked(PoolState& pool, const Backend& backend, std::vector<Queued>& batch,
                            int64_t& images, int64_t& extra_bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The index of the first pool of pools_[index]'s backend.
  size_t FirstOfBackendLocked(size_t index) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Moves a job that pool `from` cannot run to the front of another pool's
  // queue: when `device_lost`, the least loaded sibling in service (another
  // device of the same backend) that computes it, if any; else (its backend
  // declined it, or no sibling can take it) the least loaded pool of the
  // next backend after `from`, by another name, that computes it. False if
  // none does, the job asked for its pool (or for its backend, and no
  // sibling took it), or the scheduler is stopping.
  bool HandOnLocked(Queued& queued, size_t from, bool device_lost)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Takes pool `index` out of service for `status` (its device is lost):
  // hands its queued jobs on, adds those that cannot go to `stranded`, and
  // wakes its workers. False if it was already out of service.
  bool TakeOutOfServiceLocked(size_t index, const absl::Status& status,
                              std::vector<Queued>& stranded) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Fails `jobs` with `status` (lock released while their callbacks run),
  // releases their bytes and notifies the room waiters.
  void FailJobs(std::vector<Queued>& jobs, const absl::Status& status,
                std::unique_lock<std::mutex>& lock);
  // Takes the room waiters and calls them with the lock released.
  void NotifyWaiters(std::unique_lock<std::mutex>& lock);

  const int64_t memory_budget_bytes_;
  const Batching batching_;
  const double inline_max_flops_;
  // Fixed at construction; their queues and counters are guarded by mutex_.
  std::vector<std::unique_ptr<PoolState>> pools_;
  mutable std::mutex mutex_;
  std::vector<std::function<void()>> room_waiters_ ABSL_GUARDED_BY(mutex_);
  int64_t bytes_admitted_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  int inline_runs_ ABSL_GUARDED_BY(mutex_) = 0;  // SubmitOrRun calls running a job
  std::condition_variable inline_done_;          // inline_runs_ fell to 0 while stopping
  std::vector<std::thread> workers_;
};

}  // namespace convserve::server
