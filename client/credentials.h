// How a client connects: plaintext, TLS, or mutual TLS from PEM files.
//
// Thread safety: plain values and a pure function (it reads the files).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"

namespace convserve::client {

struct TransportOptions {
  // PEM CA bundle that verifies the server's certificate. Setting it (or a
  // client certificate) turns TLS on; with TLS and no bundle, the system's
  // roots verify the server.
  std::string tls_ca_file;
  // PEM client certificate chain and private key, for mutual TLS.
  std::string tls_cert_file;
  std::string tls_key_file;
  // A bearer token sent as `authorization: Bearer <token>` on every call, or
  // a file holding it (surrounding whitespace ignored). Needs TLS.
  std::string token;
  std::string token_file;

  bool tls() const { return !tls_ca_file.empty() || !tls_cert_file.empty(); }
};

// Plaintext credentials unless `options` asks for TLS, with the token if
// any. INVALID_ARGUMENT naming the option when a file cannot be read, only
// one of the client certificate and key is given, or a token comes without
// TLS (it is never sent in plaintext).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TransportOptions& options);

}  // namespace convserve::client
