// convserve-server: serves TensorFlow's convolution ops over gRPC.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "core/process_settings.h"
#include "server/flags.h"
#include "server/logging.h"
#include "server/server.h"
#include "server/tls.h"
#include "spdlog/spdlog.h"

namespace {

// Blocks SIGINT and SIGTERM in every thread; WaitForShutdownSignal takes them.
sigset_t BlockShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int WaitForShutdownSignal(const sigset_t& signals) {
  int signal = 0;
  sigwait(&signals, &signal);
  return signal;
}

}  // namespace

int main(int argc, char** argv) {
  convserve::ApplyRpcProcessSettings();
  convserve::server::ServerConfig config;
  if (const std::optional<int> exit_code =
          convserve::server::ParseServerFlags(argc, argv, &config, std::cout, std::cerr)) {
    return *exit_code;
  }
  convserve::server::ConfigureLogging(config.log_level, config.log_format);
  spdlog::info("convserve-server {} starting: {}", CONVSERVE_VERSION,
               convserve::server::DescribeConfig(config));

  const sigset_t signals = BlockShutdownSignals();
  auto server = convserve::server::StartServer(config);
  if (!server.ok()) {
    spdlog::critical("{}", server.status().ToString());
    return EXIT_FAILURE;
  }
  spdlog::info("listening on {} (port {}){}", config.address, (*server)->port(),
               (*server)->metrics_port()
                   ? fmt::format(", metrics on port {} ({})", (*server)->metrics_port(),
                                 config.tls_cert_file.empty() ? "HTTP" : "HTTPS")
                   : "");
  std::vector<std::string> pools;
  for (const auto& pool : (*server)->scheduler().pool_status()) {
    pools.push_back(
        fmt::format("{}{} x{}{}", pool.backend,
                    pool.device_id == convserve::kCpuDeviceId ? "" : " on " + pool.device_id,
                    pool.workers, pool.in_service ? "" : " (out of service)"));
  }
  spdlog::info("worker pools, in routing order: {}", fmt::join(pools, ", "));
  if (config.tls_cert_file.empty()) {
    spdlog::warn("serving {}", convserve::server::DescribeTransport(config));
  } else {
    spdlog::info("serving {}", convserve::server::DescribeTransport(config));
  }
  const int signal = WaitForShutdownSignal(signals);
  spdlog::info("signal {}: draining, grace period {} ms", signal, config.grace_period.count());
  (*server)->Drain(config.grace_period);
  server->reset();
  spdlog::info("stopped");
  return EXIT_SUCCESS;
}
