// The W3C traceparent parser (server/trace_parent.h), on the cases of the
// Trace Context spec's receiver rules, and the access-log fields it gives.
#include "server/trace_parent.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convserve::server {
namespace {

constexpr char kTraceId[] = "0af7651916cd43dd8448eb211c80319c";
constexpr char kParentId[] = "b7ad6b7169203331";

std::string Header(const std::string& version, const std::string& trace_id,
                   const std::string& parent_id, const std::string& flags) {
  return version + "-" + trace_id + "-" + parent_id + "-" + flags;
}

TEST(TraceParent, ParsesVersion00) {
  const auto parsed = ParseTraceParent(Header("00", kTraceId, kParentId, "01"));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, (TraceParent{kTraceId, kParentId, "01"}));
  EXPECT_EQ(ParseTraceParent(Header("00", kTraceId, kParentId, "00"))->flags, "00");
}

TEST(TraceParent, IgnoresSpacesAndTabsAround) {
  EXPECT_TRUE(ParseTraceParent(" \t" + Header("00", kTraceId, kParentId, "01") + "\t "));
}

TEST(TraceParent, RejectsUppercaseHex) {
  EXPECT_FALSE(ParseTraceParent(Header("00", "0AF7651916CD43DD8448EB211C80319C", kParentId, "01")));
  EXPECT_FALSE(ParseTraceParent(Header("00", kTraceId, "B7AD6B7169203331", "01")));
  EXPECT_FALSE(ParseTraceParent(Header("00", kTraceId, kParentId, "0A")));
  EXPECT_FALSE(ParseTraceParent(Header("0A", kTraceId, kParentId, "01")));
}

TEST(TraceParent, RejectsVersionFfAndNonHexFields) {
  EXPECT_FALSE(ParseTraceParent(Header("ff", kTraceId, kParentId, "01")));
  EXPECT_FALSE(ParseTraceParent(Header("0g", kTraceId, kParentId, "01")));
  EXPECT_FALSE(ParseTraceParent(Header("00", "0af7651916cd43dd8448eb211c80319z", kParentId, "01")));
  EXPECT_FALSE(ParseTraceParent(Header("00", kTraceId, "b7ad6b716920333.", "01")));
  EXPECT_FALSE(ParseTraceParent(Header("00", kTraceId, kParentId, "0x")));
  EXPECT_FALSE(ParseTraceParent(Header("00", kTraceId, kParentId, " 1")));
}

TEST(TraceParent, RejectsAllZeroIds) {
  EXPECT_FALSE(ParseTraceParent(Header("00", std::string(32, '0'), kParentId, "01")));
  EXPECT_FALSE(ParseTraceParent(Header("00", kTraceId, std::string(16, '0'), "01")));
}

TEST(TraceParent, RejectsWrongLengthsAndSeparators) {
  const std::string valid = Header("00", kTraceId, kParentId, "01");
  EXPECT_FALSE(ParseTraceParent(""));
  EXPECT_FALSE(ParseTraceParent(valid.substr(0, valid.size() - 1)));
  EXPECT_FALSE(ParseTraceParent(Header("00", std::string(kTraceId) + "0", kParentId, "1")));
  EXPECT_FALSE(ParseTraceParent(Header("00", std::string(kTraceId).substr(1), kParentId, "011")));
  EXPECT_FALSE(ParseTraceParent(valid + "-"));  // version 00 has nothing more
  EXPECT_FALSE(ParseTraceParent(valid + "-extra"));
  EXPECT_FALSE(ParseTraceParent(valid + "0"));
  std::string underscores = valid;
  underscores[2] = '_';
  EXPECT_FALSE(ParseTraceParent(underscores));
  EXPECT_FALSE(ParseTraceParent("00-" + std::string(kTraceId) + "." + kParentId + "-01"));
  EXPECT_FALSE(ParseTraceParent(valid + "\n" + valid));
}

TEST(TraceParent, ParsesALaterVersionsKnownFields) {
  const std::string later = Header("cc", kTraceId, kParentId, "01");
  EXPECT_EQ(ParseTraceParent(later), (TraceParent{kTraceId, kParentId, "01"}));
  EXPECT_EQ(ParseTraceParent(later + "-what-the-future-holds"),
            (TraceParent{kTraceId, kParentId, "01"}));
  EXPECT_FALSE(ParseTraceParent(later + "what-the-future-holds"));  // no '-' after the flags
  EXPECT_FALSE(ParseTraceParent(Header("cc", std::string(32, '0'), kParentId, "01")));
}

TEST(TraceParent, LogFieldsNameTheIds) {
  EXPECT_EQ(TraceLogFields(std::nullopt), "");
  EXPECT_EQ(TraceLogFields(TraceParent{kTraceId, kParentId, "01"}),
            std::string(" trace_id=") + kTraceId + " parent_id=" + kParentId + " trace_flags=01");
}

}  // namespace
}  // namespace convserve::server
