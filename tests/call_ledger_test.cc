// The call ledger: calls, streams, draining.
#include "server/call_ledger.h"

#include "gtest/gtest.h"

namespace convserve::server {
namespace {

TEST(CallLedger, CountsCallsAndRemembersTheLatestStart) {
  CallLedger ledger(/*max_streams=*/4);
  EXPECT_EQ(ledger.active_calls(), 0);
  EXPECT_EQ(ledger.last_call_started(), std::chrono::steady_clock::time_point());
  const auto before = std::chrono::steady_clock::now();
  ledger.CallStarted();
  ledger.CallStarted();
  EXPECT_EQ(ledger.active_calls(), 2);
  EXPECT_GE(ledger.last_call_started(), before);
  EXPECT_LE(ledger.last_call_started(), std::chrono::steady_clock::now());
  ledger.CallEnded();
  EXPECT_EQ(ledger.active_calls(), 1);
}

TEST(CallLedger, RefusesStreamsPastTheLimitAndFreesClosedOnes) {
  CallLedger ledger(/*max_streams=*/2);
  EXPECT_TRUE(ledger.TryOpenStream());
  EXPECT_TRUE(ledger.TryOpenStream());
  EXPECT_FALSE(ledger.TryOpenStream());
  EXPECT_EQ(ledger.open_streams(), 2);  // the refused one is not counted
  ledger.StreamClosed();
  EXPECT_EQ(ledger.open_streams(), 1);
  EXPECT_TRUE(ledger.TryOpenStream());
  EXPECT_EQ(ledger.max_streams(), 2);
}

TEST(CallLedger, DrainingIsOneWay) {
  CallLedger ledger(1);
  EXPECT_FALSE(ledger.draining());
  ledger.StartDraining();
  EXPECT_TRUE(ledger.draining());
}

}  // namespace
}  // namespace convserve::server
