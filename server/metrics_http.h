// The HTTP endpoint that serves the Prometheus metrics page and the live
// status page: plain HTTP, or HTTPS from the gRPC port's TLS files (see
// metrics_tls.h).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/metrics.h"
#include "server/metrics_tls.h"

namespace convserve::server {

// Serves, on its own thread, GET /metrics (Metrics::Render), GET / (the
// status page, status_page.h) and GET /status.json (what the page polls,
// status_json.h); the last two with Cache-Control: no-store.
class MetricsHttpServer {
 public:
  // Listens on `address` (host:port; port 0 picks one): HTTPS when
  // tls.cert_file is set (client certificates required when
  // tls.client_ca_file is), plain HTTP otherwise. `metrics` must outlive the
  // server. INVALID_ARGUMENT for a malformed address or TLS files that do not
  // load, UNAVAILABLE if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& address,
                                                                  const Metrics* metrics,
                                                                  const MetricsTlsFiles& tls = {});
  ~MetricsHttpServer();  // stops serving and joins its thread

  int port() const;

 private:
  MetricsHttpServer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convserve::server
