// Certificates for TLS tests, made in memory with OpenSSL: a CA, and leaf
// certificates it signs for the server (127.0.0.1 and localhost) or a client.
#pragma once

#include <string>

namespace convserve::testing {

// A PEM certificate and its PEM private key.
struct PemPair {
  std::string certificate;
  std::string private_key;
};

// A self-signed CA named `name`.
PemPair MakeCertificateAuthority(const std::string& name);
// A certificate for `common_name` signed by `ca`: valid for TLS servers on
// 127.0.0.1 and localhost, and for TLS clients.
PemPair MakeLeafCertificate(const PemPair& ca, const std::string& common_name);

// Writes `contents` to `path` (replacing it atomically, as Kubernetes updates a
// mounted Secret); aborts the test on failure.
void WriteFileAtomically(const std::string& path, const std::string& contents);

}  // namespace convserve::testing
