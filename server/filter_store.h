// Filters registered with RegisterFilter, by content-derived id.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "convserve/v1/convserve.pb.h"

namespace convserve::server {

// Thread-safe. Entries live until the server stops; the store refuses new
// filters once `budget_bytes` are held, or once the owner that registers one
// (a principal) holds `owner_budget_bytes`, counting each filter's Charge.
class FilterStore {
 public:
  explicit FilterStore(int64_t budget_bytes, int64_t owner_budget_bytes = INT64_MAX)
      : budget_bytes_(budget_bytes), owner_budget_bytes_(owner_budget_bytes) {}

  // What a stored filter counts against the budgets: its data, 8 bytes per
  // dimension of its shape, and kEntryBytes for the entry itself, so that
  // neither tensors without elements nor long shapes are stored for free.
  static constexpr int64_t kEntryBytes = 64;
  static int64_t Charge(const convserve::v1::Tensor& filter);

  // Stores `filter` (already validated by the caller) and returns its id: the
  // hex SHA-256 of its dtype, shape and bytes, so the same tensor always gets
  // the same id. A new filter's Charge counts against `owner` (empty: nobody's
  // share). RESOURCE_EXHAUSTED when the budget or the owner's share would be
  // exceeded.
  absl::StatusOr<std::string> Register(const convserve::v1::Tensor& filter,
                                       const std::string& owner = "");
  struct Registered {
    std::shared_ptr<const convserve::v1::Tensor> tensor;  // null if unknown
    uint64_t content_hash = 0;                            // ContentHash of its bytes
  };
  // The filter stored under `id`; its tensor is null if there is none.
  Registered Find(const std::string& id) const;

  int64_t entries() const;
  int64_t bytes() const;

 private:
  const int64_t budget_bytes_;
  const int64_t owner_budget_bytes_;
  mutable std::mutex mutex_;
  absl::flat_hash_map<std::string, Registered> filters_ ABSL_GUARDED_BY(mutex_);
  int64_t bytes_ ABSL_GUARDED_BY(mutex_) = 0;
  absl::flat_hash_map<std::string, int64_t> owner_bytes_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace convserve::server
