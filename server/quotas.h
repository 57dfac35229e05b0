// Per-principal quotas: how many requests, and how many tensor bytes, one
// authenticated principal's calls may hold at once, so that one client cannot
// take the whole server from the others.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace convserve::server {

struct QuotaLimits {
  int max_requests = 0;   // requests admitted and not yet answered; 0: no limit
  int64_t max_bytes = 0;  // tensor bytes those requests hold; 0: no limit
};

// Thread-safe.
class PrincipalQuotas {
 public:
  explicit PrincipalQuotas(QuotaLimits limits) : limits_(limits) {}

  // A request's claim on its principal's quota, given back when destroyed.
  class Hold {
   public:
    ~Hold();
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

   private:
    friend class PrincipalQuotas;
    Hold(PrincipalQuotas* quotas, std::string principal, int64_t bytes)
        : quotas_(quotas), principal_(std::move(principal)), bytes_(bytes) {}
    PrincipalQuotas* const quotas_;
    const std::string principal_;
    const int64_t bytes_;
  };

  // Claims one request of `bytes` for `principal`, or RESOURCE_EXHAUSTED
  // naming the limit it would pass. The quotas must outlive the hold.
  absl::StatusOr<std::unique_ptr<Hold>> Acquire(const std::string& principal, int64_t bytes);

  // What `principal` holds now.
  int requests(const std::string& principal) const;
  int64_t bytes(const std::string& principal) const;

 private:
  struct Usage {
    int requests = 0;
    int64_t bytes = 0;
  };
  void Release(const std::string& principal, int64_t bytes);

  const QuotaLimits limits_;
  mutable std::mutex mutex_;
  absl::flat_hash_map<std::string, Usage> usage_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace convserve::server
