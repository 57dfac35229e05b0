// The scheduler: worker pools, one per backend kind, each with a bounded
// queue, under one memory budget. Admission is immediate: a job is queued or
// refused at once.
//
// Ownership: the scheduler owns its pools' backends and every job it admits.
// Threading: each worker is one thread owning one Backend instance, so a
// backend never runs on two threads at once. Submit, NotifyWhenRoom and the
// accessors are thread-safe; job callbacks run on worker threads, never under
// the scheduler's lock, so they may call Submit.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
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
    std::string backend;
    int workers = 0;
    int queue_depth = 0;
    int running = 0;
  };

  // Starts one worker thread per backend of every pool. Routing tries the
  // pools in this order. `memory_budget_bytes` bounds the Job::bytes of all
  // admitted jobs, over every pool.
  Scheduler(int64_t memory_budget_bytes, std::vector<Pool> pools);
  // Runs (or drops, per their deadline and cancellation) every admitted job,
  // then joins the workers.
  ~Scheduler();

  // The pool `job` runs on: the one whose backend is job.backend if that is
  // set, else the first whose backend computes job.spec. NOT_FOUND for a
  // backend no pool runs; UNIMPLEMENTED when no pool computes the spec.
  // A backend that declines a job at run time (Run returns UNIMPLEMENTED)
  // hands it, still admitted, to the next pool that computes it.
  absl::StatusOr<int> Route(const Job& job) const;

  // Routes `job` and admits it (moving from it) or refuses it at once,
  // leaving it untouched: RESOURCE_EXHAUSTED when its pool's queue is full or
  // its bytes would exceed the memory budget, UNAVAILABLE once stopping, and
  // Route's errors.
  absl::Status Submit(Job& job);

  // What a job needs to be admitted: room in its pool's queue and its bytes
  // under the budget. pool < 0: the job cannot be routed.
  struct Room {
    int pool = -1;
    int64_t bytes = 0;
  };
  Room RoomFor(const Job& job) const;
  // Calls `callback` once, on some thread, when `room` may be free: at once
  // if it is now (or pool < 0), else after some job leaves a queue or
  // finishes. The caller then retries Submit (others may take the room).
  void NotifyWhenRoom(Room room, std::function<void()> callback);

  // Totals over every pool.
  int queue_depth() const;
  int running() const;
  int64_t bytes_admitted() const;
  int workers() const;
  std::vector<PoolStatus> pool_status() const;
  // What each pool's backend says of itself, in routing order.
  std::vector<BackendInfo> DescribeBackends() const;

 private:
  struct Queued {
    Job job;
    std::chrono::steady_clock::time_point admitted;
  };
  struct PoolState {
    std::vector<std::unique_ptr<Backend>> backends;
    int max_queue = 0;
    std::condition_variable work_available;
    std::deque<Queued> queue;  // guarded by Scheduler::mutex_
    int running = 0;           // guarded by Scheduler::mutex_
  };
  bool HasRoomLocked(const PoolState& pool, int64_t bytes) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void WorkerLoop(size_t pool_index, Backend& backend);
  // Moves a job whose backend declined it at run time (UNIMPLEMENTED) to the
  // front of the next pool after `from` that computes it; false if none does
  // or the job asked for its backend by name.
  bool HandOnLocked(Queued& queued, size_t from) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Takes the room waiters and calls them with the lock released.
  void NotifyWaiters(std::unique_lock<std::mutex>& lock);

  const int64_t memory_budget_bytes_;
  // Fixed at construction; their queues and counters are guarded by mutex_.
  std::vector<std::unique_ptr<PoolState>> pools_;
  mutable std::mutex mutex_;
  std::vector<std::function<void()>> room_waiters_ ABSL_GUARDED_BY(mutex_);
  int64_t bytes_admitted_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace convserve::server
