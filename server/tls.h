// The credentials the gRPC port serves with: plaintext, TLS, or mutual TLS,
// from PEM files that are re-read as they change (certificate rotation
// without a restart, the way cert-manager and Kubernetes Secrets update them).
#pragma once

#include <memory>
#include <string>

#include "grpcpp/security/server_credentials.h"
#include "server/server_config.h"

namespace convserve::server {

// Plaintext unless config.tls_cert_file is set. The files are watched on
// gRPC's own thread every config.reload_interval; a handshake uses the
// latest pair that loaded. INVALID_ARGUMENT (naming the flag) when a file
// cannot be read or holds no PEM block, so that a bad start fails at once.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerConfig& config);

// One line for the start-up log: what the port serves and whom it trusts.
std::string DescribeTransport(const ServerConfig& config);

}  // namespace convserve::server
