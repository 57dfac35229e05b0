// The command-line options every C++ tool (convserve-cli, convserve-perf)
// takes to connect over TLS with a token: --tls-ca, --tls-cert, --tls-key,
// --token and --token-file.
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
  CLI::Option* token = app.add_option(
      "--token", options->token,
      "bearer token sent on every call (needs TLS); prefer --token-file, as arguments are "
      "visible to other users of the machine");
  app.add_option("--token-file", options->token_file, "file holding the bearer token")
      ->check(CLI::ExistingFile)
      ->excludes(token);
}

}  // namespace convserve::client
