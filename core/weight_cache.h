// A thread-safe, byte-budgeted LRU cache of backend-ready (reordered) weights.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "core/conv_spec.h"

namespace convserve {

// Identifies one filter prepared for one spec: the filter by its content, so
// that a registered filter and the same bytes sent inline share an entry.
struct WeightKey {
  uint64_t content_hash = 0;
  int64_t content_bytes = 0;
  ConvSpec spec;
  int stage = 0;  // which convolution of the spec (separable has two)

  bool operator==(const WeightKey& other) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const WeightKey& k) {
    return H::combine(std::move(h), k.content_hash, k.content_bytes, k.spec, k.stage);
  }
};

// Hash of a filter's bytes for WeightKey.
uint64_t ContentHash(absl::string_view bytes);

// Values are shared and immutable once inserted; any number of threads may
// read a value while others insert or evict.
class WeightCache {
 public:
  explicit WeightCache(int64_t budget_bytes) : budget_bytes_(budget_bytes) {}

  // The entry for `key`, now the most recently used, or null.
  std::shared_ptr<const void> Find(const WeightKey& key);
  // Stores `value` of `bytes`, evicting least recently used entries to stay
  // within the budget. A value larger than the whole budget is not stored.
  void Insert(const WeightKey& key, std::shared_ptr<const void> value, int64_t bytes);

  int64_t entries() const;
  int64_t bytes() const;

 private:
  struct Entry {
    WeightKey key;
    std::shared_ptr<const void> value;
    int64_t bytes;
  };
  const int64_t budget_bytes_;
  mutable std::mutex mutex_;
  std::list<Entry> lru_ ABSL_GUARDED_BY(mutex_);  // most recently used first
  absl::flat_hash_map<WeightKey, std::list<Entry>::iterator> index_ ABSL_GUARDED_BY(mutex_);
  int64_t bytes_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace convserve
