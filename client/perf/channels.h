// convserve-perf's connections to the server(s): one gRPC channel per
// connection with its ConvService and EchoService stubs, and the calls made
// once before measuring (RegisterFilter everywhere, one probe per address).
//
// Contract: MakeStubs returns max(--connections, addresses) channels, address
// i % addresses on channel i, each its own TCP connection, configured with
// --lb-policy, --health-check and --max-attempts/--retry-on. For an address
// list, stubs[a] is on addresses[a] for every a < addresses.size().
//
// Thread safety: gRPC channels and stubs are thread-safe; the functions here
// are called from main's thread before the callers start.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/perf/options.h"
#include "convserve/v1/convserve.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace convserve::perf {

struct Stubs {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ConvService::Stub> conv;
  std::unique_ptr<v1::EchoService::Stub> echo;
};

std::vector<Stubs> MakeStubs(const Options& o,
                             const std::shared_ptr<grpc::ChannelCredentials>& credentials);

// Registers `filter` on every address; the id (of the last address). The
// error's message says which address failed.
absl::StatusOr<std::string> RegisterFilterEverywhere(const Options& o, std::vector<Stubs>& stubs,
                                                     const v1::Tensor& filter);

// Sends `request` once to every address, checking that it is accepted;
// returns the size of a reply in bytes. The error's message says which
// address failed, with the status code's name.
absl::StatusOr<int64_t> ProbeReplyBytes(const Options& o, std::vector<Stubs>& stubs,
                                        const v1::ConvRequest& request);

}  // namespace convserve::perf
