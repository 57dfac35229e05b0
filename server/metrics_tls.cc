#include "server/metrics_tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace convserve::server {
namespace {

constexpr unsigned char kSessionIdContext[] = "convserve-metrics";

// The first queued OpenSSL error as text; clears the queue.
std::string TakeOpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

// OpenSSL's default would prompt on the terminal for an encrypted key's
// passphrase, blocking the thread; there is none to give.
int NoPassphrase(char*, int, int, void*) { return 0; }

// Loads `files` into `ssl`: its certificate chain and key, and the store
// that verifies client certificates. Returns what failed, naming the flag.
absl::Status LoadInto(SSL& ssl, const MetricsTlsFiles& files) {
  ERR_clear_error();
  SSL_set_default_passwd_cb(&ssl, NoPassphrase);
  if (SSL_use_certificate_chain_file(&ssl, files.cert_file.c_str()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-cert: ", files.cert_file, ": ", TakeOpenSslError()));
  }
  if (SSL_use_PrivateKey_file(&ssl, files.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_check_private_key(&ssl) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-key: ", files.key_file, ": ", TakeOpenSslError()));
  }
  if (files.client_ca_file.empty()) return absl::OkStatus();
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  if (!store || X509_STORE_load_file(store.get(), files.client_ca_file.c_str()) != 1 ||
      SSL_set1_verify_cert_store(&ssl, store.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-client-ca: ", files.client_ca_file, ": ", TakeOpenSslError()));
  }
  return absl::OkStatus();
}

// SSL_CTX_set_cert_cb's callback: 1 lets the handshake go on, 0 fails it.
int LoadAtHandshake(SSL* ssl, void* files) {
  const absl::Status status = LoadInto(*ssl, *static_cast<const MetricsTlsFiles*>(files));
  if (status.ok()) return 1;
  spdlog::warn("metrics: TLS handshake refused, {}", std::string(status.message()));
  return 0;
}

}  // namespace

absl::Status CheckMetricsTlsFiles(const MetricsTlsFiles& files) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> context(SSL_CTX_new(TLS_server_method()),
                                                            SSL_CTX_free);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(context ? SSL_new(context.get()) : nullptr,
                                                SSL_free);
  if (!ssl) return absl::InternalError("metrics: OpenSSL cannot make a TLS context");
  return LoadInto(*ssl, files);
}

void ServeMetricsTlsFiles(SSL_CTX& context, const MetricsTlsFiles& files) {
  SSL_CTX_set_min_proto_version(&context, TLS1_2_VERSION);
  // No resumption: a resumed session would skip the callback (the current
  // files) and the client certificate check.
  SSL_CTX_set_session_cache_mode(&context, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(&context, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(&context, 0);
  SSL_CTX_set_session_id_context(&context, kSessionIdContext, sizeof(kSessionIdContext) - 1);
  SSL_CTX_set_cert_cb(&context, LoadAtHandshake, const_cast<MetricsTlsFiles*>(&files));
  if (!files.client_ca_file.empty()) {
    SSL_CTX_set_verify(&context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
}

}  // namespace convserve::server
