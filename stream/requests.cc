#include "stream/requests.h"

#include <openssl/rand.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace crius::stream {

const char* KindPath(Request::Kind kind) {
  switch (kind) {
    case Request::Kind::kExec: return "exec";
    case Request::Kind::kAttach: return "attach";
    case Request::Kind::kPortForward: return "portforward";
  }
  return "";
}

void RequestCache::DropExpired(absl::Time now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = it->second.expires <= now ? entries_.erase(it) : std::next(it);
  }
}

absl::StatusOr<std::string> RequestCache::Insert(Request req) {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) return absl::InternalError("make a streaming token: no randomness");
  std::string token = absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<char*>(raw), sizeof raw));
  absl::Time now = absl::Now();
  std::lock_guard<std::mutex> lock(mu_);
  DropExpired(now);
  if (entries_.size() >= kMaxInFlight) {
    return absl::ResourceExhaustedError(
        absl::StrCat("maximum number of in-flight streaming requests (", kMaxInFlight, ") reached"));
  }
  entries_[token] = Entry{std::move(req), now + ttl_};
  return token;
}

std::optional<Request> RequestCache::Consume(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return std::nullopt;
  Entry e = std::move(it->second);
  entries_.erase(it);
  if (e.expires <= absl::Now()) return std::nullopt;
  return std::move(e.req);
}

}  // namespace crius::stream
