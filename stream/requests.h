// The streaming requests kubelet has asked for and not yet used: Exec,
// Attach and PortForward answer with a URL holding a token, and the token
// is good for one connection within its lifetime (kubelet's own streaming
// server: one minute, at most 1000 waiting).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace crius::stream {

struct Request {
  enum class Kind { kExec, kAttach, kPortForward };
  Kind kind = Kind::kExec;
  std::string container_id;  // exec, attach
  std::vector<std::string> cmd;  // exec
  bool tty = false;
  bool stdin = false;
  bool stdout = false;
  bool stderr = false;
  std::string pod_id;           // port-forward
  std::vector<int32_t> ports;   // port-forward: the ports asked for (may be empty)
};

const char* KindPath(Request::Kind kind);  // "exec", "attach", "portforward"

class RequestCache {
 public:
  static constexpr size_t kMaxInFlight = 1000;

  explicit RequestCache(absl::Duration ttl) : ttl_(ttl) {}
  // A new token for `req`; ResourceExhausted when too many are waiting.
  absl::StatusOr<std::string> Insert(Request req);
  // The request of `token` if it is known, unused and unexpired; it is
  // used up either way.
  std::optional<Request> Consume(const std::string& token);

 private:
  void DropExpired(absl::Time now);

  const absl::Duration ttl_;
  std::mutex mu_;
  struct Entry {
    Request req;
    absl::Time expires;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace crius::stream
