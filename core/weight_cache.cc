#include "core/weight_cache.h"

#include "absl/hash/hash.h"

namespace convserve {

uint64_t ContentHash(absl::string_view bytes) { return absl::Hash<absl::string_view>{}(bytes); }

std::shared_ptr<const void> WeightCache::Find(const WeightKey& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->value;
}

void WeightCache::Insert(const WeightKey& key, std::shared_ptr<const void> value, int64_t bytes) {
  if (bytes > budget_bytes_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (index_.contains(key)) return;
  while (bytes_ + bytes > budget_bytes_ && !lru_.empty()) {
    bytes_ -= lru_.back().bytes;
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
  lru_.push_front(Entry{key, std::move(value), bytes});
  index_[key] = lru_.begin();
  bytes_ += bytes;
}

int64_t WeightCache::entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(lru_.size());
}

int64_t WeightCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

}  // namespace convserve
