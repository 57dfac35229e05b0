#include "client/perf/in_process.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "core/onednn/onednn_backend.h"
#include "core/reference/reference_backend.h"
#include "core/weight_cache.h"

namespace convserve::perf {

double InProcessGflops(const Workload& w, double seconds) {
  using Clock = std::chrono::steady_clock;
  const int threads = std::max(1u, std::thread::hardware_concurrency());
  OneDnnBackend onednn(OneDnnOptions{
      .threads = threads, .weight_cache = std::make_shared<WeightCache>(int64_t{1} << 30)});
  ReferenceBackend reference;
  const ConvSpec& s = w.spec;
  Backend& backend = onednn.Computes(s) ? static_cast<Backend&>(onednn) : reference;
  Operands operands;
  operands.input = {s.dtype, Shape(w.input_shape.begin(), w.input_shape.end()),
                    reinterpret_cast<const std::byte*>(w.input_bytes.data())};
  operands.filter = {s.dtype, Shape(w.filter_shape.begin(), w.filter_shape.end()),
                     reinterpret_cast<const std::byte*>(w.filter_bytes.data())};
  operands.filter_hash = ContentHash(w.filter_bytes);
  std::string out(static_cast<size_t>(s.ResultElements() * ItemSize(s.dtype)), '\0');
  TensorView view{s.dtype, s.result_shape, reinterpret_cast<std::byte*>(out.data())};
  for (int i = 0; i < 3; ++i) {
    absl::Status status = backend.Run(s, operands, view);
    if (!status.ok()) {
      std::cerr << "error: in-process run failed: " << status << "\n";
      return 0;
    }
  }
  int64_t runs = 0;
  const Clock::time_point start = Clock::now();
  double elapsed = 0;
  while (runs < 3 || elapsed < seconds) {
    (void)backend.Run(s, operands, view);
    ++runs;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  }
  return static_cast<double>(runs) * w.flops / elapsed / 1e9;
}

}  // namespace convserve::perf
