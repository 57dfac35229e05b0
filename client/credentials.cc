#include "client/credentials.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace convserve::client {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view option) {
  if (path.empty()) return std::string();
  std::ifstream file(path, std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  if (!file) return absl::InvalidArgumentError(absl::StrCat(option, ": cannot read ", path));
  return contents.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TransportOptions& options) {
  std::string token = options.token;
  if (!options.token_file.empty()) {
    absl::StatusOr<std::string> contents = ReadPem(options.token_file, "--token-file");
    if (!contents.ok()) return contents.status();
    token = std::string(absl::StripAsciiWhitespace(*contents));
  }
  if (!token.empty() && !options.tls()) {
    return absl::InvalidArgumentError(
        "--token needs TLS (--tls-ca): a bearer token is never sent in plaintext");
  }
  if (!options.tls()) return grpc::InsecureChannelCredentials();
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key: give both or neither");
  }
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> roots = ReadPem(options.tls_ca_file, "--tls-ca");
  absl::StatusOr<std::string> cert = ReadPem(options.tls_cert_file, "--tls-cert");
  absl::StatusOr<std::string> key = ReadPem(options.tls_key_file, "--tls-key");
  for (const auto* pem : {&roots, &cert, &key}) {
    if (!pem->ok()) return pem->status();
  }
  ssl.pem_root_certs = *roots;
  ssl.pem_cert_chain = *cert;
  ssl.pem_private_key = *key;
  std::shared_ptr<grpc::ChannelCredentials> channel = grpc::SslCredentials(ssl);
  if (token.empty()) return channel;
  return grpc::CompositeChannelCredentials(channel, grpc::AccessTokenCredentials(token));
}

}  // namespace convserve::client
