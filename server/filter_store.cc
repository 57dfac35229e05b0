#include "server/filter_store.h"

#include <openssl/evp.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/weight_cache.h"

namespace convserve::server {
namespace {

std::string ContentId(const convserve::v1::Tensor& filter) {
  const int32_t dtype = filter.dtype();
  const int64_t rank = filter.shape_size();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  EVP_DigestInit_ex(context, EVP_sha256(), nullptr);
  EVP_DigestUpdate(context, &dtype, sizeof(dtype));
  EVP_DigestUpdate(context, &rank, sizeof(rank));
  EVP_DigestUpdate(context, filter.shape().data(), sizeof(int64_t) * rank);
  EVP_DigestUpdate(context, filter.data().data(), filter.data().size());
  EVP_DigestFinal_ex(context, digest, &size);
  EVP_MD_CTX_free(context);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), size));
}

}  // namespace

int64_t FilterStore::Charge(const convserve::v1::Tensor& filter) {
  return static_cast<int64_t>(filter.data().size()) +
         static_cast<int64_t>(filter.shape_size()) * static_cast<int64_t>(sizeof(int64_t)) +
         kEntryBytes;
}

absl::StatusOr<std::string> FilterStore::Register(const convserve::v1::Tensor& filter,
                                                  const std::string& owner) {
  std::string id = ContentId(filter);
  const int64_t size = Charge(filter);
  std::lock_guard<std::mutex> lock(mutex_);
  if (filters_.contains(id)) return id;  // the same tensor: its id, stored once
  if (bytes_ + size > budget_bytes_) {
    return absl::ResourceExhaustedError(absl::StrCat("the filter store holds ", bytes_, " bytes; ",
                                                     size, " more would exceed its budget of ",
                                                     budget_bytes_));
  }
  if (!owner.empty() && owner_bytes_[owner] + size > owner_budget_bytes_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("principal \"", owner, "\"'s registered filters hold ", owner_bytes_[owner],
                     " bytes; ", size, " more would exceed its share of the filter store, ",
                     owner_budget_bytes_, " bytes (quota_filter_share)"));
  }
  if (!owner.empty()) owner_bytes_[owner] += size;
  filters_.emplace(id, Registered{std::make_shared<const convserve::v1::Tensor>(filter),
                                  ContentHash(filter.data())});
  bytes_ += size;
  return id;
}

FilterStore::Registered FilterStore::Find(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = filters_.find(id);
  return it == filters_.end() ? Registered{} : it->second;
}

int64_t FilterStore::entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(filters_.size());
}

int64_t FilterStore::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

}  // namespace convserve::server
