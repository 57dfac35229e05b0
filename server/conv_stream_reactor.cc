#include "server/conv_stream_reactor.h"

namespace convserve::server {

namespace v1 = ::convserve::v1;

ConvStreamReactor::ConvStreamReactor(Deps deps, grpc::CallbackServerContext* context)
    : deps_(deps), context_(context) {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    actions = NextActionsLocked();
  }
  Perform(actions);
}

ConvStreamReactor::Actions ConvStreamReactor::NextActionsLocked() {
  Actions actions;
  if (!writing_ && !replies_.empty() && !cancelled_) {
    writing_ = true;
    actions.write = replies_.front().get();
  }
  const int window = deps_.stream_window;
  if (!reading_ && !reads_done_ && !cancelled_ && !waiting_ &&
      in_flight_ + static_cast<int>(replies_.size()) < window) {
    reading_ = true;
    actions.read = true;
  }
  if (!finished_ && (reads_done_ || cancelled_) && in_flight_ == 0 && !waiting_ &&
      !room_callback_pending_ && replies_.empty() && !writing_ && !reading_) {
    finished_ = true;
    actions.finish = cancelled_ ? grpc::Status::CANCELLED : grpc::Status::OK;
  }
  return actions;
}

void ConvStreamReactor::Perform(const Actions& actions) {
  if (actions.write) StartWrite(actions.write);
  if (actions.read) StartRead(&incoming_);
  if (actions.finish) Finish(*actions.finish);
}

void ConvStreamReactor::OnReadDone(bool ok) {
  if (ok) {
    auto request = std::make_shared<const v1::ConvRequest>(std::move(incoming_));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++in_flight_;
    }
    Handle(std::move(request));
  }
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    reading_ = false;
    if (!ok) reads_done_ = true;
    actions = NextActionsLocked();
  }
  Perform(actions);
}

void ConvStreamReactor::Handle(std::shared_ptr<const v1::ConvRequest> request) {
  auto response = std::make_shared<v1::ConvResponse>();
  response->set_id(request->id());
  // The request stays alive until its reply is queued.
  ConvPipeline::Finish finish = [this, request, response](const absl::Status& status) {
    Reply(response, status);
  };
  if (deps_.ledger->draining()) {
    deps_.pipeline->Refuse(*request, absl::UnavailableError("the server is shutting down"),
                           deps_.principal, deps_.trace, finish);
    return;
  }
  // The stream's deadline is the call's; only its cancellation drops a request.
  ConvPipeline::Controls controls;
  controls.principal = deps_.principal;
  controls.trace = deps_.trace;
  controls.cancelled = [context = context_]() -> absl::Status {
    if (context->IsCancelled()) return absl::CancelledError("the stream was cancelled");
    return absl::OkStatus();
  };
  absl::StatusOr<Job> job =
      deps_.pipeline->Prepare(*request, response.get(), std::move(controls), finish);
  if (!job.ok()) {
    finish(job.status());
    return;
  }
  Admit(std::move(*job));
}

// A small job may run right here, on the thread that read it
// (Scheduler::SubmitOrRun), and its reply takes the lock, so the scheduler is
// asked without it. Parking still pauses reads before the next one: this runs
// inside OnReadDone, whose read is still outstanding (reading_), so no read
// starts until OnReadDone has seen waiting_.
void ConvStreamReactor::Admit(Job job) {
  const absl::Status status = deps_.scheduler->SubmitOrRun(job);
  if (status.ok()) return;
  if (!absl::IsResourceExhausted(status)) {
    job.done(status, {});  // e.g. the scheduler is stopping
    return;
  }
  Scheduler::Room room = deps_.scheduler->RoomFor(job);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    waiting_ = std::move(job);
    room_callback_pending_ = true;
  }
  deps_.scheduler->NotifyWhenRoom(room, [this] { RetryWaiting(); });
}

void ConvStreamReactor::RetryWaiting() {
  std::optional<Job> dropped;
  absl::Status why;
  std::optional<Scheduler::Room> park_again;  // what to wait for, when the job is parked again
  {
    std::lock_guard<std::mutex> lock(mutex_);
    room_callback_pending_ = false;
    if (waiting_ && cancelled_) {
      why = absl::CancelledError("the stream was cancelled");
    } else if (waiting_) {
      why = deps_.scheduler->Submit(*waiting_);
      if (why.ok()) {
        waiting_.reset();
      } else if (absl::IsResourceExhausted(why)) {
        room_callback_pending_ = true;
        park_again = deps_.scheduler->RoomFor(*waiting_);
      }
    }
    if (waiting_ && !why.ok() && !park_again) dropped.swap(waiting_);
  }
  if (dropped) dropped->done(why, {});
  if (park_again) {
    deps_.scheduler->NotifyWhenRoom(*park_again, [this] { RetryWaiting(); });
    return;
  }
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    actions = NextActionsLocked();
  }
  Perform(actions);
}

void ConvStreamReactor::Reply(std::shared_ptr<v1::ConvResponse> response,
                              const absl::Status& status) {
  if (!status.ok()) {
    response->clear_output();
    response->mutable_error()->set_code(static_cast<int>(status.code()));
    response->mutable_error()->set_message(std::string(status.message()));
  }
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --in_flight_;
    if (!cancelled_) replies_.push_back(std::move(response));
    actions = NextActionsLocked();
  }
  Perform(actions);
}

void ConvStreamReactor::OnWriteDone(bool ok) {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    writing_ = false;
    replies_.pop_front();
    if (!ok) {  // the client is gone: nothing more can be written
      cancelled_ = true;
      replies_.clear();
    }
    actions = NextActionsLocked();
  }
  Perform(actions);
}

void ConvStreamReactor::OnCancel() {
  std::optional<Job> waiting;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancelled_ = true;
    if (!writing_) replies_.clear();
    waiting.swap(waiting_);
  }
  if (waiting) waiting->done(absl::CancelledError("the stream was cancelled"), {});
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    actions = NextActionsLocked();
  }
  Perform(actions);
}

void ConvStreamReactor::OnDone() {
  deps_.ledger->StreamClosed();
  deps_.ledger->CallEnded();
  delete this;
}

}  // namespace convserve::server
