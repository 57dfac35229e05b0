// The gRPC port over TLS and mutual TLS: who is let in, and certificates
// replaced on disk are served without a restart.
#include <chrono>
#include <filesystem>
#include <thread>

#include "client/credentials.h"
#include "convserve/v1/convserve.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/test_certificates.h"

namespace convserve::server {
namespace {

using ::convserve::client::MakeChannelCredentials;
using ::convserve::client::TransportOptions;
using ::convserve::testing::MakeCertificateAuthority;
using ::convserve::testing::MakeLeafCertificate;
using ::convserve::testing::PemPair;
using ::convserve::testing::WriteFileAtomically;
using ::testing::HasSubstr;

class TlsTest : public ::testing::Test {
 protected:
  TlsTest()
      : dir_(std::filesystem::path(::testing::TempDir()) /
             ("convserve_tls_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name())),
        server_ca_(MakeCertificateAuthority("server ca")),
        client_ca_(MakeCertificateAuthority("client ca")) {
    std::filesystem::create_directories(dir_);
    Write("server-ca.pem", server_ca_.certificate);
    Write("client-ca.pem", client_ca_.certificate);
    InstallServerCertificate(MakeLeafCertificate(server_ca_, "convserve"));
  }
  ~TlsTest() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  void Write(const std::string& name, const std::string& contents) {
    WriteFileAtomically(Path(name), contents);
  }
  void InstallServerCertificate(const PemPair& pair) {
    Write("server.pem", pair.certificate);
    Write("server.key", pair.private_key);
  }

  void Start(bool mutual) {
    ServerConfig config;
    config.address = "127.0.0.1:0";
    config.backend = "reference";
    config.tls_cert_file = Path("server.pem");
    config.tls_key_file = Path("server.key");
    if (mutual) config.tls_client_ca_file = Path("client-ca.pem");
    config.tls_reload_interval = std::chrono::seconds(1);
    auto server = StartServer(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  // GetServerInfo on a new connection made with `credentials`.
  grpc::Status Ask(const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    grpc::ChannelArguments args;
    args.SetInt("convserve.test.fresh_connection", ++connections_);
    auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(server_->port()),
                                             credentials, args);
    auto stub = v1::ConvService::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ServerInfo info;
    return stub->GetServerInfo(&context, v1::GetServerInfoRequest(), &info);
  }
  grpc::Status Ask(const TransportOptions& transport) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        MakeChannelCredentials(transport);
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    return Ask(*credentials);
  }
  TransportOptions TrustingServerCa() const {
    TransportOptions transport;
    transport.tls_ca_file = Path("server-ca.pem");
    return transport;
  }
  // A client certificate signed by `ca`, written under `name`.
  TransportOptions WithClientCertificate(const PemPair& ca, const std::string& name) {
    const PemPair pair = MakeLeafCertificate(ca, name);
    Write(name + ".pem", pair.certificate);
    Write(name + ".key", pair.private_key);
    TransportOptions transport = TrustingServerCa();
    transport.tls_cert_file = Path(name + ".pem");
    transport.tls_key_file = Path(name + ".key");
    return transport;
  }

  const std::filesystem::path dir_;
  const PemPair server_ca_, client_ca_;
  std::unique_ptr<RunningServer> server_;
  int connections_ = 0;
};

TEST_F(TlsTest, ServesAClientThatTrustsItsCertificateAuthority) {
  Start(/*mutual=*/false);
  const grpc::Status status = Ask(TrustingServerCa());
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(TlsTest, RefusesAPlaintextClient) {
  Start(/*mutual=*/false);
  EXPECT_EQ(Ask(grpc::InsecureChannelCredentials()).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, AClientThatDoesNotTrustTheCertificateCannotConnect) {
  Start(/*mutual=*/false);
  Write("other-ca.pem", MakeCertificateAuthority("other").certificate);
  TransportOptions transport;
  transport.tls_ca_file = Path("other-ca.pem");
  EXPECT_EQ(Ask(transport).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificateFromItsAuthority) {
  Start(/*mutual=*/true);
  EXPECT_EQ(Ask(TrustingServerCa()).error_code(), grpc::StatusCode::UNAVAILABLE)
      << "no client certificate";
  EXPECT_EQ(Ask(WithClientCertificate(server_ca_, "stranger")).error_code(),
            grpc::StatusCode::UNAVAILABLE)
      << "a client certificate from another authority";
  const grpc::Status status = Ask(WithClientCertificate(client_ca_, "alice"));
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(TlsTest, AReplacedCertificateIsServedWithoutARestart) {
  Start(/*mutual=*/false);
  const PemPair new_ca = MakeCertificateAuthority("new server ca");
  Write("new-ca.pem", new_ca.certificate);
  TransportOptions trusting_new_ca;
  trusting_new_ca.tls_ca_file = Path("new-ca.pem");
  ASSERT_EQ(Ask(trusting_new_ca).error_code(), grpc::StatusCode::UNAVAILABLE);

  InstallServerCertificate(MakeLeafCertificate(new_ca, "convserve"));
  // The files are re-read every second; allow a generous margin.
  grpc::Status status;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    status = Ask(trusting_new_ca);
  } while (!status.ok() && std::chrono::steady_clock::now() < give_up);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Ask(TrustingServerCa()).error_code(), grpc::StatusCode::UNAVAILABLE)
      << "the old certificate is no longer served";
}

TEST_F(TlsTest, AnUnreadableOrNonPemFileStopsTheStart) {
  Write("garbage.pem", "not a certificate");
  for (const auto& [cert, key, flag] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {Path("missing.pem"), Path("server.key"), "--tls-cert"},
           {Path("garbage.pem"), Path("server.key"), "--tls-cert"},
           {Path("server.pem"), Path("garbage.pem"), "--tls-key"}}) {
    ServerConfig config;
    config.address = "127.0.0.1:0";
    config.backend = "reference";
    config.tls_cert_file = cert;
    config.tls_key_file = key;
    auto server = StartServer(config);
    ASSERT_FALSE(server.ok());
    EXPECT_TRUE(absl::IsInvalidArgument(server.status())) << server.status();
    EXPECT_THAT(server.status().message(), HasSubstr(flag));
  }
}

TEST(ClientCredentials, RefuseACertificateWithoutItsKeyAndUnreadableFiles) {
  TransportOptions half;
  half.tls_cert_file = "client.pem";
  EXPECT_TRUE(absl::IsInvalidArgument(MakeChannelCredentials(half).status()));
  TransportOptions missing;
  missing.tls_ca_file = "no/such/ca.pem";
  EXPECT_THAT(MakeChannelCredentials(missing).status().message(), HasSubstr("--tls-ca"));
  EXPECT_TRUE(MakeChannelCredentials(TransportOptions{}).ok()) << "plaintext";
}

}  // namespace
}  // namespace convserve::server
