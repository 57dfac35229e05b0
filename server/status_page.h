// The live status page that the metrics port serves at "/": one HTML file,
// server/status_page.html, with its script and styles inline, compiled into
// the binary (server/embed_text.cmake writes it into a C++ source at build
// time). It polls /status.json (status_json.h) every second and plots
// throughput, latency quantiles and queue depth, and lists recent errors.
#pragma once

#include <string_view>

namespace convserve::server {

// The page's HTML, as the file holds it.
std::string_view StatusPageHtml();

}  // namespace convserve::server
