// fuzz_auth: bytes -> a tokens file (--auth-tokens-file) and the credentials
// a call presents -> ParsePrincipalTable, and Authorize for every scope, which
// the server runs on every call before reading its request. The call's
// `authorization` metadata and its client certificate's common names are the
// first bytes of a connection an attacker controls.
//
// Input: the tokens file's contents, '\0', the authorization header, then
// '\0'-separated certificate common names. The credentials are also checked
// against a fixed table whose token ("alice-token") and common name
// ("client-bob") are in the dictionary, so that the accepting paths are
// reached whatever the file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "server/auth.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using convserve::server::Authorize;
using convserve::server::ParsePrincipalTable;
using convserve::server::PrincipalTable;
using convserve::server::Scope;

constexpr char kFixedTable[] =
    "# sha256(\"alice-token\")\n"
    "9c220f200955d76c0a38d308225e0ef10c5f971acaf2f8d1d8f732affa5bd1dc alice conv,register\n"
    "cn=client-bob bob info\n";

void CheckAuthorize(const PrincipalTable& table, absl::string_view header,
                    const std::vector<std::string>& names) {
  for (Scope scope : {Scope::kConv, Scope::kRegister, Scope::kInfo}) {
    absl::StatusOr<convserve::server::Principal> principal = Authorize(table, header, names, scope);
    if (principal.ok()) {
      FUZZ_CHECK((principal->scopes & static_cast<uint32_t>(scope)) != 0, principal->name);
      bool listed = false;
      for (const PrincipalTable::Entry& entry : table.entries) {
        listed |= entry.principal.name == principal->name;
      }
      FUZZ_CHECK(listed, principal->name);
      continue;
    }
    const absl::Status& status = principal.status();
    FUZZ_CHECK(absl::IsUnauthenticated(status) || absl::IsPermissionDenied(status),
               status.ToString());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::vector<absl::string_view> parts = absl::StrSplit(bytes, '\0');
  const absl::string_view contents = parts[0];
  const absl::string_view header = parts.size() > 1 ? parts[1] : absl::string_view();
  std::vector<std::string> names;
  for (size_t i = 2; i < parts.size(); ++i) names.emplace_back(parts[i]);

  absl::StatusOr<PrincipalTable> table = ParsePrincipalTable(contents);
  if (table.ok()) {
    for (const PrincipalTable::Entry& entry : table->entries) {
      FUZZ_CHECK(entry.token_sha256.empty() != entry.common_name.empty(), entry.principal.name);
      FUZZ_CHECK(entry.token_sha256.empty() || entry.token_sha256.size() == 32,
                 entry.principal.name);
    }
    CheckAuthorize(*table, header, names);
  } else {
    FUZZ_CHECK(absl::IsInvalidArgument(table.status()), table.status().ToString());
  }
  static const PrincipalTable* const fixed = new PrincipalTable(*ParsePrincipalTable(kFixedTable));
  CheckAuthorize(*fixed, header, names);
  return 0;
}
