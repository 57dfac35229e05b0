// The tokens file and the scope check, without a network.
#include "server/auth.h"

#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convserve::server {
namespace {

using ::testing::HasSubstr;

std::string Sha256Hex(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

TEST(PrincipalTable, ParsesTokensCertificatesScopesAndComments) {
  const std::string hash(64, 'a');
  absl::StatusOr<PrincipalTable> table =
      ParsePrincipalTable("# team tokens\n" + hash + " alice conv,info   # trailing\n\n" +
                          "cn=batch-job batch conv,register,info\n");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->entries.size(), 2u);
  EXPECT_EQ(table->entries[0].principal.name, "alice");
  EXPECT_EQ(table->entries[0].token_sha256, std::string(32, '\xaa'));
  EXPECT_EQ(table->entries[0].principal.scopes,
            static_cast<uint32_t>(Scope::kConv) | static_cast<uint32_t>(Scope::kInfo));
  EXPECT_EQ(table->entries[1].common_name, "batch-job");
  EXPECT_EQ(table->entries[1].principal.scopes, 7u);
}

TEST(PrincipalTable, ErrorsNameTheLine) {
  const std::string hash(64, 'a');
  const struct {
    std::string contents;
    std::string message;
  } bad[] = {
      {"\n" + hash + " alice", "line 2: expected"},
      {"abc alice conv", "line 1: the first field is neither 64 hex digits"},
      {std::string(64, 'g') + " alice conv", "neither 64 hex digits"},
      {hash + " alice conv,admin", "line 1: unknown scope \"admin\""},
      {"cn= alice conv", "line 1: empty common name"},
  };
  for (const auto& c : bad) {
    absl::StatusOr<PrincipalTable> table = ParsePrincipalTable(c.contents);
    EXPECT_TRUE(absl::IsInvalidArgument(table.status())) << c.contents;
    EXPECT_THAT(table.status().message(), HasSubstr(c.message));
  }
}

TEST(Authorize, HashesTheTokenWithSha256AsSha256sumPrintsIt) {
  // FIPS 180-2's test vector: SHA-256("abc"), upper case as some tools print it.
  const PrincipalTable table = *ParsePrincipalTable(
      "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD abc-user conv\n");
  absl::StatusOr<Principal> principal = Authorize(table, "Bearer abc", {}, Scope::kConv);
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->name, "abc-user");
}

PrincipalTable RealTable() {
  return *ParsePrincipalTable(Sha256Hex("s3cret") + " alice conv,register\n" +
                              Sha256Hex("viewer-token") + " viewer info\n" +
                              "cn=batch-job batch conv\n");
}

TEST(Authorize, AKnownTokenWithTheScopeIsLetIn) {
  absl::StatusOr<Principal> principal =
      Authorize(RealTable(), "Bearer s3cret", {}, Scope::kRegister);
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->name, "alice");
}

TEST(Authorize, MissingOrUnknownCredentialsAreUnauthenticated) {
  EXPECT_TRUE(absl::IsUnauthenticated(Authorize(RealTable(), "", {}, Scope::kConv).status()));
  EXPECT_TRUE(
      absl::IsUnauthenticated(Authorize(RealTable(), "Bearer guess", {}, Scope::kConv).status()));
  EXPECT_TRUE(
      absl::IsUnauthenticated(Authorize(RealTable(), "Basic czNjcmV0", {}, Scope::kConv).status()));
  EXPECT_TRUE(
      absl::IsUnauthenticated(Authorize(RealTable(), "", {"someone-else"}, Scope::kConv).status()));
}

TEST(Authorize, AKnownPrincipalWithoutTheScopeIsDenied) {
  const absl::Status status =
      Authorize(RealTable(), "Bearer viewer-token", {}, Scope::kConv).status();
  EXPECT_TRUE(absl::IsPermissionDenied(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("\"viewer\" lacks the scope \"conv\""));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("viewer-token")));
}

TEST(Authorize, AClientCertificateNamedInTheTableIsLetIn) {
  absl::StatusOr<Principal> principal = Authorize(RealTable(), "", {"batch-job"}, Scope::kConv);
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->name, "batch");
}

}  // namespace
}  // namespace convserve::server
