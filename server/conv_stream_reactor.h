// One ConvStream call: many requests in flight, replies written as they
// complete (each carrying its request's id), failures as replies with `error`.
#pragma once

#include <deque>
#include <memory>
#include <mutex>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "convserve/v1/convserve.grpc.pb.h"
#include "server/call_ledger.h"
#include "server/conv_call.h"
#include "server/scheduler.h"
#include "server/trace_parent.h"

namespace convserve::server {

// Reads a request only while the stream has fewer than `stream_window`
// requests in flight or replies unsent, and only while the scheduler has room
// for the last one read (flow control: a fast client cannot make the server
// buffer without bound). Finishes once the client half-closed and every reply
// is written. Deletes itself when gRPC is done with it.
class ConvStreamReactor final
    : public grpc::ServerBidiReactor<convserve::v1::ConvRequest, convserve::v1::ConvResponse> {
 public:
  // What a stream uses; the pointers must outlive it.
  struct Deps {
    const ConvPipeline* pipeline;
    CallLedger* ledger;  // the stream is counted open and started; OnDone closes it
    Scheduler* scheduler;
    int stream_window;
    std::string principal;  // empty without authentication
    // The call's valid `traceparent`: every request of the stream logs it.
    std::optional<TraceParent> trace;
  };
  ConvStreamReactor(Deps deps, grpc::CallbackServerContext* context);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // gRPC operations decided under the lock and started after it is released.
  struct Actions {
    bool read = false;
    const convserve::v1::ConvResponse* write = nullptr;
    std::optional<grpc::Status> finish;
  };
  Actions NextActionsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Perform(const Actions& actions);
  void Handle(std::shared_ptr<const convserve::v1::ConvRequest> request);
  // Submits `job` (a small one may run inline), or parks it in waiting_
  // until the scheduler has room. Called from OnReadDone only.
  void Admit(Job job);
  void RetryWaiting();
  void Reply(std::shared_ptr<convserve::v1::ConvResponse> response, const absl::Status& status);

  const Deps deps_;
  grpc::CallbackServerContext* const context_;
  convserve::v1::ConvRequest incoming_;  // target of the one outstanding read

  std::mutex mutex_;
  bool reading_ ABSL_GUARDED_BY(mutex_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mutex_) = false;  // the client half-closed, or reading failed
  bool cancelled_ ABSL_GUARDED_BY(mutex_) = false;
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  // Requests read whose replies are not queued yet.
  int in_flight_ ABSL_GUARDED_BY(mutex_) = 0;
  // A request waiting for room in the scheduler.
  std::optional<Job> waiting_ ABSL_GUARDED_BY(mutex_);
  // The scheduler will call RetryWaiting.
  bool room_callback_pending_ ABSL_GUARDED_BY(mutex_) = false;
  // Front: being written.
  std::deque<std::shared_ptr<convserve::v1::ConvResponse>> replies_ ABSL_GUARDED_BY(mutex_);
};

// Refuses a stream at once with `status` (e.g. too many streams open).
class RefusedStreamReactor final
    : public grpc::ServerBidiReactor<convserve::v1::ConvRequest, convserve::v1::ConvResponse> {
 public:
  explicit RefusedStreamReactor(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace convserve::server
