#include "client/perf/channels.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/status_code_name.h"

namespace convserve::perf {
namespace {

// The channel's service config: load balancing, client-side health checking
// and retries (Conv and Echo are idempotent). gRPC's retry throttling pauses
// retries once failures outrun successes by about 500 (a failure costs a
// token, a success earns 0.1, retrying needs more than half of 1000).
std::string ServiceConfigJson(const Options& o) {
  std::vector<std::string> parts;
  if (!o.lb_policy.empty()) {
    parts.push_back(absl::StrCat("\"loadBalancingConfig\":[{\"", o.lb_policy, "\":{}}]"));
  }
  if (o.health_check) {
    parts.push_back("\"healthCheckConfig\":{\"serviceName\":\"convserve.v1.ConvService\"}");
  }
  if (o.max_attempts > 1) {
    parts.push_back(absl::StrCat(
        "\"methodConfig\":[{\"name\":[{\"service\":\"convserve.v1.ConvService\",\"method\":"
        "\"Conv\"},{\"service\":\"convserve.v1.EchoService\"}],\"retryPolicy\":{"
        "\"maxAttempts\":",
        o.max_attempts,
        ",\"initialBackoff\":\"0.02s\",\"maxBackoff\":"
        "\"0.5s\",\"backoffMultiplier\":2,\"retryableStatusCodes\":[\"",
        absl::StrJoin(o.retry_on, "\",\""),
        "\"]}}],\"retryThrottling\":{\"maxTokens\":1000,"
        "\"tokenRatio\":0.1}"));
  }
  return parts.empty() ? "" : absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

}  // namespace

std::vector<Stubs> MakeStubs(const Options& o,
                             const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  // A distinct channel argument keeps gRPC from sharing one TCP connection
  // among the channels.
  const int connections = std::max<int>(o.connections, static_cast<int>(o.addresses.size()));
  std::vector<Stubs> stubs(connections);
  for (int i = 0; i < connections; ++i) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(INT32_MAX);
    args.SetMaxSendMessageSize(INT32_MAX);
    args.SetInt("convserve.perf.connection", i);
    if (const std::string config = ServiceConfigJson(o); !config.empty()) {
      args.SetServiceConfigJSON(config);
    }
    // gRPC retries only calls whose request fits its retry buffer: 256 KiB by
    // default, raised to 256 MiB.
    if (o.max_attempts > 1) args.SetInt(GRPC_ARG_PER_RPC_RETRY_BUFFER_SIZE, 256 << 20);
    stubs[i].channel =
        grpc::CreateCustomChannel(o.addresses[i % o.addresses.size()], credentials, args);
    stubs[i].conv = v1::ConvService::NewStub(stubs[i].channel);
    stubs[i].echo = v1::EchoService::NewStub(stubs[i].channel);
  }
  return stubs;
}

absl::StatusOr<std::string> RegisterFilterEverywhere(const Options& o, std::vector<Stubs>& stubs,
                                                     const v1::Tensor& filter) {
  std::string id;
  for (size_t a = 0; a < o.addresses.size(); ++a) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::RegisterFilterRequest request;
    *request.mutable_filter() = filter;
    v1::RegisterFilterResponse response;
    grpc::Status status = stubs[a].conv->RegisterFilter(&context, request, &response);
    if (!status.ok()) {
      return absl::Status(
          static_cast<absl::StatusCode>(status.error_code()),
          absl::StrCat("RegisterFilter on ", o.addresses[a], " failed: ", status.error_message()));
    }
    id = response.filter_id();
  }
  return id;
}

absl::StatusOr<int64_t> ProbeReplyBytes(const Options& o, std::vector<Stubs>& stubs,
                                        const v1::ConvRequest& request) {
  int64_t reply_bytes = 0;
  for (size_t a = 0; a < o.addresses.size(); ++a) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::ConvResponse response;
    grpc::Status status = stubs[a].conv->Conv(&context, request, &response);
    if (!status.ok()) {
      return absl::Status(
          static_cast<absl::StatusCode>(status.error_code()),
          absl::StrCat("the first request to ", o.addresses[a], " failed (",
                       client::StatusCodeName(status.error_code()), "): ", status.error_message()));
    }
    reply_bytes = static_cast<int64_t>(response.ByteSizeLong());
  }
  return reply_bytes;
}

}  // namespace convserve::perf
