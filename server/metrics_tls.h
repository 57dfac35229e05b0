// TLS for the /metrics page from the gRPC port's PEM files (--tls-cert,
// --tls-key and, for mutual TLS, --tls-client-ca).
//
// OpenSSL calls back at every handshake, and the callback reads the files
// then, so a rotated certificate, key or CA bundle is served from the next
// scrape on, without a restart. Session resumption is off, so that every
// connection makes a full handshake and meets the current files. Scrapes come
// seconds apart, so reading three small files per handshake costs nothing
// measurable.
#pragma once

#include <string>

#include "absl/status/status.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace convserve::server {

struct MetricsTlsFiles {
  std::string cert_file;       // PEM certificate chain; empty: plain HTTP
  std::string key_file;        // PEM private key (not encrypted)
  std::string client_ca_file;  // PEM CA bundle; empty: no client certificate asked for
};

// Whether the files load as a certificate chain, its private key and (when
// named) a CA bundle. INVALID_ARGUMENT naming the flag otherwise, so that a
// bad start fails at once rather than at the first scrape.
absl::Status CheckMetricsTlsFiles(const MetricsTlsFiles& files);

// Sets `context` up to serve `files`, which must outlive it: TLS 1.2 or
// later, no session resumption, the certificate chain and key loaded at each
// handshake and, with a client CA bundle, a client certificate it signed
// required (any such certificate: the page has no scopes). A handshake whose
// files do not load fails (and logs why); the next one reads them again.
// Thread-safe: the callback only reads the files and the handshake's own SSL
// object.
void ServeMetricsTlsFiles(ssl_ctx_st& context, const MetricsTlsFiles& files);

}  // namespace convserve::server
