// The gRPC port over TLS, mutual TLS and bearer tokens: who is let in, with
// which scopes, and certificates and tokens replaced on disk are used without
// a restart.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "client/credentials.h"
#include "convserve/v1/convserve.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "service_test_util.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "tests/test_certificates.h"

// Last: it includes <resolv.h>, whose _res macro breaks Eigen's headers.
#include "httplib.h"

namespace convserve::server {
namespace {

using ::convserve::client::MakeChannelCredentials;
using ::convserve::client::TransportOptions;
using ::convserve::testing::MakeCertificateAuthority;
using ::convserve::testing::MakeLeafCertificate;
using ::convserve::testing::PemPair;
using ::convserve::testing::WriteFileAtomically;
using service_test::MakeTensor;
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

  void Start(bool mutual, const std::string& tokens_file = "", int quota_requests = 0) {
    ServerConfig config;
    config.auth_tokens_file = tokens_file;
    config.quota_requests = quota_requests;
    config.workers = 2;
    config.address = "127.0.0.1:0";
    config.metrics_address = "127.0.0.1:0";
    config.backend = "reference";
    config.cuda_devices = "none";
    config.tls_cert_file = Path("server.pem");
    config.tls_key_file = Path("server.key");
    if (mutual) config.tls_client_ca_file = Path("client-ca.pem");
    config.reload_interval = std::chrono::seconds(1);
    auto server = StartServer(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::shared_ptr<grpc::Channel> Connect(
      const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    grpc::ChannelArguments args;
    args.SetInt("convserve.test.fresh_connection", ++connections_);
    return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(server_->port()), credentials,
                                     args);
  }
  // GetServerInfo on a new connection made with `credentials`.
  grpc::Status Ask(const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    auto stub = v1::ConvService::NewStub(Connect(credentials));
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

  // The HTTP status of GET `path` on the metrics port over HTTPS, trusting
  // the CA in the file `ca` and presenting the client certificate `name` when
  // given; -1 when there is no answer (the handshake failed).
  int ScrapeMetrics(const std::string& ca, const std::string& name = "",
                    const std::string& path = "/metrics") {
    httplib::SSLClient client("127.0.0.1", server_->metrics_port(),
                              name.empty() ? "" : Path(name + ".pem"),
                              name.empty() ? "" : Path(name + ".key"));
    client.set_ca_cert_path(Path(ca).c_str());
    client.enable_server_certificate_verification(true);
    client.set_connection_timeout(5);
    client.set_read_timeout(5);
    const httplib::Result result = client.Get(path);
    return result ? result->status : -1;
  }

  // GET /metrics over TLS 1.2 with OpenSSL itself, presenting the client
  // certificate `name` and offering `offer` for resumption (when not null).
  // Returns the HTTP status line's code, or -1 when the handshake failed;
  // `*session` gets the connection's session and `*reused` whether `offer` was
  // resumed.
  int ScrapeResuming(const std::string& name, SSL_SESSION* offer, SSL_SESSION** session,
                     bool* reused) {
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> context(SSL_CTX_new(TLS_client_method()),
                                                              SSL_CTX_free);
    SSL_CTX_set_max_proto_version(context.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(context.get(), Path("server-ca.pem").c_str(), nullptr) != 1 ||
        SSL_CTX_use_certificate_file(context.get(), Path(name + ".pem").c_str(),
                                     SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_use_PrivateKey_file(context.get(), Path(name + ".key").c_str(), SSL_FILETYPE_PEM) !=
            1) {
      ADD_FAILURE() << "client TLS files do not load";
      return -1;
    }
    const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(server_->metrics_port()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(sock, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ::close(sock);
      ADD_FAILURE() << "cannot connect to the metrics port";
      return -1;
    }
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(context.get()), SSL_free);
    SSL_set_fd(ssl.get(), sock);
    if (offer != nullptr) SSL_set_session(ssl.get(), offer);
    int code = -1;
    if (SSL_connect(ssl.get()) == 1) {
      const std::string get = "GET /metrics HTTP/1.0\r\n\r\n";
      SSL_write(ssl.get(), get.data(), static_cast<int>(get.size()));
      std::string reply;
      char buffer[4096];
      for (int n; (n = SSL_read(ssl.get(), buffer, sizeof(buffer))) > 0;) reply.append(buffer, n);
      if (reply.size() > 12 && reply.compare(0, 5, "HTTP/") == 0) {
        code = std::stoi(reply.substr(reply.find(' ') + 1, 3));
      }
      *reused = SSL_session_reused(ssl.get()) == 1;
      *session = SSL_get1_session(ssl.get());
      SSL_shutdown(ssl.get());  // else OpenSSL marks the session not resumable
    }
    ::close(sock);
    return code;
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

// The metrics page serves HTTPS from the gRPC port's files, read at each
// handshake: never plain HTTP, and a replaced certificate at once.
TEST_F(TlsTest, TheMetricsPageServesHttpsFromTheSameFiles) {
  Start(/*mutual=*/false);
  EXPECT_EQ(ScrapeMetrics("server-ca.pem"), 200);
  httplib::Client plaintext("127.0.0.1", server_->metrics_port());
  plaintext.set_read_timeout(5);
  const httplib::Result answer = plaintext.Get("/metrics");
  EXPECT_FALSE(answer && answer->status == 200) << "plain HTTP is served";

  const PemPair new_ca = MakeCertificateAuthority("new server ca");
  Write("new-ca.pem", new_ca.certificate);
  EXPECT_EQ(ScrapeMetrics("new-ca.pem"), -1);
  InstallServerCertificate(MakeLeafCertificate(new_ca, "convserve"));
  EXPECT_EQ(ScrapeMetrics("new-ca.pem"), 200);
  EXPECT_EQ(ScrapeMetrics("server-ca.pem"), -1) << "the old certificate is still served";
}

TEST_F(TlsTest, WithMutualTlsTheMetricsPageRequiresAClientCertificate) {
  Start(/*mutual=*/true);
  EXPECT_EQ(ScrapeMetrics("server-ca.pem"), -1) << "no client certificate";
  WithClientCertificate(server_ca_, "stranger");
  EXPECT_EQ(ScrapeMetrics("server-ca.pem", "stranger"), -1) << "one from another authority";
  WithClientCertificate(client_ca_, "prometheus");
  EXPECT_EQ(ScrapeMetrics("server-ca.pem", "prometheus"), 200);
  // The status page and its JSON are served the same way.
  for (const std::string path : {"/", "/status.json"}) {
    EXPECT_EQ(ScrapeMetrics("server-ca.pem", "", path), -1) << path << ": no client certificate";
    EXPECT_EQ(ScrapeMetrics("server-ca.pem", "stranger", path), -1) << path;
    EXPECT_EQ(ScrapeMetrics("server-ca.pem", "prometheus", path), 200) << path;
  }
}

// A client that offers its last session (as nginx, Java and Go do) gets a
// full handshake, so its certificate is checked against the current files.
TEST_F(TlsTest, TheMetricsPageNeverResumesASession) {
  Start(/*mutual=*/true);
  WithClientCertificate(client_ca_, "prometheus");
  SSL_SESSION* first = nullptr;
  bool reused = true;
  ASSERT_EQ(ScrapeResuming("prometheus", nullptr, &first, &reused), 200);
  EXPECT_FALSE(reused);
  SSL_SESSION* second = nullptr;
  EXPECT_EQ(ScrapeResuming("prometheus", first, &second, &reused), 200);
  EXPECT_FALSE(reused) << "a session was resumed, skipping the client certificate check";
  SSL_SESSION_free(first);
  SSL_SESSION_free(second);
}

// Broken files after the start refuse handshakes, and the page comes back
// once they are fixed.
TEST_F(TlsTest, TheMetricsPageSurvivesBrokenFilesAndRecovers) {
  Start(/*mutual=*/false);
  Write("server.pem", "not a certificate");
  EXPECT_EQ(ScrapeMetrics("server-ca.pem"), -1);
  InstallServerCertificate(MakeLeafCertificate(server_ca_, "convserve"));
  EXPECT_EQ(ScrapeMetrics("server-ca.pem"), 200);
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

// ---------------------------------------------------------------------------
// Bearer tokens and scopes, over TLS.

std::string Sha256Hex(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

constexpr char kAliceToken[] = "alice-token-7f3a91";    // conv, register, info
constexpr char kViewerToken[] = "viewer-token-c0ffee";  // info only
constexpr char kBobToken[] = "bob-token-2b2b";          // conv

class TokenTest : public TlsTest {
 protected:
  TokenTest() {
    Write("tokens", "# principals\n" + Sha256Hex(kAliceToken) + " alice conv,register,info\n" +
                        Sha256Hex(kViewerToken) + " viewer info\n" + Sha256Hex(kBobToken) +
                        " bob conv\n" + "cn=batch-job batch conv\n");
  }

  TransportOptions WithToken(const std::string& token) const {
    TransportOptions transport = TrustingServerCa();
    transport.token = token;
    return transport;
  }
  std::unique_ptr<v1::ConvService::Stub> Stub(const TransportOptions& transport) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        MakeChannelCredentials(transport);
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    return v1::ConvService::NewStub(Connect(*credentials));
  }
  // conv2d 1x2x2x1 * 1x1x1x1 through `transport`.
  grpc::Status Conv(const TransportOptions& transport) {
    v1::ConvRequest request;
    request.mutable_conv2d()->set_padding(v1::PADDING_VALID);
    *request.mutable_input() = MakeTensor(DataType::kFloat32, {1, 2, 2, 1}, {1, 2, 3, 4});
    *request.mutable_filter()->mutable_tensor() = MakeTensor(DataType::kFloat32, {1, 1, 1, 1}, {2});
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ConvResponse response;
    return Stub(transport)->Conv(&context, request, &response);
  }
  grpc::Status Register(const TransportOptions& transport) {
    v1::RegisterFilterRequest request;
    *request.mutable_filter() = MakeTensor(DataType::kFloat32, {1, 1, 1, 1}, {2});
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::RegisterFilterResponse response;
    return Stub(transport)->RegisterFilter(&context, request, &response);
  }
  grpc::Status Stream(const TransportOptions& transport) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    auto stub = Stub(transport);
    auto stream = stub->ConvStream(&context);
    stream->WritesDone();
    v1::ConvResponse response;
    while (stream->Read(&response)) {
    }
    return stream->Finish();
  }
};

TEST_F(TokenTest, TlsWithoutATokenIsUnauthenticated) {
  Start(/*mutual=*/false, Path("tokens"));
  EXPECT_EQ(Conv(TrustingServerCa()).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Stream(TrustingServerCa()).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Register(TrustingServerCa()).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Ask(TrustingServerCa()).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Conv(WithToken("a-guess")).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(TokenTest, ATokenWithoutTheScopeIsDeniedAndOneWithItServed) {
  Start(/*mutual=*/false, Path("tokens"));
  const grpc::Status denied = Conv(WithToken(kViewerToken));
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(denied.error_message(), HasSubstr("\"viewer\" lacks the scope \"conv\""));
  EXPECT_EQ(Register(WithToken(kViewerToken)).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Ask(WithToken(kViewerToken)).ok());

  for (const grpc::Status& status : {Conv(WithToken(kAliceToken)), Register(WithToken(kAliceToken)),
                                     Stream(WithToken(kAliceToken)), Ask(WithToken(kAliceToken))}) {
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
}

TEST_F(TokenTest, HealthStaysOpenForProbes) {
  Start(/*mutual=*/false, Path("tokens"));
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(TrustingServerCa());
  ASSERT_TRUE(credentials.ok());
  auto health = grpc::health::v1::Health::NewStub(Connect(*credentials));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(health->Check(&context, grpc::health::v1::HealthCheckRequest(), &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(TokenTest, AClientCertificateNamedInTheFileNeedsNoToken) {
  Start(/*mutual=*/true, Path("tokens"));
  const grpc::Status status = Conv(WithClientCertificate(client_ca_, "batch-job"));
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Conv(WithClientCertificate(client_ca_, "unlisted")).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(TokenTest, AReplacedTokensFileIsUsedWithoutARestart) {
  Start(/*mutual=*/false, Path("tokens"));
  const std::string new_token = "rotated-token-5150";
  ASSERT_EQ(Conv(WithToken(new_token)).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  Write("tokens", Sha256Hex(new_token) + " alice conv\n");
  grpc::Status status;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    status = Conv(WithToken(new_token));
  } while (!status.ok() && std::chrono::steady_clock::now() < give_up);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Conv(WithToken(kAliceToken)).error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << "the old token is gone";
}

TEST_F(TokenTest, TheTokenNeverAppearsInTheLogs) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  auto logger = std::make_shared<spdlog::logger>("capture", sink);
  logger->set_level(spdlog::level::trace);
  std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  Start(/*mutual=*/false, Path("tokens"));
  EXPECT_TRUE(Conv(WithToken(kAliceToken)).ok());
  EXPECT_FALSE(Conv(WithToken(kViewerToken)).ok());
  EXPECT_FALSE(Conv(WithToken("a-guessed-token")).ok());
  Write("tokens", "broken line\n");  // a reload error is logged too
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  server_.reset();
  spdlog::set_default_logger(previous);
  const std::string text = log.str();
  EXPECT_THAT(text, HasSubstr("conv id="));  // the access log was captured
  EXPECT_THAT(text, HasSubstr("not reloaded"));
  for (const char* secret : {kAliceToken, kViewerToken, "a-guessed-token"}) {
    EXPECT_THAT(text, ::testing::Not(HasSubstr(secret)));
  }
}

TEST_F(TokenTest, OnePrincipalOverItsQuotaIsRefusedWhileAnotherIsServed) {
  Start(/*mutual=*/false, Path("tokens"), /*quota_requests=*/1);
  // Alice keeps one slow request in flight on a stream (the reference loops
  // take a while on this one).
  v1::ConvRequest slow;
  slow.mutable_conv2d()->set_padding(v1::PADDING_SAME);
  *slow.mutable_input() =
      MakeTensor(DataType::kFloat32, {1, 96, 96, 64}, std::vector<double>(96 * 96 * 64, 1));
  *slow.mutable_filter()->mutable_tensor() =
      MakeTensor(DataType::kFloat32, {3, 3, 64, 64}, std::vector<double>(9 * 64 * 64, 1));
  grpc::ClientContext stream_context;
  auto alice = Stub(WithToken(kAliceToken));
  auto stream = alice->ConvStream(&stream_context);
  ASSERT_TRUE(stream->Write(slow));
  const auto running = [&] { return server_->scheduler().running() == 1; };
  for (int i = 0; i < 500 && !running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(running());

  const grpc::Status refused = Conv(WithToken(kAliceToken));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("quota_requests"));
  const grpc::Status served = Conv(WithToken(kBobToken));
  EXPECT_TRUE(served.ok()) << served.error_message();

  stream->WritesDone();
  v1::ConvResponse response;
  EXPECT_TRUE(stream->Read(&response));
  EXPECT_FALSE(response.has_error()) << response.error().message();
  EXPECT_TRUE(stream->Finish().ok());
  const grpc::Status again = Conv(WithToken(kAliceToken));
  EXPECT_TRUE(again.ok()) << "the quota is given back: " << again.error_message();

  const std::string metrics = server_->metrics().Render();
  EXPECT_THAT(metrics, HasSubstr("convserve_principal_requests_total{principal=\"alice\","
                                 "code=\"RESOURCE_EXHAUSTED\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("convserve_principal_requests_total{principal=\"alice\","
                                 "code=\"OK\"} 2"));
  EXPECT_THAT(metrics, HasSubstr("convserve_principal_requests_total{principal=\"bob\","
                                 "code=\"OK\"} 1"));
}

TEST(ClientCredentials, ATokenIsNeverSentInPlaintext) {
  TransportOptions transport;
  transport.token = "secret";
  const absl::Status status = MakeChannelCredentials(transport).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_THAT(status.message(), HasSubstr("--token needs TLS"));
}

}  // namespace
}  // namespace convserve::server
