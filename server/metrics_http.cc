#include "server/metrics_http.h"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <string_view>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "server/status_json.h"
#include "server/status_page.h"
#include "spdlog/spdlog.h"

namespace convserve::server {
namespace {

constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// The status page and its JSON are live: never cached.
void SetLiveHeaders(httplib::Response& response) {
  response.set_header("Cache-Control", "no-store");
  response.set_header("X-Content-Type-Options", "nosniff");
}
// The page's script and styles are inline and it fetches only /status.json:
// the browser is told to load nothing else, nor to frame it.
constexpr char kPagePolicy[] =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; frame-ancestors 'none'";

}  // namespace

struct MetricsHttpServer::Impl {
  MetricsTlsFiles tls;  // outlives `server`, whose TLS context reads it
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  std::atomic<bool> finished{false};  // listen_after_bind has returned
  int port = 0;

  // httplib's stop() only acts once the accept loop runs: wait for it.
  void WaitUntilListening() const {
    while (!server->is_running() && !finished.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
};

MetricsHttpServer::MetricsHttpServer() : impl_(std::make_unique<Impl>()) {}

MetricsHttpServer::~MetricsHttpServer() {
  if (!impl_->thread.joinable()) return;
  impl_->WaitUntilListening();
  impl_->server->stop();
  impl_->thread.join();
}

int MetricsHttpServer::port() const { return impl_->port; }

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, const Metrics* metrics, const MetricsTlsFiles& tls) {
  // host:port, the host optionally in brackets ("[::]:9090"); an empty host
  // or "*" means every IPv4 interface.
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address '", address, "' is not host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "*") host = "0.0.0.0";

  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer());
  Impl& impl = *server->impl_;
  impl.tls = tls;
  if (tls.cert_file.empty()) {
    impl.server = std::make_unique<httplib::Server>();
  } else {
    if (absl::Status status = CheckMetricsTlsFiles(tls); !status.ok()) return status;
    impl.server = std::make_unique<httplib::SSLServer>([&impl](SSL_CTX& context) {
      ServeMetricsTlsFiles(context, impl.tls);
      return true;
    });
    if (!impl.server->is_valid()) {
      return absl::InternalError("metrics: OpenSSL cannot make a TLS context");
    }
  }
  // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which would
  // let a second server bind a port that is already being served.
  impl.server->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  impl.server->new_task_queue = [] { return new httplib::ThreadPool(2); };
  // Bound how long a connection holds one of the two threads: an idle
  // keep-alive one (which shutdown waits for), and one that sends slowly or
  // stalls in its TLS handshake.
  impl.server->set_keep_alive_timeout(1);
  impl.server->set_read_timeout(2);
  impl.server->Get("/metrics", [metrics](const httplib::Request&, httplib::Response& response) {
    response.set_content(metrics->Render(), kContentType);
  });
  impl.server->Get("/", [](const httplib::Request&, httplib::Response& response) {
    SetLiveHeaders(response);
    response.set_header("Content-Security-Policy", kPagePolicy);
    const std::string_view page = StatusPageHtml();
    response.set_content(page.data(), page.size(), "text/html; charset=utf-8");
  });
  impl.server->Get("/status.json", [metrics](const httplib::Request&, httplib::Response& response) {
    SetLiveHeaders(response);
    response.set_content(RenderStatusJson(metrics->ReadStatus()), "application/json");
  });

  const int bound = port == 0 ? impl.server->bind_to_any_port(host)
                              : (impl.server->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for metrics on '", address, "'"));
  }
  impl.port = bound;
  impl.thread = std::thread([&impl] {
    if (!impl.server->listen_after_bind())
      spdlog::error("metrics: the HTTP server stopped on an error");
    impl.finished = true;
  });
  impl.WaitUntilListening();
  return server;
}

}  // namespace convserve::server
