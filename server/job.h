// A Job: one request's convolution as data the scheduler can read (its spec,
// operands, deadline and the pool it must run on), plus the callbacks that
// tie it back to the call it came from.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/backend.h"
#include "core/conv_spec.h"

namespace convserve::server {

// How a job went, handed to its completion callback. The views stay valid
// as long as the scheduler that ran the job.
struct JobReport {
  std::chrono::nanoseconds queued{0};   // from admission to a worker taking it
  std::chrono::nanoseconds compute{0};  // inside Backend::Run
  absl::string_view backend;            // the backend that ran it; empty if none did
  absl::string_view device;             // where: "cpu", "cuda:0"; empty if none ran it
  std::string precision;                // Backend::Precision; empty if none ran it
};

// Owned by whoever holds it: the caller until Scheduler::Submit admits it,
// then the scheduler, which calls exactly one of its callbacks' paths once on
// a worker thread: `output` then `done` when it runs, or only `done` with the
// reason when it is dropped unrun. Operand views, and what the callbacks
// capture, must stay valid until `done` returns.
struct Job {
  ConvSpec spec;
  Operands operands;
  // Tensor bytes the request holds while admitted (inputs, result,
  // intermediates); counted against the scheduler's memory budget.
  int64_t bytes = 0;
  // A backend name from the registry to run on (the least loaded of its
  // pools in service); empty: the first pool group whose backend computes
  // `spec`.
  std::string backend;
  // The index of the pool (Scheduler::pool_status order) to run on, whatever
  // its backend computes, never handed to another (the warm-up runs one job
  // on each pool); -1: routed by `backend` or `spec`.
  int pool = -1;
  // After this the job is dropped unrun with DEADLINE_EXCEEDED.
  std::chrono::system_clock::time_point deadline = std::chrono::system_clock::time_point::max();
  // Checked just before running, after the deadline: a non-OK status (e.g. the
  // call was cancelled) drops the job with it. May be empty.
  std::function<absl::Status()> cancelled;
  // Sizes the result of `spec` (this job's) and returns where Run writes it.
  std::function<TensorView(const ConvSpec& spec)> output;
  // The outcome: OK after a successful Run, else why it failed or was dropped.
  std::function<void(const absl::Status& status, const JobReport& report)> done;
};

}  // namespace convserve::server
