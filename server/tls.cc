#include "server/tls.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace convserve::server {
namespace {

// The file must be readable and hold a PEM block of `kind` ("CERTIFICATE", "PRIVATE KEY").
absl::Status CheckPem(const std::string& path, absl::string_view kind, absl::string_view flag) {
  std::ifstream file(path);
  std::stringstream contents;
  contents << file.rdbuf();
  if (!file) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  if (contents.str().find(absl::StrCat(kind, "-----")) == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " holds no PEM ", kind));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerConfig& config) {
  if (config.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  for (absl::Status status : {CheckPem(config.tls_cert_file, "CERTIFICATE", "--tls-cert"),
                              CheckPem(config.tls_key_file, "PRIVATE KEY", "--tls-key")}) {
    if (!status.ok()) return status;
  }
  const bool mutual = !config.tls_client_ca_file.empty();
  if (mutual) {
    absl::Status status = CheckPem(config.tls_client_ca_file, "CERTIFICATE", "--tls-client-ca");
    if (!status.ok()) return status;
  }
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      config.tls_key_file, config.tls_cert_file, config.tls_client_ca_file,
      static_cast<unsigned int>(std::max<int64_t>(
          1, std::chrono::duration_cast<std::chrono::seconds>(config.reload_interval).count())));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (mutual) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

std::string DescribeTransport(const ServerConfig& config) {
  if (config.tls_cert_file.empty()) {
    return "PLAINTEXT: traffic is unencrypted and unauthenticated; give --tls-cert and "
           "--tls-key to serve TLS";
  }
  return absl::StrCat(
      config.tls_client_ca_file.empty()
          ? "TLS"
          : "mutual TLS (client certificates signed by --tls-client-ca required)",
      ", certificate files re-read every ",
      std::chrono::duration_cast<std::chrono::seconds>(config.reload_interval).count(), " s");
}

}  // namespace convserve::server
