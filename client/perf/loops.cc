#include "client/perf/loops.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <latch>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/status_code_name.h"

namespace convserve::perf {
namespace {

using Clock = std::chrono::steady_clock;

// What a step's callers report; thread-safe.
struct Recorder {
  bool keep_samples = false;  // for --latency-log
  std::mutex mutex;
  std::vector<double> latencies_us;
  std::vector<Sample> samples;
  std::map<std::string, int64_t> errors;
  int64_t ok = 0;
  void Add(int code, double us) {
    std::lock_guard<std::mutex> lock(mutex);
    if (keep_samples) samples.push_back({std::chrono::system_clock::now(), us, code});
    if (code == 0) {
      ++ok;
      latencies_us.push_back(us);
    } else {
      ++errors[std::string(client::StatusCodeName(code))];
    }
  }
};

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t k = std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()));
  return sorted[k];
}

StepResult Finish(Recorder& rec, const std::string& mode, const std::string& load, double level,
                  double seconds, double flops) {
  StepResult r;
  r.mode = mode;
  r.load = load;
  r.level = level;
  r.ok = rec.ok;
  r.errors = rec.errors;
  r.samples = std::move(rec.samples);
  r.seconds = seconds;
  r.rps = seconds > 0 ? static_cast<double>(r.ok) / seconds : 0;
  r.gflops = r.rps * flops / 1e9;
  std::sort(rec.latencies_us.begin(), rec.latencies_us.end());
  r.p50 = Percentile(rec.latencies_us, 0.50);
  r.p90 = Percentile(rec.latencies_us, 0.90);
  r.p95 = Percentile(rec.latencies_us, 0.95);
  r.p99 = Percentile(rec.latencies_us, 0.99);
  return r;
}

// Slot `slot`'s share of `total` warmup requests over `slots` callers.
int64_t WarmupShare(int64_t total, int slots, int slot) {
  return total / slots + (slot < total % slots ? 1 : 0);
}

}  // namespace

StepResult RunClosed(const Options& o, const std::string& mode, int concurrency,
                     const CallerFactory& make, double flops) {
  Recorder rec;
  rec.keep_samples = !o.latency_log_path.empty();
  std::atomic<int64_t> issued{0};
  std::latch ready(concurrency + 1);
  Clock::time_point start, deadline;
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int s = 0; s < concurrency; ++s) {
    threads.emplace_back([&, s] {
      std::unique_ptr<Caller> caller = make(s);
      const int64_t warmup = WarmupShare(o.warmup_requests, concurrency, s);
      for (int64_t i = 0; i < warmup; ++i) caller->Call();
      ready.arrive_and_wait();
      while (!go.load()) std::this_thread::yield();
      while (issued.fetch_add(1) < o.requests && Clock::now() < deadline) {
        const Clock::time_point t0 = Clock::now();
        const int code = caller->Call();
        rec.Add(code, std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
    });
  }
  ready.arrive_and_wait();
  start = Clock::now();
  deadline = start + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(o.duration_s));
  go = true;
  for (std::thread& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return Finish(rec, mode, absl::StrCat("c=", concurrency), concurrency, seconds, flops);
}

StepResult RunOpen(const Options& o, const std::string& mode, double rate,
                   const CallerFactory& make, double flops) {
  Recorder rec;
  rec.keep_samples = !o.latency_log_path.empty();
  const int workers = o.max_in_flight;
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<Clock::time_point> pending;
  int idle = 0;
  bool done = false;
  std::latch ready(workers + 1);
  std::vector<std::thread> threads;
  for (int s = 0; s < workers; ++s) {
    threads.emplace_back([&, s] {
      std::unique_ptr<Caller> caller = make(s);
      const int64_t warmup = WarmupShare(o.warmup_requests, workers, s);
      for (int64_t i = 0; i < warmup; ++i) caller->Call();
      ready.arrive_and_wait();
      std::unique_lock<std::mutex> lock(mutex);
      for (;;) {
        ++idle;
        cv.wait(lock, [&] { return !pending.empty() || done; });
        if (pending.empty()) return;
        --idle;
        const Clock::time_point scheduled = pending.front();
        pending.pop_front();
        lock.unlock();
        const int code = caller->Call();
        rec.Add(code, std::chrono::duration<double, std::micro>(Clock::now() - scheduled).count());
        lock.lock();
      }
    });
  }
  ready.arrive_and_wait();
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> gap(rate);
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = start + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(o.duration_s));
  int64_t dropped = 0;
  double t = 0;
  for (int64_t i = 0; i < o.requests; ++i) {
    const Clock::time_point at =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(t));
    if (at >= deadline) break;
    std::this_thread::sleep_until(at);
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (idle > static_cast<int>(pending.size())) {
        pending.push_back(at);
      } else {
        ++dropped;
      }
    }
    cv.notify_one();
    t += o.arrivals == "poisson" ? gap(rng) : 1.0 / rate;
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
  }
  cv.notify_all();
  for (std::thread& th : threads) th.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  StepResult r = Finish(rec, mode, absl::StrCat("rate=", rate), rate, seconds, flops);
  r.dropped = dropped;
  return r;
}

}  // namespace convserve::perf
