// convserve-perf's callers: each sends one request at a time, synchronously,
// through unary Conv, a ConvStream, or the EchoService baseline, and returns
// the call's status code.
//
// Contract: Call() runs one request and returns its gRPC status code (0 = OK);
// a streamed reply carrying an error counts as that error's code (UNKNOWN if
// it has none), and a broken stream as the stream's final code (UNAVAILABLE if
// that is OK) and is reopened on the next call.
//
// Thread safety: a Caller is used by one thread at a time (each load thread
// makes its own from a CallerFactory); callers share the stubs, which are
// thread-safe, and the request, which must outlive them and stay unchanged.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/perf/channels.h"
#include "convserve/v1/convserve.pb.h"

namespace convserve::perf {

class Caller {
 public:
  virtual ~Caller() = default;
  // Runs one request; returns its status code (0 = OK).
  virtual int Call() = 0;
};

// Makes the caller of load slot `slot` (0, 1, ...).
using CallerFactory = std::function<std::unique_ptr<Caller>(int slot)>;

// Callers for `mode` ("unary", "stream" or "echo"); slot s uses
// stubs[s % stubs.size()]. Unary calls send `request` and echo calls
// `echo_request`, each with a deadline of `timeout_ms`; streams send copies of
// `request` with ids 0, 1, ... The arguments must outlive the factory and its callers.
CallerFactory MakeCallerFactory(const std::string& mode, std::vector<Stubs>& stubs,
                                const v1::ConvRequest& request, const v1::EchoRequest& echo_request,
                                int timeout_ms);

}  // namespace convserve::perf
