#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpc/grpc_security_constants.h"
#include "spdlog/spdlog.h"

namespace convserve::server {
namespace {

std::string Sha256(absl::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

absl::StatusOr<uint32_t> ParseScopes(absl::string_view text) {
  uint32_t scopes = 0;
  for (absl::string_view scope : absl::StrSplit(text, ',')) {
    if (scope == "conv") {
      scopes |= static_cast<uint32_t>(Scope::kConv);
    } else if (scope == "register") {
      scopes |= static_cast<uint32_t>(Scope::kRegister);
    } else if (scope == "info") {
      scopes |= static_cast<uint32_t>(Scope::kInfo);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown scope \"", scope, "\" (conv, register or info)"));
    }
  }
  return scopes;
}

absl::string_view ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kConv: return "conv";
    case Scope::kRegister: return "register";
    case Scope::kInfo: return "info";
  }
  return "?";
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  if (!file) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  return contents.str();
}

}  // namespace

absl::StatusOr<PrincipalTable> ParsePrincipalTable(absl::string_view contents) {
  PrincipalTable table;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_number;
    line = line.substr(0, line.find('#'));
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    auto error = [line_number](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": ", what));
    };
    if (fields.size() != 3) return error("expected <sha256 hex or cn=NAME> <name> <scopes>");
    PrincipalTable::Entry entry;
    if (absl::StartsWith(fields[0], "cn=")) {
      entry.common_name = std::string(fields[0].substr(3));
      if (entry.common_name.empty()) return error("empty common name");
    } else {
      if (fields[0].size() != 64 ||
          !std::all_of(fields[0].begin(), fields[0].end(), absl::ascii_isxdigit)) {
        return error("the first field is neither 64 hex digits (a token's SHA-256) nor cn=NAME");
      }
      entry.token_sha256 = absl::HexStringToBytes(absl::AsciiStrToLower(fields[0]));
    }
    entry.principal.name = std::string(fields[1]);
    absl::StatusOr<uint32_t> scopes = ParseScopes(fields[2]);
    if (!scopes.ok()) return error(scopes.status().message());
    entry.principal.scopes = *scopes;
    table.entries.push_back(std::move(entry));
  }
  return table;
}

absl::StatusOr<Principal> Authorize(const PrincipalTable& table,
                                    absl::string_view authorization_header,
                                    const std::vector<std::string>& certificate_common_names,
                                    Scope scope) {
  const Principal* found = nullptr;
  constexpr absl::string_view kBearer = "Bearer ";
  if (absl::StartsWithIgnoreCase(authorization_header, kBearer)) {
    const std::string digest = Sha256(authorization_header.substr(kBearer.size()));
    // Every entry is compared, each in constant time.
    for (const PrincipalTable::Entry& entry : table.entries) {
      if (entry.token_sha256.size() == digest.size() &&
          CRYPTO_memcmp(entry.token_sha256.data(), digest.data(), digest.size()) == 0) {
        found = &entry.principal;
      }
    }
  }
  if (found == nullptr) {
    for (const PrincipalTable::Entry& entry : table.entries) {
      for (const std::string& name : certificate_common_names) {
        if (!entry.common_name.empty() && entry.common_name == name) found = &entry.principal;
      }
    }
  }
  if (found == nullptr) {
    return absl::UnauthenticatedError(
        authorization_header.empty() && certificate_common_names.empty()
            ? "this server requires credentials: an `authorization: Bearer <token>` header or "
              "a client certificate it knows"
            : "unknown token or client certificate");
  }
  if ((found->scopes & static_cast<uint32_t>(scope)) == 0) {
    return absl::PermissionDeniedError(absl::StrCat("principal \"", found->name,
                                                    "\" lacks the scope \"", ScopeName(scope),
                                                    "\" this call needs"));
  }
  return *found;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Start(
    const std::string& path, std::chrono::milliseconds reload_interval) {
  absl::StatusOr<std::string> contents = ReadFile(path);
  if (!contents.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth-tokens-file: ", contents.status().message()));
  }
  absl::StatusOr<PrincipalTable> table = ParsePrincipalTable(*contents);
  if (!table.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth-tokens-file: ", path, ": ", table.status().message()));
  }
  return std::unique_ptr<Authenticator>(
      new Authenticator(path, reload_interval, std::move(*contents), std::move(*table)));
}

Authenticator::Authenticator(std::string path, std::chrono::milliseconds reload_interval,
                             std::string contents, PrincipalTable table)
    : path_(std::move(path)),
      reload_interval_(reload_interval),
      contents_(std::move(contents)),
      table_(std::make_shared<const PrincipalTable>(std::move(table))) {
  reloader_ = std::thread([this] { ReloadLoop(); });
}

Authenticator::~Authenticator() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  stop_requested_.notify_all();
  reloader_.join();
}

void Authenticator::ReloadLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_requested_.wait_for(lock, reload_interval_, [this] { return stopping_; })) {
    lock.unlock();
    absl::StatusOr<std::string> contents = ReadFile(path_);
    lock.lock();
    if (!contents.ok() || *contents == contents_) continue;
    absl::StatusOr<PrincipalTable> table = ParsePrincipalTable(*contents);
    contents_ = std::move(*contents);
    if (!table.ok()) {
      spdlog::error("tokens file {} not reloaded, keeping the previous principals: {}", path_,
                    std::string(table.status().message()));
      continue;
    }
    spdlog::info("tokens file {} reloaded: {} principals", path_, table->entries.size());
    table_ = std::make_shared<const PrincipalTable>(std::move(*table));
  }
}

std::shared_ptr<const PrincipalTable> Authenticator::table() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return table_;
}

absl::StatusOr<Principal> Authenticator::Check(const grpc::ServerContextBase& context,
                                               Scope scope) const {
  absl::string_view header;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    header = absl::string_view(it->second.data(), it->second.size());
  }
  std::vector<std::string> common_names;
  if (std::shared_ptr<const grpc::AuthContext> auth = context.auth_context()) {
    for (const grpc::string_ref& name : auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
      common_names.emplace_back(name.data(), name.size());
    }
  }
  return Authorize(*table(), header, common_names, scope);
}

std::vector<std::string> Authenticator::names() const {
  std::vector<std::string> names;
  for (const PrincipalTable::Entry& entry : table()->entries) {
    names.push_back(entry.principal.name);
  }
  return names;
}

}  // namespace convserve::server
