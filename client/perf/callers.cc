#include "client/perf/callers.h"

#include <chrono>
#include <cstdint>

#include "grpcpp/grpcpp.h"

namespace convserve::perf {
namespace {

class UnaryCaller final : public Caller {
 public:
  UnaryCaller(Stubs& stubs, const v1::ConvRequest& request, int timeout_ms)
      : stubs_(stubs), request_(request), timeout_ms_(timeout_ms) {}
  int Call() override {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms_));
    v1::ConvResponse response;
    return stubs_.conv->Conv(&context, request_, &response).error_code();
  }

 private:
  Stubs& stubs_;
  const v1::ConvRequest& request_;
  const int timeout_ms_;
};

class EchoCaller final : public Caller {
 public:
  EchoCaller(Stubs& stubs, const v1::EchoRequest& request, int timeout_ms)
      : stubs_(stubs), request_(request), timeout_ms_(timeout_ms) {}
  int Call() override {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms_));
    v1::EchoResponse response;
    return stubs_.echo->Echo(&context, request_, &response).error_code();
  }

 private:
  Stubs& stubs_;
  const v1::EchoRequest& request_;
  const int timeout_ms_;
};

// One ConvStream with one request in flight; a broken stream is reopened on
// the next call.
class StreamCaller final : public Caller {
 public:
  StreamCaller(Stubs& stubs, const v1::ConvRequest& request) : stubs_(stubs), request_(request) {
    Open();
  }
  ~StreamCaller() override { Close(); }
  int Call() override {
    if (!stream_) Open();
    request_.set_id(std::to_string(next_id_++));
    v1::ConvResponse response;
    if (!stream_->Write(request_) || !stream_->Read(&response)) {
      const int code = Close();
      return code == 0 ? grpc::StatusCode::UNAVAILABLE : code;
    }
    if (response.has_error()) return response.error().code() == 0 ? 2 : response.error().code();
    return 0;
  }

 private:
  void Open() {
    context_ = std::make_unique<grpc::ClientContext>();
    stream_ = stubs_.conv->ConvStream(context_.get());
  }
  int Close() {
    if (!stream_) return 0;
    stream_->WritesDone();
    v1::ConvResponse ignored;
    while (stream_->Read(&ignored)) {
    }
    const int code = stream_->Finish().error_code();
    stream_.reset();
    context_.reset();
    return code;
  }

  Stubs& stubs_;
  v1::ConvRequest request_;
  int64_t next_id_ = 0;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ConvRequest, v1::ConvResponse>> stream_;
};

}  // namespace

CallerFactory MakeCallerFactory(const std::string& mode, std::vector<Stubs>& stubs,
                                const v1::ConvRequest& request, const v1::EchoRequest& echo_request,
                                int timeout_ms) {
  Stubs* const all = stubs.data();
  const size_t count = stubs.size();
  if (mode == "stream") {
    return [=, &request](int slot) -> std::unique_ptr<Caller> {
      return std::make_unique<StreamCaller>(all[slot % count], request);
    };
  }
  if (mode == "echo") {
    return [=, &echo_request](int slot) -> std::unique_ptr<Caller> {
      return std::make_unique<EchoCaller>(all[slot % count], echo_request, timeout_ms);
    };
  }
  return [=, &request](int slot) -> std::unique_ptr<Caller> {
    return std::make_unique<UnaryCaller>(all[slot % count], request, timeout_ms);
  };
}

}  // namespace convserve::perf
