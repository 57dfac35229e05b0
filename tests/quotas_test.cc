// Per-principal quotas and filter-store shares, without a network.
#include "server/quotas.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/filter_store.h"

namespace convserve::server {
namespace {

using ::testing::HasSubstr;

TEST(PrincipalQuotas, LimitRequestsPerPrincipalAndGiveThemBack) {
  PrincipalQuotas quotas(QuotaLimits{.max_requests = 2, .max_bytes = 0});
  auto first = quotas.Acquire("alice", 10);
  auto second = quotas.Acquire("alice", 10);
  ASSERT_TRUE(first.ok() && second.ok());
  const absl::Status third = quotas.Acquire("alice", 10).status();
  EXPECT_TRUE(absl::IsResourceExhausted(third)) << third;
  EXPECT_THAT(third.message(), HasSubstr("\"alice\" already has 2 requests in flight"));
  EXPECT_TRUE(quotas.Acquire("bob", 10).ok()) << "another principal is unaffected";
  EXPECT_EQ(quotas.requests("alice"), 2);
  EXPECT_EQ(quotas.bytes("alice"), 20);
  first->reset();
  EXPECT_EQ(quotas.requests("alice"), 1);
  EXPECT_TRUE(quotas.Acquire("alice", 10).ok());
}

TEST(PrincipalQuotas, LimitBytesPerPrincipal) {
  PrincipalQuotas quotas(QuotaLimits{.max_requests = 0, .max_bytes = 100});
  auto big = quotas.Acquire("alice", 80);
  ASSERT_TRUE(big.ok());
  const absl::Status over = quotas.Acquire("alice", 30).status();
  EXPECT_TRUE(absl::IsResourceExhausted(over));
  EXPECT_THAT(over.message(), HasSubstr("quota_mb"));
  EXPECT_TRUE(quotas.Acquire("alice", 20).ok());
  EXPECT_TRUE(quotas.Acquire("bob", 100).ok());
}

v1::Tensor Filter(float value, int elements) {
  v1::Tensor tensor;
  tensor.set_dtype(v1::DATA_TYPE_FLOAT32);
  tensor.add_shape(elements);
  tensor.set_data(std::string(static_cast<size_t>(elements) * 4, static_cast<char>(value)));
  return tensor;
}

TEST(FilterStoreShare, EachOwnerMayTakeOnlyItsShare) {
  FilterStore store(/*budget_bytes=*/1500, /*owner_budget_bytes=*/500);
  ASSERT_TRUE(store.Register(Filter(1, 100), "alice").ok());  // 400 bytes
  const absl::Status over = store.Register(Filter(2, 100), "alice").status();
  EXPECT_TRUE(absl::IsResourceExhausted(over)) << over;
  EXPECT_THAT(over.message(), HasSubstr("quota_filter_share"));
  EXPECT_TRUE(store.Register(Filter(1, 100), "alice").ok()) << "the same filter again is free";
  EXPECT_TRUE(store.Register(Filter(2, 100), "bob").ok());
  EXPECT_TRUE(store.Register(Filter(3, 100), "").ok()) << "no owner: only the budget applies";
}

}  // namespace
}  // namespace convserve::server
