// The runtime's side of the streaming server: what exec, attach and
// port-forward connect to once a client brings its token.
#pragma once

#include <sys/types.h>

#include "cri/runtime.h"
#include "stream/server.h"

namespace crius::cri {

class StreamBackend : public stream::Backend {
 public:
  explicit StreamBackend(Runtime& rt) : rt_(rt) {}
  absl::StatusOr<std::unique_ptr<stream::Io>> Exec(const stream::Request& req) override;
  absl::StatusOr<std::unique_ptr<stream::Io>> Attach(const stream::Request& req) override;
  absl::StatusOr<UniqueFd> Dial(const std::string& pod_id, int port) override;

 private:
  Runtime& rt_;
};

// The pid (as the node sees it) of the container's running process, from
// its monitor; FailedPrecondition when it is not running.
absl::StatusOr<pid_t> RunningPid(Runtime& rt, Container& c, Pod& pod);

}  // namespace crius::cri
