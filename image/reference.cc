#include "image/reference.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace crius::image {
namespace {

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("image reference \"", text, "\": ", why));
}

// A path component: [a-z0-9]+ joined by '.', '_', '__' or '-'+.
bool IsPathComponent(absl::string_view c) {
  if (c.empty() || !absl::ascii_isalnum(c.front()) || !absl::ascii_isalnum(c.back())) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    char ch = c[i];
    if (absl::ascii_islower(ch) || absl::ascii_isdigit(ch)) continue;
    if (ch == '.' || ch == '-') {
      if (ch == '.' && !absl::ascii_isalnum(c[i + 1])) return false;
      continue;
    }
    if (ch == '_') {
      if (c[i + 1] == '_') ++i;  // "__" is one separator
      if (!absl::ascii_isalnum(c[i + 1])) return false;
      continue;
    }
    return false;
  }
  return true;
}

// host[:port]: letters, digits, '-', '.', or an [IPv6] literal.
bool IsDomain(absl::string_view d) {
  absl::string_view host = d;
  if (size_t colon = d.rfind(':'); colon != absl::string_view::npos && d.back() != ']') {
    absl::string_view port = d.substr(colon + 1);
    if (port.empty() || port.size() > 5) return false;
    for (char ch : port) {
      if (!absl::ascii_isdigit(ch)) return false;
    }
    host = d.substr(0, colon);
  }
  if (host.empty()) return false;
  if (host.front() == '[') return host.back() == ']' && host.size() > 2;
  for (char ch : host) {
    if (!absl::ascii_isalnum(ch) && ch != '-' && ch != '.') return false;
  }
  return true;
}

bool IsTag(absl::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  if (!absl::ascii_isalnum(t[0]) && t[0] != '_') return false;
  for (char ch : t) {
    if (!absl::ascii_isalnum(ch) && ch != '_' && ch != '.' && ch != '-') return false;
  }
  return true;
}

}  // namespace

bool IsDigest(absl::string_view text) {
  if (!absl::ConsumePrefix(&text, "sha256:") || text.size() != 64) return false;
  for (char ch : text) {
    if (!absl::ascii_isdigit(ch) && !(ch >= 'a' && ch <= 'f')) return false;
  }
  return true;
}

std::string Reference::String() const {
  std::string out = Repository();
  if (!tag.empty()) absl::StrAppend(&out, ":", tag);
  if (!digest.empty()) absl::StrAppend(&out, "@", digest);
  return out;
}

std::string Reference::DigestRef(absl::string_view d) const {
  return absl::StrCat(Repository(), "@", d);
}

absl::StatusOr<Reference> ParseReference(absl::string_view text) {
  if (text.empty()) return Bad(text, "is empty");
  if (text.size() > 4096) return Bad(text.substr(0, 64), "is longer than 4096 characters");
  Reference ref;
  absl::string_view rest = text;
  if (size_t at = rest.find('@'); at != absl::string_view::npos) {
    ref.digest = std::string(rest.substr(at + 1));
    if (!IsDigest(ref.digest)) {
      return Bad(text, "the digest is not sha256: followed by 64 lowercase hex digits");
    }
    rest = rest.substr(0, at);
  }
  // A tag follows the last ':' after the last '/' (a ':' before it is a port).
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos && (slash == absl::string_view::npos || colon > slash)) {
    ref.tag = std::string(rest.substr(colon + 1));
    if (!IsTag(ref.tag)) return Bad(text, absl::StrCat("\"", ref.tag, "\" is not a valid tag"));
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return Bad(text, "has no repository name");
  std::vector<absl::string_view> parts = absl::StrSplit(rest, '/');
  // The first component is a registry host when it looks like one.
  absl::string_view first = parts.front();
  // (docker's rule: it has a '.' or ':', is "localhost", or has capitals,
  // which no repository path may have).
  bool has_domain = parts.size() > 1 &&
                    (absl::StrContains(first, '.') || absl::StrContains(first, ':') ||
                     first == "localhost" ||
                     std::any_of(first.begin(), first.end(), absl::ascii_isupper));
  if (has_domain) {
    if (!IsDomain(first)) return Bad(text, absl::StrCat("\"", first, "\" is not a valid registry host"));
    ref.domain = std::string(first);
    parts.erase(parts.begin());
  } else {
    ref.domain = std::string(kDockerHub);
  }
  if (ref.domain == "index.docker.io") ref.domain = std::string(kDockerHub);
  for (absl::string_view c : parts) {
    if (!IsPathComponent(c)) {
      return Bad(text, absl::StrCat("\"", c, "\" is not a valid repository name component ",
                                    "(lowercase letters, digits and separators . _ __ -)"));
    }
  }
  ref.path = absl::StrJoin(parts, "/");
  if (ref.domain == kDockerHub && parts.size() == 1) ref.path = absl::StrCat("library/", ref.path);
  if (ref.Repository().size() > 255) return Bad(text, "the repository name is longer than 255 characters");
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

}  // namespace crius::image
