// Behaviour of the production features of the server (DESIGN.md section 3):
// every situation of the table and its answer, ConvStream's ordering, errors,
// half-close, flow control and limits, health, reflection, the metrics page,
// the access log's trace context and draining. Servers run in-process on loopback ports; requests
// are made slow on purpose with a conv2d on the reference backend, whose duration is measured at
// run time rather than assumed.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <future>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "convserve/v1/convserve.grpc.pb.h"
#include "core/element_types.h"
#include "core/reference/reference_backend.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "server/server.h"
#include "server/wire.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "tests/service_test_util.h"

namespace convserve::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using namespace service_test;  // NOLINT: the shared test helpers

// ---------------------------------------------------------------------------
// Tensors and requests.

// A 1x3x3x1 input, a 2x2 filter of ones, VALID: 36 + 16 bytes in, 16 out.
v1::ConvRequest SmallConv2D(const std::string& id = "small") {
  v1::ConvRequest request;
  request.set_id(id);
  request.mutable_conv2d()->set_padding(v1::PADDING_VALID);
  *request.mutable_input() =
      MakeTensor(DataType::kFloat32, {1, 3, 3, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  *request.mutable_filter()->mutable_tensor() =
      MakeTensor(DataType::kFloat32, {2, 2, 1, 1}, {1, 1, 1, 1});
  return request;
}
constexpr int64_t kSmallBytesIn = 36 + 16;
constexpr int64_t kSmallBytesOut = 16;

// A conv2d SAME of a 1 x side x side x channels input with a 3x3 filter of
// as many channels out as in.
v1::ConvRequest SquareConv2D(int64_t side, const std::string& id, uint32_t seed = 1,
                             int64_t channels = 16) {
  std::mt19937 rng(seed);
  v1::ConvRequest request;
  request.set_id(id);
  request.mutable_conv2d()->set_padding(v1::PADDING_SAME);
  *request.mutable_input() = RandomTensor(DataType::kFloat32, {1, side, side, channels}, rng);
  *request.mutable_filter()->mutable_tensor() =
      RandomTensor(DataType::kFloat32, {3, 3, channels, channels}, rng);
  return request;
}
// Slow requests have many channels: much work for few bytes.
constexpr int64_t kSlowChannels = 64;

double SecondsToRun(const v1::ConvRequest& request) {
  const FilterStore no_filters(0);
  absl::StatusOr<ParsedRequest> parsed = ParseConvRequest(request, SpecLimits{}, no_filters);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  v1::ConvResponse response;
  ReferenceBackend backend;
  const TensorView out = AllocateOutput(parsed->spec, &response);
  double best = 1e9;
  for (int i = 0; i < 3; ++i) {
    const auto start = Clock::now();
    EXPECT_TRUE(backend.Run(parsed->spec, parsed->operands, out).ok());
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

// The side of a SquareConv2D that the reference backend computes in about
// `target` on this machine, measured once (the time grows with side^2).
int64_t SideFor(milliseconds target) {
  static const double seconds_per_pixel = [] {
    constexpr int64_t kSide = 24;
    return SecondsToRun(SquareConv2D(kSide, "calibrate", 1, kSlowChannels)) / (kSide * kSide);
  }();
  const double pixels = std::chrono::duration<double>(target).count() / seconds_per_pixel;
  return std::clamp<int64_t>(std::llround(std::sqrt(pixels)), 8, 2048);
}

// A request that keeps a reference worker busy for about `target` (longer on
// a loaded machine, which only makes the tests that use it slower).
v1::ConvRequest SlowConv2D(milliseconds target, const std::string& id = "slow") {
  return SquareConv2D(SideFor(target), id, 7, kSlowChannels);
}

// As slow, with a reply of several MiB (a quarter of the channels on four
// times the side: the same work, sixteen times the pixels), which takes a
// while to send after the worker finishes it.
v1::ConvRequest SlowConv2DWithBigReply(milliseconds target, const std::string& id = "big") {
  return SquareConv2D(SideFor(target) * 4, id, 7, kSlowChannels / 4);
}

// ---------------------------------------------------------------------------
// Waiting.

// Polls `done` every millisecond until it holds or `timeout` passes.
template <class Predicate>
bool WaitFor(Predicate done, milliseconds timeout = milliseconds(10000)) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

// The value of the series `series` (name and labels, exactly as rendered) in a
// Prometheus text page, or -1 when the page has no such line.
double SeriesValue(const std::string& page, const std::string& series) {
  const std::string prefix = series + " ";
  size_t pos = 0;
  while (pos < page.size()) {
    size_t end = page.find('\n', pos);
    if (end == std::string::npos) end = page.size();
    if (page.compare(pos, prefix.size(), prefix) == 0) {
      return std::stod(page.substr(pos + prefix.size(), end - pos - prefix.size()));
    }
    pos = end + 1;
  }
  return -1;
}

std::string RequestsSeries(const std::string& code, const std::string& op = "conv2d",
                           const std::string& dtype = "float") {
  return absl::StrCat("convserve_requests_total{op=\"", op, "\",dtype=\"", dtype, "\",code=\"",
                      code, "\"}");
}

// A unary Conv made on the callback API, so that a test can hold several.
struct AsyncConv {
  grpc::ClientContext context;
  v1::ConvRequest request;
  v1::ConvResponse response;
  std::promise<grpc::Status> promise;
  std::shared_future<grpc::Status> status = promise.get_future().share();
  std::atomic<bool> done{false};
  std::atomic<int64_t> done_at_ns{0};  // Clock time of the reply

  // A test that stops early must not free the call under gRPC's feet.
  ~AsyncConv() {
    if (!done) {
      context.TryCancel();
      status.wait_for(std::chrono::seconds(30));
    }
  }

  bool Ready() const { return done.load(); }
  Clock::time_point DoneAt() const {
    return Clock::time_point(std::chrono::nanoseconds(done_at_ns.load()));
  }
  // Waits (bounded) for the reply.
  grpc::Status Wait(milliseconds timeout = milliseconds(30000)) {
    if (status.wait_for(timeout) != std::future_status::ready) {
      ADD_FAILURE() << "call " << request.id() << " did not finish within " << timeout.count()
                    << " ms";
      context.TryCancel();
      return status.get();
    }
    return status.get();
  }
};

std::unique_ptr<AsyncConv> StartConv(v1::ConvService::Stub* stub, v1::ConvRequest request,
                                     milliseconds deadline = milliseconds(60000)) {
  auto call = std::make_unique<AsyncConv>();
  call->request = std::move(request);
  call->context.set_deadline(std::chrono::system_clock::now() + deadline);
  AsyncConv* raw = call.get();
  stub->async()->Conv(&raw->context, &raw->request, &raw->response, [raw](grpc::Status status) {
    raw->done_at_ns = Clock::now().time_since_epoch().count();
    raw->done = true;
    raw->promise.set_value(std::move(status));
  });
  return call;
}

// ---------------------------------------------------------------------------
// The fixture: one server on the reference backend (byte-exact results and
// slow requests on demand), restarted with another config where a test needs.

class BehaviourTest : public ::testing::Test {
 protected:
  static ServerConfig Config(int workers = 1) {
    ServerConfig config;
    config.backend = "reference";
    config.workers = workers;
    config.cuda_devices = "none";  // the CPU pools' behaviour, GPUs or not
    return config;
  }

  void Start(ServerConfig config) {
    config.address = "127.0.0.1:0";
    server_.reset();
    auto server = StartServer(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = LoopbackChannel(server_->port());
    stub_ = v1::ConvService::NewStub(channel_);
  }

  grpc::Status Call(const v1::ConvRequest& request, v1::ConvResponse* response,
                    milliseconds deadline = milliseconds(60000)) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + deadline);
    return stub_->Conv(&context, request, response);
  }

  // Calls `request`, returns the status and how long the call took.
  grpc::Status TimedCall(const v1::ConvRequest& request, double* seconds) {
    v1::ConvResponse response;
    const auto start = Clock::now();
    grpc::Status status = Call(request, &response);
    *seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return status;
  }

  void ExpectServes() {
    v1::ConvResponse response;
    grpc::Status status = Call(SmallConv2D("after"), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(response.output().data() == ComputeInProcess(SmallConv2D()).data());
  }

  const Scheduler& scheduler() { return server_->scheduler(); }
  std::string Page() { return server_->metrics().Render(); }
  double Series(const std::string& series) { return SeriesValue(Page(), series); }

  // Starts `slow` and waits until a worker computes it (nothing queued).
  std::unique_ptr<AsyncConv> StartRunning(v1::ConvRequest slow, int running = 1) {
    auto call = StartConv(stub_.get(), std::move(slow));
    EXPECT_TRUE(WaitFor([&] { return scheduler().running() == running; }))
        << "the slow request never started";
    return call;
  }

  grpc::health::v1::HealthCheckResponse::ServingStatus Health(const std::string& service,
                                                              grpc::Status* status) {
    auto health = grpc::health::v1::Health::NewStub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    *status = health->Check(&context, request, &response);
    return response.status();
  }

  std::unique_ptr<RunningServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ConvService::Stub> stub_;
};

// ---------------------------------------------------------------------------
// 1. The table of DESIGN.md section 3, row by row.

TEST_F(BehaviourTest, InvalidArgumentCarriesTensorFlowsMessageAndField) {
  Start(Config());
  v1::ConvRequest request = SmallConv2D();
  for (int64_t s : {2, 1, 1, 1}) request.mutable_conv2d()->add_strides(s);
  v1::ConvResponse response;
  grpc::Status status = Call(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "Current implementation does not yet support strides in the batch and depth "
            "dimensions. (field: conv2d.strides)");

  v1::ConvRequest short_data = SmallConv2D();
  short_data.mutable_input()->mutable_data()->pop_back();
  status = Call(short_data, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("(field: input.data)"));
  ExpectServes();
}

TEST_F(BehaviourTest, UnknownFilterIdIsNotFound) {
  Start(Config());
  v1::ConvRequest request = SmallConv2D();
  request.mutable_filter()->set_filter_id("no-such-filter");
  v1::ConvResponse response;
  grpc::Status status = Call(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), StartsWith("no filter is registered under id"));
  ExpectServes();
}

TEST_F(BehaviourTest, FullQueueIsResourceExhaustedAtOnce) {
  ServerConfig config = Config(/*workers=*/1);
  config.max_queue = 1;
  Start(config);
  auto running = StartRunning(SlowConv2D(milliseconds(300)));
  auto queued = StartConv(stub_.get(), SmallConv2D("queued"));
  ASSERT_TRUE(WaitFor([&] { return scheduler().queue_depth() == 1; }));

  double seconds = 0;
  grpc::Status refused = TimedCall(SmallConv2D("refused"), &seconds);
  EXPECT_FALSE(running->Ready()) << "the refusal waited for the running request";
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("queue is full"));
  EXPECT_LT(seconds, 0.1);

  // The admitted requests are unaffected.
  EXPECT_TRUE(running->Wait().ok());
  EXPECT_TRUE(queued->Wait().ok());
  EXPECT_EQ(Series(RequestsSeries("RESOURCE_EXHAUSTED")), 1);
  EXPECT_EQ(Series(RequestsSeries("OK")), 2);
}

TEST_F(BehaviourTest, RequestOverTheMemoryBudgetIsResourceExhausted) {
  const v1::ConvRequest slow = SlowConv2D(milliseconds(300));
  // What the slow request holds while admitted: its input and filter, and a
  // result the size of its input (SAME, as many channels out as in).
  const int64_t slow_bytes = 2 * static_cast<int64_t>(slow.input().data().size()) +
                             static_cast<int64_t>(slow.filter().tensor().data().size());
  ServerConfig config = Config(/*workers=*/1);
  config.memory_budget_bytes = slow_bytes + slow_bytes / 2;
  Start(config);

  // Alone, a request larger than the whole budget is refused outright.
  v1::ConvRequest huge = SlowConv2D(milliseconds(700), "huge");  // over 2x the bytes
  v1::ConvResponse response;
  grpc::Status status = Call(huge, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("bytes of tensors"));

  // With the slow request admitted, a second one of its size would exceed the
  // budget: refused at once, although the queue has room.
  auto running = StartRunning(slow);
  EXPECT_EQ(static_cast<int64_t>(scheduler().bytes_admitted()), slow_bytes);
  double seconds = 0;
  status = TimedCall(SlowConv2D(milliseconds(300), "second"), &seconds);
  EXPECT_FALSE(running->Ready());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("memory budget"));
  EXPECT_LT(seconds, 0.1);
  EXPECT_TRUE(running->Wait().ok());
  // Its bytes released, the same request is admitted.
  EXPECT_TRUE(WaitFor([&] { return scheduler().bytes_admitted() == 0; }));
  EXPECT_TRUE(TimedCall(SlowConv2D(milliseconds(300), "third"), &seconds).ok());
}

TEST_F(BehaviourTest, OutputOverMaxOutputElementsIsResourceExhausted) {
  ServerConfig config = Config();
  config.limits.max_output_elements = 3;
  Start(config);
  v1::ConvResponse response;
  grpc::Status status = Call(SmallConv2D(), &response);  // 4 output elements
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("max_output_elements of 3"));
  EXPECT_EQ(scheduler().bytes_admitted(), 0);
}

TEST_F(BehaviourTest, RequestOverMaxRequestBytesIsResourceExhausted) {
  ServerConfig config = Config();
  config.max_request_bytes = kSmallBytesIn + kSmallBytesOut - 1;
  Start(config);
  v1::ConvResponse response;
  grpc::Status status = Call(SmallConv2D(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(),
              HasSubstr(absl::StrCat("needs ", kSmallBytesIn + kSmallBytesOut, " bytes")));
  EXPECT_THAT(status.error_message(), HasSubstr("max_request_mb"));

  config.max_request_bytes = kSmallBytesIn + kSmallBytesOut;  // exactly enough
  Start(config);
  ExpectServes();
}

TEST_F(BehaviourTest, QueuedRequestWhoseDeadlinePassesIsDroppedUnrun) {
  Start(Config(/*workers=*/1));
  auto running = StartRunning(SlowConv2D(milliseconds(300)));
  auto late = StartConv(stub_.get(), SmallConv2D("late"), milliseconds(50));
  EXPECT_EQ(late->Wait().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_FALSE(running->Ready()) << "the slow request was too fast for this test";
  EXPECT_TRUE(running->Wait().ok());
  // The worker reached the late request after its deadline and dropped it:
  // recorded as DEADLINE_EXCEEDED, not as a computed (OK) request.
  ASSERT_TRUE(WaitFor([&] { return Series(RequestsSeries("DEADLINE_EXCEEDED")) == 1; })) << Page();
  EXPECT_EQ(Series(RequestsSeries("OK")), 1);
  EXPECT_EQ(Series(RequestsSeries("CANCELLED")), -1);
  EXPECT_EQ(Series("convserve_compute_seconds_count{op=\"conv2d\"}"), 2);
  EXPECT_LT(Series("convserve_compute_seconds_sum{op=\"conv2d\"}"),
            Series("convserve_request_seconds_sum{op=\"conv2d\"}"));
  ExpectServes();
}

TEST_F(BehaviourTest, QueuedRequestWhoseCallIsCancelledIsDroppedUnrun) {
  Start(Config(/*workers=*/1));
  auto running = StartRunning(SlowConv2D(milliseconds(300)));
  auto cancelled = StartConv(stub_.get(), SmallConv2D("cancelled"));
  ASSERT_TRUE(WaitFor([&] { return scheduler().queue_depth() == 1; }));
  cancelled->context.TryCancel();
  EXPECT_EQ(cancelled->Wait().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_FALSE(running->Ready()) << "the slow request was too fast for this test";
  EXPECT_TRUE(running->Wait().ok());
  ASSERT_TRUE(WaitFor([&] { return Series(RequestsSeries("CANCELLED")) == 1; })) << Page();
  EXPECT_EQ(Series(RequestsSeries("OK")), 1);
  EXPECT_EQ(scheduler().queue_depth(), 0);
  ExpectServes();
}

TEST_F(BehaviourTest, DrainingRefusesNewCallsWithUnavailableAndFinishesInFlight) {
  Start(Config(/*workers=*/1));
  auto running = StartRunning(SlowConv2DWithBigReply(milliseconds(300)));
  std::thread drain([&] { server_->Drain(milliseconds(5000)); });
  ASSERT_TRUE(WaitFor([&] { return server_->ledger().draining(); }));

  v1::ConvResponse response;
  grpc::Status status = Call(SmallConv2D("new"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));
  grpc::ClientContext stream_context;
  auto stream = stub_->ConvStream(&stream_context);
  v1::ConvResponse reply;
  EXPECT_FALSE(stream->Read(&reply));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  grpc::ClientContext register_context;
  v1::RegisterFilterRequest register_request;
  *register_request.mutable_filter() = SmallConv2D().filter().tensor();
  v1::RegisterFilterResponse register_response;
  EXPECT_EQ(
      stub_->RegisterFilter(&register_context, register_request, &register_response).error_code(),
      grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(running->Ready()) << "the slow request was too fast for this test";

  status = running->Wait();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(running->response.output().data() == ComputeInProcess(running->request).data());
  drain.join();
  // Stopped: the port no longer answers.
  status = Call(SmallConv2D("after"), &response, milliseconds(2000));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

// ---------------------------------------------------------------------------
// 2. ConvStream.

// The replies of one stream, read on their own thread.
class StreamReader {
 public:
  explicit StreamReader(grpc::ClientReaderWriter<v1::ConvRequest, v1::ConvResponse>* stream)
      : thread_([this, stream] {
          v1::ConvResponse response;
          while (stream->Read(&response)) {
            std::lock_guard<std::mutex> lock(mutex_);
            replies_.push_back(response);
          }
        }) {}
  ~StreamReader() { Join(); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return replies_.size();
  }
  std::vector<v1::ConvResponse> replies() {
    std::lock_guard<std::mutex> lock(mutex_);
    return replies_;
  }

 private:
  std::mutex mutex_;
  std::vector<v1::ConvResponse> replies_;
  std::thread thread_;
};

TEST_F(BehaviourTest, StreamRepliesMatchRequestsById) {
  Start(Config(/*workers=*/2));
  grpc::ClientContext context;
  auto stream = stub_->ConvStream(&context);
  std::map<std::string, v1::ConvRequest> sent;
  constexpr int kRequests = 40;
  for (int i = 0; i < kRequests; ++i) {
    v1::ConvRequest request = SquareConv2D(4 + i % 9, absl::StrCat("r", i), i);
    sent[request.id()] = request;
    ASSERT_TRUE(stream->Write(request));
  }
  stream->WritesDone();
  std::set<std::string> seen;
  v1::ConvResponse response;
  while (stream->Read(&response)) {
    ASSERT_TRUE(sent.contains(response.id())) << response.id();
    EXPECT_TRUE(seen.insert(response.id()).second) << "two replies for " << response.id();
    EXPECT_FALSE(response.has_error()) << response.error().message();
    EXPECT_TRUE(response.output().data() == ComputeInProcess(sent.at(response.id())).data());
  }
  EXPECT_EQ(seen.size(), sent.size());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(BehaviourTest, StreamRepliesComeOutOfOrderWhenASlowRequestLeads) {
  Start(Config(/*workers=*/2));
  grpc::ClientContext context;
  auto stream = stub_->ConvStream(&context);
  ASSERT_TRUE(stream->Write(SlowConv2D(milliseconds(300), "slow")));
  constexpr int kFast = 5;
  for (int i = 0; i < kFast; ++i) ASSERT_TRUE(stream->Write(SmallConv2D(absl::StrCat("fast", i))));
  stream->WritesDone();
  std::vector<std::string> order;
  v1::ConvResponse response;
  while (stream->Read(&response)) {
    EXPECT_FALSE(response.has_error()) << response.error().message();
    order.push_back(response.id());
  }
  ASSERT_EQ(order.size(), kFast + 1u);
  EXPECT_EQ(order.back(), "slow") << "the fast requests waited for the slow one";
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(BehaviourTest, StreamErrorIsAReplyAndTheStreamGoesOn) {
  Start(Config(/*workers=*/1));
  grpc::ClientContext context;
  auto stream = stub_->ConvStream(&context);
  v1::ConvResponse response;

  v1::ConvRequest bad = SmallConv2D("bad");
  for (int64_t s : {2, 1, 1, 1}) bad.mutable_conv2d()->add_strides(s);
  ASSERT_TRUE(stream->Write(bad));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.id(), "bad");
  EXPECT_EQ(response.error().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(response.error().message(), HasSubstr("(field: conv2d.strides)"));
  EXPECT_FALSE(response.has_output());

  v1::ConvRequest unknown = SmallConv2D("unknown");
  unknown.mutable_filter()->set_filter_id("nope");
  ASSERT_TRUE(stream->Write(unknown));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.id(), "unknown");
  EXPECT_EQ(response.error().code(), grpc::StatusCode::NOT_FOUND);

  ASSERT_TRUE(stream->Write(SmallConv2D("good")));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.id(), "good");
  EXPECT_FALSE(response.has_error());
  EXPECT_TRUE(response.output().data() == ComputeInProcess(SmallConv2D()).data());
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(BehaviourTest, HalfCloseFinishesOnlyAfterEveryReply) {
  Start(Config(/*workers=*/1));
  grpc::ClientContext context;
  auto stream = stub_->ConvStream(&context);
  // Half-close while the slow request and those behind it are still queued
  // or running: the server must still send all their replies, then OK.
  ASSERT_TRUE(stream->Write(SlowConv2D(milliseconds(200), "slow")));
  constexpr int kRequests = 10;
  for (int i = 1; i < kRequests; ++i) ASSERT_TRUE(stream->Write(SmallConv2D(absl::StrCat(i))));
  ASSERT_TRUE(stream->WritesDone());
  int replies = 0;
  v1::ConvResponse response;
  while (stream->Read(&response)) {
    EXPECT_FALSE(response.has_error()) << response.error().message();
    ++replies;
  }
  EXPECT_EQ(replies, kRequests);
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_TRUE(WaitFor([&] { return server_->ledger().open_streams() == 0; }));
}

// A fast writer against a slow server (requests of a few ms each): the server
// holds at most what its queue allows, and every request is answered (none
// refused for a full queue). With `expect_full`, checks that the queue was
// seen full, i.e. that the stream really met a full queue and had to wait.
void RunFlowControl(RunningServer& server, v1::ConvService::Stub* stub, int max_queue,
                    bool expect_full) {
  constexpr int kRequests = 50;
  const int64_t side = SideFor(milliseconds(2));
  std::vector<v1::ConvRequest> requests;
  for (int i = 0; i < kRequests; ++i) {
    requests.push_back(SquareConv2D(side + i % 3, absl::StrCat("r", i), i, kSlowChannels));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> max_depth{0}, max_gauge{0}, samples{0};
  std::thread monitor([&] {
    while (!stop) {
      max_depth = std::max(max_depth.load(), server.scheduler().queue_depth());
      const double gauge = SeriesValue(server.metrics().Render(), "convserve_queue_depth");
      max_gauge = std::max(max_gauge.load(), static_cast<int>(gauge));
      ++samples;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub->ConvStream(&context);
  StreamReader reader(stream.get());
  for (const v1::ConvRequest& request : requests) {
    if (!stream->Write(request)) {
      ADD_FAILURE() << "the stream broke at " << request.id();
      break;
    }
  }
  stream->WritesDone();
  reader.Join();
  const grpc::Status status = stream->Finish();
  stop = true;
  monitor.join();

  EXPECT_TRUE(status.ok()) << status.error_message();
  std::map<std::string, v1::ConvResponse> by_id;
  for (const v1::ConvResponse& reply : reader.replies()) by_id[reply.id()] = reply;
  EXPECT_EQ(by_id.size(), static_cast<size_t>(kRequests));
  for (const v1::ConvRequest& request : requests) {
    auto it = by_id.find(request.id());
    ASSERT_NE(it, by_id.end()) << request.id();
    EXPECT_FALSE(it->second.has_error()) << request.id() << ": " << it->second.error().message();
    EXPECT_TRUE(it->second.output().data() == ComputeInProcess(request).data()) << request.id();
  }
  EXPECT_GT(samples.load(), 0);
  EXPECT_LE(max_depth.load(), max_queue);
  EXPECT_LE(max_gauge.load(), max_queue);
  if (expect_full) {
    EXPECT_EQ(max_depth.load(), max_queue) << "the queue was never full: nothing was tested";
  }
}

TEST_F(BehaviourTest, StreamFlowControlWithASmallWindow) {
  ServerConfig config = Config(/*workers=*/1);
  config.max_queue = 1;
  config.stream_window = 2;
  Start(config);
  RunFlowControl(*server_, stub_.get(), 1, /*expect_full=*/false);
  EXPECT_EQ(Series(RequestsSeries("RESOURCE_EXHAUSTED")), -1);
}

// The window larger than the queue: the stream itself meets the full queue
// and must wait for room (Scheduler::NotifyWhenRoom), not fail its requests.
TEST_F(BehaviourTest, StreamFlowControlWaitsForRoomInAFullQueue) {
  ServerConfig config = Config(/*workers=*/1);
  config.max_queue = 1;
  config.stream_window = 64;
  Start(config);
  RunFlowControl(*server_, stub_.get(), 1, /*expect_full=*/true);
  EXPECT_EQ(Series(RequestsSeries("RESOURCE_EXHAUSTED")), -1);
}

// Two streams compete for one queue slot and the memory budget.
TEST_F(BehaviourTest, TwoStreamsShareAFullQueue) {
  ServerConfig config = Config(/*workers=*/1);
  config.max_queue = 1;
  Start(config);
  std::thread other([&] { RunFlowControl(*server_, stub_.get(), 1, /*expect_full=*/true); });
  RunFlowControl(*server_, stub_.get(), 1, /*expect_full=*/true);
  other.join();
  EXPECT_EQ(Series(RequestsSeries("RESOURCE_EXHAUSTED")), -1);
  EXPECT_EQ(Series(RequestsSeries("OK")), 100);
}

// Many streams of tiny requests through a one-slot queue: the streams keep
// meeting the full queue, parking a request and retrying it when room
// appears, thousands of times. Every request must still get its reply and
// every stream must finish (a request lost while parked hangs its stream).
TEST_F(BehaviourTest, ManyStreamsThroughAOneSlotQueueLoseNoRequest) {
  ServerConfig config = Config(/*workers=*/2);
  config.max_queue = 1;
  Start(config);
  constexpr int kStreams = 4, kRequests = 300;
  std::atomic<int> replies{0}, finished_ok{0};
  std::vector<std::thread> clients;
  for (int s = 0; s < kStreams; ++s) {
    clients.emplace_back([&, s] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
      auto stream = stub_->ConvStream(&context);
      StreamReader reader(stream.get());
      for (int i = 0; i < kRequests; ++i) {
        if (!stream->Write(SmallConv2D(absl::StrCat(s, "/", i)))) break;
      }
      stream->WritesDone();
      reader.Join();
      for (const v1::ConvResponse& reply : reader.replies()) {
        if (!reply.has_error()) ++replies;
      }
      if (stream->Finish().ok()) ++finished_ok;
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(replies.load(), kStreams * kRequests);
  EXPECT_EQ(finished_ok.load(), kStreams);
}

TEST_F(BehaviourTest, MaxStreamsRefusesASecondStreamUntilTheFirstCloses) {
  ServerConfig config = Config();
  config.max_streams = 1;
  Start(config);
  grpc::ClientContext first_context;
  auto first = stub_->ConvStream(&first_context);
  v1::ConvResponse response;
  ASSERT_TRUE(first->Write(SmallConv2D("first")));
  ASSERT_TRUE(first->Read(&response));  // the first stream is open on the server
  EXPECT_EQ(server_->ledger().open_streams(), 1);

  grpc::ClientContext second_context;
  auto second = stub_->ConvStream(&second_context);
  second->Write(SmallConv2D("second"));  // may fail: the server finishes at once
  EXPECT_FALSE(second->Read(&response));
  grpc::Status status = second->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("max_streams"));

  // The first stream is unaffected.
  ASSERT_TRUE(first->Write(SmallConv2D("first-again")));
  ASSERT_TRUE(first->Read(&response));
  EXPECT_EQ(response.id(), "first-again");
  first->WritesDone();
  EXPECT_FALSE(first->Read(&response));
  EXPECT_TRUE(first->Finish().ok());
  ASSERT_TRUE(WaitFor([&] { return server_->ledger().open_streams() == 0; }));

  grpc::ClientContext third_context;
  auto third = stub_->ConvStream(&third_context);
  ASSERT_TRUE(third->Write(SmallConv2D("third")));
  ASSERT_TRUE(third->Read(&response));
  EXPECT_EQ(response.id(), "third");
  EXPECT_FALSE(response.has_error());
  third->WritesDone();
  EXPECT_TRUE(third->Finish().ok());
}

TEST_F(BehaviourTest, StreamCancelledMidFlightFinishesWithoutHangingTheServer) {
  ServerConfig config = Config(/*workers=*/1);
  config.max_queue = 2;  // small, so that requests wait for room in the stream
  Start(config);
  {
    grpc::ClientContext context;
    auto stream = stub_->ConvStream(&context);
    ASSERT_TRUE(stream->Write(SlowConv2D(milliseconds(200), "slow")));
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(stream->Write(SmallConv2D(absl::StrCat(i))));
    ASSERT_TRUE(WaitFor([&] { return scheduler().running() == 1; }));
    ASSERT_TRUE(WaitFor([&] { return scheduler().queue_depth() == 2; }));
    context.TryCancel();
    v1::ConvResponse response;
    while (stream->Read(&response)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // The server lets go of the stream: no call, stream, queued work or bytes left.
  EXPECT_TRUE(WaitFor([&] {
    return server_->ledger().active_calls() == 0 && server_->ledger().open_streams() == 0 &&
           scheduler().queue_depth() == 0 && scheduler().running() == 0 &&
           scheduler().bytes_admitted() == 0;
  })) << Page();
  ExpectServes();
  // Requests still queued at the cancel were dropped, not computed.
  EXPECT_GE(Series(RequestsSeries("CANCELLED")), 2);
}

// ---------------------------------------------------------------------------
// 3. Health and reflection.

TEST_F(BehaviourTest, HealthIsServingAfterStart) {
  Start(Config());
  for (const std::string service : {"", "convserve.v1.ConvService"}) {
    grpc::Status status;
    EXPECT_EQ(Health(service, &status), grpc::health::v1::HealthCheckResponse::SERVING)
        << "service \"" << service << "\"";
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  grpc::Status status;
  Health("no.such.Service", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(BehaviourTest, HealthIsNotServingWhileDraining) {
  Start(Config(/*workers=*/1));
  auto running = StartRunning(SlowConv2DWithBigReply(milliseconds(300)));
  std::thread drain([&] { server_->Drain(milliseconds(5000)); });
  for (const std::string service : {"", "convserve.v1.ConvService"}) {
    grpc::Status status;
    bool not_serving = WaitFor([&] {
      return Health(service, &status) == grpc::health::v1::HealthCheckResponse::NOT_SERVING;
    });
    EXPECT_TRUE(not_serving) << "service \"" << service << "\": " << status.error_message();
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  EXPECT_FALSE(running->Ready()) << "the slow request was too fast for this test";
  const grpc::Status status = running->Wait();
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  drain.join();
}

// Lists services with grpc.reflection.v1alpha.ServerReflection. The messages
// come from the descriptors libgrpc++_reflection registers (Debian ships no
// headers for them), the call from the generic byte-buffer stream.
std::vector<std::string> ListServicesByReflection(const std::shared_ptr<grpc::Channel>& channel,
                                                  std::string* error) {
  using google::protobuf::Descriptor;
  using google::protobuf::Message;
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  const Descriptor* request_type =
      pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionRequest");
  const Descriptor* response_type =
      pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionResponse");
  if (!request_type || !response_type) {
    *error = "the reflection descriptors are not linked in";
    return {};
  }
  google::protobuf::DynamicMessageFactory factory(pool);
  std::unique_ptr<Message> request(factory.GetPrototype(request_type)->New());
  request->GetReflection()->SetString(request.get(), request_type->FindFieldByName("list_services"),
                                      "*");
  std::string bytes;
  request->SerializeToString(&bytes);

  const grpc::internal::RpcMethod method(
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      grpc::internal::RpcMethod::BIDI_STREAMING);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          channel.get(), method, &context));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer out(&slice, 1);
  stream->Write(out);
  stream->WritesDone();
  grpc::ByteBuffer in;
  std::vector<std::string> names;
  std::unique_ptr<Message> response(factory.GetPrototype(response_type)->New());
  while (stream->Read(&in)) {
    grpc::Slice all;
    if (!in.DumpToSingleSlice(&all).ok() ||
        !response->ParseFromArray(all.begin(), static_cast<int>(all.size()))) {
      *error = "an unparsable reflection response";
      break;
    }
    const google::protobuf::FieldDescriptor* list_field =
        response_type->FindFieldByName("list_services_response");
    const Message& list = response->GetReflection()->GetMessage(*response, list_field);
    const google::protobuf::FieldDescriptor* service_field =
        list.GetDescriptor()->FindFieldByName("service");
    for (int i = 0; i < list.GetReflection()->FieldSize(list, service_field); ++i) {
      const Message& service = list.GetReflection()->GetRepeatedMessage(list, service_field, i);
      names.push_back(service.GetReflection()->GetString(
          service, service.GetDescriptor()->FindFieldByName("name")));
    }
  }
  const grpc::Status status = stream->Finish();
  if (!status.ok()) *error = status.error_message();
  return names;
}

TEST_F(BehaviourTest, ReflectionListsTheConvService) {
  Start(Config());
  std::string error;
  std::vector<std::string> services = ListServicesByReflection(channel_, &error);
  EXPECT_EQ(error, "");
  EXPECT_THAT(services, ::testing::Contains("convserve.v1.ConvService"));
  EXPECT_THAT(services, ::testing::Contains("grpc.health.v1.Health"));
}

// ---------------------------------------------------------------------------
// 4. The metrics page after known traffic.

TEST_F(BehaviourTest, MetricsPageCountsKnownTraffic) {
  ServerConfig config = Config(/*workers=*/2);
  config.metrics_address = "127.0.0.1:0";
  Start(config);
  ASSERT_GT(server_->metrics_port(), 0);

  v1::ConvResponse response;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Call(SmallConv2D(), &response).ok());
  v1::ConvRequest invalid = SmallConv2D();
  for (int64_t s : {2, 1, 1, 1}) invalid.mutable_conv2d()->add_strides(s);
  EXPECT_EQ(Call(invalid, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::ConvRequest unknown = SmallConv2D();
  unknown.mutable_filter()->set_filter_id("no-such-filter");
  EXPECT_EQ(Call(unknown, &response).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::ConvRequest depthwise = SmallConv2D();
  depthwise.mutable_depthwise_conv2d()->set_padding(v1::PADDING_VALID);
  *depthwise.mutable_input() =
      MakeTensor(DataType::kFloat64, {1, 3, 3, 1}, std::vector<double>(9, 1));
  *depthwise.mutable_filter()->mutable_tensor() =
      MakeTensor(DataType::kFloat64, {2, 2, 1, 1}, {1, 1, 1, 1});
  ASSERT_TRUE(Call(depthwise, &response).ok());

  grpc::ClientContext register_context;
  v1::RegisterFilterRequest register_request;
  *register_request.mutable_filter() =
      MakeTensor(DataType::kFloat32, {2, 2, 1, 3}, std::vector<double>(12, 1));
  v1::RegisterFilterResponse register_response;
  ASSERT_TRUE(stub_->RegisterFilter(&register_context, register_request, &register_response).ok());

  httplib::Client client("127.0.0.1", server_->metrics_port());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  httplib::Result result = client.Get("/metrics");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& page = result->body;

  EXPECT_EQ(SeriesValue(page, RequestsSeries("OK")), 3) << page;
  EXPECT_EQ(SeriesValue(page, RequestsSeries("INVALID_ARGUMENT")), 1);
  EXPECT_EQ(SeriesValue(page, RequestsSeries("NOT_FOUND")), 1);
  EXPECT_EQ(SeriesValue(page, RequestsSeries("OK", "depthwise_conv2d", "double")), 1);
  EXPECT_EQ(SeriesValue(page, RequestsSeries("RESOURCE_EXHAUSTED")), -1);
  for (const char* histogram :
       {"convserve_queue_seconds", "convserve_compute_seconds", "convserve_request_seconds"}) {
    SCOPED_TRACE(histogram);
    EXPECT_EQ(SeriesValue(page, absl::StrCat(histogram, "_count{op=\"conv2d\"}")), 5);
    EXPECT_EQ(SeriesValue(page, absl::StrCat(histogram, "_bucket{op=\"conv2d\",le=\"+Inf\"}")), 5);
    EXPECT_EQ(SeriesValue(page, absl::StrCat(histogram, "_count{op=\"depthwise_conv2d\"}")), 1);
    EXPECT_GE(SeriesValue(page, absl::StrCat(histogram, "_sum{op=\"conv2d\"}")), 0);
    EXPECT_THAT(page, HasSubstr(absl::StrCat("# TYPE ", histogram, " histogram\n")));
  }
  // Tensor bytes: every request's input and inline filter (the one by id
  // sends no filter); results of the OK ones only.
  const int64_t depthwise_in = 9 * 8 + 4 * 8, depthwise_out = 4 * 8;
  EXPECT_EQ(SeriesValue(page, "convserve_bytes_received_total"),
            4 * kSmallBytesIn + 36 + depthwise_in);
  EXPECT_EQ(SeriesValue(page, "convserve_bytes_sent_total"), 3 * kSmallBytesOut + depthwise_out);
  // Gauges, idle now.
  EXPECT_EQ(SeriesValue(page, "convserve_queue_depth"), 0);
  EXPECT_EQ(SeriesValue(page, "convserve_running"), 0);
  EXPECT_EQ(SeriesValue(page, "convserve_in_flight_calls"), 0);
  EXPECT_EQ(SeriesValue(page, "convserve_open_streams"), 0);
  EXPECT_EQ(SeriesValue(page, "convserve_admitted_bytes"), 0);
  EXPECT_EQ(SeriesValue(page, "convserve_workers"), 2);
  EXPECT_EQ(SeriesValue(page, "convserve_registered_filters"), 1);
  // The filter's 12 * 4 data bytes, its shape and its entry.
  EXPECT_EQ(SeriesValue(page, "convserve_registered_filter_bytes"),
            FilterStore::Charge(register_request.filter()));
  EXPECT_EQ(SeriesValue(page, "convserve_weight_cache_entries"), 0);  // reference: none
  EXPECT_EQ(SeriesValue(page, "convserve_weight_cache_bytes"), 0);
  EXPECT_THAT(page, HasSubstr("# TYPE convserve_queue_depth gauge\n"));
  EXPECT_THAT(page, HasSubstr("# TYPE convserve_requests_total counter\n"));
  // Per device: the requests computed (not the refused), each pool's state,
  // and no GPU memory series without GPU workers.
  EXPECT_EQ(SeriesValue(page, "convserve_device_requests_total{device=\"cpu\"}"), 4);
  EXPECT_GE(SeriesValue(page, "convserve_device_compute_seconds_total{device=\"cpu\"}"), 0);
  EXPECT_EQ(SeriesValue(page, "convserve_pool_in_service{backend=\"reference\",device=\"cpu\"}"),
            1);
  // Each pool's queue beside its capacity, and the memory budget.
  EXPECT_EQ(SeriesValue(page, "convserve_pool_queue_depth{backend=\"reference\",device=\"cpu\"}"),
            0);
  EXPECT_EQ(SeriesValue(page, "convserve_pool_max_queue{backend=\"reference\",device=\"cpu\"}"),
            config.max_queue);
  EXPECT_EQ(SeriesValue(page, "convserve_memory_budget_bytes"), config.memory_budget_bytes);
  EXPECT_THAT(page, HasSubstr("# TYPE convserve_device_memory_bytes gauge\n"));
  EXPECT_THAT(page, Not(HasSubstr("convserve_device_memory_bytes{")));
}

TEST_F(BehaviourTest, MetricsGaugesShowWorkInFlight) {
  ServerConfig config = Config(/*workers=*/1);
  config.metrics_address = "127.0.0.1:0";
  Start(config);
  auto running = StartRunning(SlowConv2D(milliseconds(300)));
  auto queued = StartConv(stub_.get(), SmallConv2D("queued"));
  ASSERT_TRUE(WaitFor([&] { return scheduler().queue_depth() == 1; }));
  grpc::ClientContext stream_context;
  auto stream = stub_->ConvStream(&stream_context);
  ASSERT_TRUE(WaitFor([&] { return server_->ledger().open_streams() == 1; }));

  httplib::Client client("127.0.0.1", server_->metrics_port());
  client.set_read_timeout(5);
  httplib::Result result = client.Get("/metrics");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_FALSE(running->Ready()) << "the slow request was too fast for this test";
  const std::string& page = result->body;
  EXPECT_EQ(SeriesValue(page, "convserve_queue_depth"), 1) << page;
  EXPECT_EQ(SeriesValue(page, "convserve_pool_queue_depth{backend=\"reference\",device=\"cpu\"}"),
            1);
  EXPECT_EQ(SeriesValue(page, "convserve_running"), 1);
  EXPECT_EQ(SeriesValue(page, "convserve_in_flight_calls"), 3);
  EXPECT_EQ(SeriesValue(page, "convserve_open_streams"), 1);
  const int64_t slow_in = static_cast<int64_t>(running->request.input().data().size());
  EXPECT_EQ(SeriesValue(page, "convserve_admitted_bytes"),
            2 * slow_in + static_cast<int64_t>(running->request.filter().tensor().data().size()) +
                kSmallBytesIn + kSmallBytesOut);

  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_TRUE(running->Wait().ok());
  EXPECT_TRUE(queued->Wait().ok());
}

// ---------------------------------------------------------------------------
// 5. The access log: a call's W3C traceparent metadata on its lines.

// The captured log's access-log line of the request `id`, or "".
std::string AccessLine(const std::string& log, const std::string& id) {
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("conv id=" + id + " ") != std::string::npos) return line;
  }
  return "";
}

TEST_F(BehaviourTest, AccessLogCarriesTheCallsTraceparentAndIgnoresAnInvalidOne) {
  std::ostringstream log;
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  logger->set_level(spdlog::level::debug);
  const std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  Start(Config());

  const std::string trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string parent_id = "00f067aa0ba902b7";
  const std::string traceparent = "00-" + trace_id + "-" + parent_id + "-01";
  const std::string fields =
      " trace_id=" + trace_id + " parent_id=" + parent_id + " trace_flags=01";
  const auto call = [&](const v1::ConvRequest& request, const std::string& metadata) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    if (!metadata.empty()) context.AddMetadata("traceparent", metadata);
    v1::ConvResponse response;
    return stub_->Conv(&context, request, &response);
  };
  EXPECT_TRUE(call(SmallConv2D("traced"), traceparent).ok());
  v1::ConvRequest invalid = SmallConv2D("traced-invalid");
  for (int64_t s : {2, 1, 1, 1}) invalid.mutable_conv2d()->add_strides(s);
  EXPECT_EQ(call(invalid, traceparent).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Not a valid traceparent: the call is served, and the value never logged.
  EXPECT_TRUE(call(SmallConv2D("forged"), traceparent + " code=OK forged=1").ok());
  EXPECT_TRUE(
      call(SmallConv2D("uppercase"), "00-4BF92F3577B34DA6A3CE929D0E0E4736-" + parent_id + "-01")
          .ok());
  EXPECT_TRUE(call(SmallConv2D("untraced"), "").ok());
  {  // A stream's traceparent is on the line of each of its requests.
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    context.AddMetadata("traceparent", traceparent);
    auto stream = stub_->ConvStream(&context);
    for (const char* id : {"streamed-1", "streamed-2"}) {
      ASSERT_TRUE(stream->Write(SmallConv2D(id)));
    }
    stream->WritesDone();
    v1::ConvResponse response;
    while (stream->Read(&response)) EXPECT_FALSE(response.has_error()) << response.id();
    EXPECT_TRUE(stream->Finish().ok());
  }
  server_.reset();
  spdlog::set_default_logger(previous);

  const std::string text = log.str();
  for (const char* id : {"traced", "traced-invalid", "streamed-1", "streamed-2"}) {
    SCOPED_TRACE(id);
    EXPECT_THAT(AccessLine(text, id), HasSubstr(fields)) << text;
  }
  EXPECT_THAT(AccessLine(text, "traced-invalid"), HasSubstr("code=INVALID_ARGUMENT"));
  for (const char* id : {"forged", "uppercase", "untraced"}) {
    SCOPED_TRACE(id);
    EXPECT_THAT(AccessLine(text, id), HasSubstr("code=OK"));
    EXPECT_THAT(AccessLine(text, id), Not(HasSubstr("trace_id=")));
  }
  EXPECT_THAT(text, Not(HasSubstr("forged=1")));
  EXPECT_THAT(text, Not(HasSubstr("4BF92F")));
}

// ---------------------------------------------------------------------------
// 6. Shutdown.

// As convserve-server does on SIGTERM: Drain, then destroy the server at once.
// The request in flight, with a reply of several MiB, still arrives whole.
TEST_F(BehaviourTest, DrainWaitsForTheRequestInFlightNotForTheGrace) {
  Start(Config(/*workers=*/1));
  auto running = StartRunning(SlowConv2DWithBigReply(milliseconds(300)));
  const auto start = Clock::now();
  server_->Drain(milliseconds(5000));
  const double drain_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(server_->ledger().active_calls(), 0) << "Drain returned with a call unfinished";
  EXPECT_EQ(Series(RequestsSeries("OK")), 1);
  server_.reset();

  const grpc::Status status = running->Wait();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(running->response.output().data() == ComputeInProcess(running->request).data());
  EXPECT_LT(drain_seconds, 2.5) << "Drain waited for its grace period, not for the request";
}

// Drain keeps refusing calls (UNAVAILABLE, from the handler) while clients
// still send them, and shuts down only once they stopped (for up to 1 s):
// gRPC's Shutdown would cancel a call whose request is still arriving
// (CANCELLED, which clients do not retry). It does not wait for the grace.
TEST_F(BehaviourTest, DrainWaitsUntilCallsStopArriving) {
  Start(Config(/*workers=*/1));
  const auto start = Clock::now();
  std::atomic<int64_t> drained_ns{0};
  std::thread drain([&] {
    server_->Drain(milliseconds(5000));
    drained_ns = (Clock::now() - start).count();
  });
  ASSERT_TRUE(WaitFor([&] { return server_->ledger().draining(); }));
  int refused = 0;
  Clock::time_point last_call;
  while (Clock::now() - start < milliseconds(600)) {
    v1::ConvResponse response;
    const grpc::Status status = Call(SmallConv2D("late"), &response);
    last_call = Clock::now();
    if (status.error_message().find("shutting down") == std::string::npos) {
      ADD_FAILURE() << "refused by gRPC, not by the draining server: " << status.error_message();
      break;
    }
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    ++refused;
  }
  drain.join();
  EXPECT_GT(refused, 0);
  const auto drained = start + std::chrono::nanoseconds(drained_ns.load());
  EXPECT_GT(drained, last_call) << "Drain returned while calls were still arriving";
  EXPECT_LT(drained - start, milliseconds(4000)) << "Drain waited for its grace period";
}

// A client that never stops sending (its connection pinned to this server,
// as kube-proxy does) holds the drain 1 s at most; then Shutdown's GOAWAY and
// closed port send it elsewhere, and the server is gone long before the grace.
// Until Shutdown every call is refused by the handler; gRPC's Shutdown then
// cancels the calls on their way at that moment (one or two, a race in gRPC),
// and later ones fail to connect (UNAVAILABLE).
TEST_F(BehaviourTest, DrainStopsWaitingForClientsThatKeepSending) {
  Start(Config(/*workers=*/1));
  const auto start = Clock::now();
  std::atomic<bool> drained{false};
  std::thread drain([&] {
    server_->Drain(milliseconds(10000));
    drained = true;
  });
  ASSERT_TRUE(WaitFor([&] { return server_->ledger().draining(); }));
  // One letter per call, in order: R refused by the draining server,
  // C cancelled, U unavailable from gRPC, ? anything else.
  std::string outcomes;
  while (!drained && Clock::now() - start < milliseconds(8000)) {
    v1::ConvResponse response;
    const grpc::Status status = Call(SmallConv2D("late"), &response, milliseconds(2000));
    const bool refused_by_server =
        status.error_message().find("shutting down") != std::string::npos;
    switch (status.error_code()) {
      case grpc::StatusCode::UNAVAILABLE: outcomes += refused_by_server ? 'R' : 'U'; break;
      case grpc::StatusCode::CANCELLED: outcomes += 'C'; break;
      default: outcomes += '?';
    }
  }
  const auto drain_time = Clock::now() - start;
  drain.join();
  EXPECT_LT(drain_time, milliseconds(5000)) << "Drain waited for the grace while calls came in";
  EXPECT_THAT(outcomes, testing::MatchesRegex("R+[CU]*"))
      << "calls must be refused until Shutdown, and only then cancelled or turned away";
}

// A call still running at the end of the grace is cut off: gRPC cancels every
// call left at Shutdown's deadline, which clients see as UNAVAILABLE (gRPC's
// "Cancelling all calls", safe to retry elsewhere), and the worker's late
// result is discarded. Neither the client nor Drain waits for the computation.
TEST_F(BehaviourTest, DrainCancelsARequestThatOutlivesTheGrace) {
  Start(Config(/*workers=*/1));
  auto running = StartRunning(SlowConv2D(milliseconds(400)));
  auto queued = StartConv(stub_.get(), SmallConv2D("queued"));
  ASSERT_TRUE(WaitFor([&] { return scheduler().queue_depth() == 1; }));
  const auto start = Clock::now();
  std::atomic<int64_t> drained_ns{0};
  std::thread drain([&] {
    server_->Drain(milliseconds(50));
    drained_ns = (Clock::now() - start).count();
  });

  const grpc::Status status = running->Wait(milliseconds(10000));
  // The client has its answer while the worker is still computing.
  EXPECT_EQ(scheduler().running(), 1)
      << "the client waited for the computation instead of being cut off at the grace";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("Cancelling all calls"));
  const double answered = std::chrono::duration<double>(running->DoneAt() - start).count();
  EXPECT_GE(answered, 0.045) << "cut off before the grace ended";
  const grpc::Status queued_status = queued->Wait(milliseconds(10000));
  EXPECT_EQ(queued_status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << queued_status.error_message();

  drain.join();
  // Drain returns once the worker is done with the cut-off request (its
  // callbacks must run before gRPC lets go), and drops the queued one unrun.
  EXPECT_LT(std::chrono::duration<double>(std::chrono::nanoseconds(drained_ns.load())).count(),
            10.0);
  EXPECT_TRUE(WaitFor([&] { return scheduler().running() == 0; }));
  EXPECT_EQ(scheduler().queue_depth(), 0);
  EXPECT_EQ(Series(RequestsSeries("CANCELLED")), 1) << Page();  // the queued one, unrun
  server_.reset();  // and the server then stops without hanging
}

}  // namespace
}  // namespace convserve::server
