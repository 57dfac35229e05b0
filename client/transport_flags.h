// The command-line options every C++ tool (convserve-cli, convserve-perf)
// takes to connect over TLS: --tls-ca, --tls-cert and --tls-key.
#pragma once

#include "CLI/CLI.hpp"
#include "client/credentials.h"

namespace convserve::client {

// Adds the options to `app`, writing into `options` (which must outlive parsing).
inline void AddTransportFlags(CLI::App& app, TransportOptions* options) {
  app.add_option("--tls-ca", options->tls_ca_file,
                 "PEM CA bundle that verifies the server; turns TLS on")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-cert", options->tls_cert_file,
                 "PEM client certificate chain for mutual TLS (with --tls-key); turns TLS on")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", options->tls_key_file, "PEM private key of --tls-cert")
      ->check(CLI::ExistingFile);
}

}  // namespace convserve::client
