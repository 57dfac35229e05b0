#include "server/quotas.h"

#include "absl/strings/str_cat.h"

namespace convserve::server {

PrincipalQuotas::Hold::~Hold() { quotas_->Release(principal_, bytes_); }

absl::StatusOr<std::unique_ptr<PrincipalQuotas::Hold>> PrincipalQuotas::Acquire(
    const std::string& principal, int64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  Usage& usage = usage_[principal];
  if (limits_.max_requests > 0 && usage.requests >= limits_.max_requests) {
    return absl::ResourceExhaustedError(
        absl::StrCat("principal \"", principal, "\" already has ", usage.requests,
                     " requests in flight, its quota (quota_requests); retry later"));
  }
  if (limits_.max_bytes > 0 && usage.bytes + bytes > limits_.max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "principal \"", principal, "\" holds ", usage.bytes, " bytes of tensors; ", bytes,
        " more would exceed its quota of ", limits_.max_bytes, " (quota_mb); retry later"));
  }
  ++usage.requests;
  usage.bytes += bytes;
  return std::unique_ptr<Hold>(new Hold(this, principal, bytes));
}

void PrincipalQuotas::Release(const std::string& principal, int64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  Usage& usage = usage_[principal];
  --usage.requests;
  usage.bytes -= bytes;
}

int PrincipalQuotas::requests(const std::string& principal) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = usage_.find(principal);
  return it == usage_.end() ? 0 : it->second.requests;
}

int64_t PrincipalQuotas::bytes(const std::string& principal) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = usage_.find(principal);
  return it == usage_.end() ? 0 : it->second.bytes;
}

}  // namespace convserve::server
