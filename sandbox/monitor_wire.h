// One protobuf message per SOCK_SEQPACKET packet: the framing between criusd
// and crius-monitor. Used by both ends.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace google::protobuf {
class MessageLite;
}

namespace crius::sandbox {

// Largest packet either end sends (a container spec with its mounts and env).
inline constexpr size_t kMaxPacket = 1 << 20;

// sockaddr_un paths are limited to 107 bytes, and a pod directory may be
// deeper than that: the socket is reached through /proc/self/fd/<dirfd>/.
struct SocketPath {
  int dir_fd = -1;  // O_PATH descriptor of the pod directory, owned
  std::string path;  // "/proc/self/fd/<dir_fd>/monitor.sock"
  ~SocketPath();
};
absl::StatusOr<std::unique_ptr<SocketPath>> MonitorSocketPath(const std::string& dir);

// `fds` go with the packet (SCM_RIGHTS).
absl::Status SendMessage(int fd, const google::protobuf::MessageLite& msg, const std::vector<int>& fds = {});
// Reads one packet into `msg`; NotFound when the peer closed the socket.
// Descriptors that came with it are kept in `fds` if given, else closed.
absl::Status ReceiveMessage(int fd, google::protobuf::MessageLite* msg, std::vector<UniqueFd>* fds = nullptr);

// One descriptor with a one-byte packet (SCM_RIGHTS), and its receipt:
// how a terminal's master made in a container reaches the monitor or criusd.
absl::Status SendFd(int sock, int fd);
// NotFound when the peer closed the socket without sending one; `flags` go
// to recvmsg (MSG_DONTWAIT).
absl::StatusOr<UniqueFd> ReceiveFd(int sock, int flags = 0);

}  // namespace crius::sandbox
