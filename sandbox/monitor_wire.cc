#include "sandbox/monitor_wire.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include <google/protobuf/message_lite.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace crius::sandbox {
namespace {
constexpr char kWireVersion = 1;
}  // namespace

SocketPath::~SocketPath() {
  if (dir_fd >= 0) ::close(dir_fd);
}

absl::StatusOr<std::unique_ptr<SocketPath>> MonitorSocketPath(const std::string& dir) {
  auto p = std::make_unique<SocketPath>();
  p->dir_fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (p->dir_fd < 0) return ErrnoError(errno, absl::StrCat("open ", dir));
  p->path = absl::StrCat("/proc/self/fd/", p->dir_fd, "/monitor.sock");
  return p;
}

absl::Status SendMessage(int fd, const google::protobuf::MessageLite& msg) {
  // A leading version byte: the packet is never empty (an empty packet reads
  // like a closed socket), and a future format can be told apart.
  std::string bytes(1, kWireVersion);
  if (!msg.AppendToString(&bytes)) return absl::InternalError("serialize monitor message");
  if (bytes.size() > kMaxPacket) {
    return absl::InvalidArgumentError(absl::StrCat("monitor message of ", bytes.size(),
                                                   " bytes is larger than ", kMaxPacket));
  }
  ssize_t n;
  do {
    n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError(errno, "send to monitor socket");
  return absl::OkStatus();
}

absl::Status ReceiveMessage(int fd, google::protobuf::MessageLite* msg) {
  // Peek the packet's size first, so a small message costs a small buffer.
  ssize_t size;
  do {
    size = ::recv(fd, nullptr, 0, MSG_PEEK | MSG_TRUNC);
  } while (size < 0 && errno == EINTR);
  if (size < 0) return ErrnoError(errno, "receive from monitor socket");
  std::vector<char> buf(std::max<size_t>(static_cast<size_t>(size), 1));
  ssize_t n;
  do {
    n = ::recv(fd, buf.data(), buf.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError(errno, "receive from monitor socket");
  if (n == 0) return absl::NotFoundError("the monitor socket was closed");
  if (buf[0] != kWireVersion) {
    return absl::DataLossError(absl::StrCat("monitor message of unknown version ", int{buf[0]}));
  }
  if (!msg->ParseFromArray(buf.data() + 1, static_cast<int>(n) - 1)) {
    return absl::DataLossError("unparsable monitor message");
  }
  return absl::OkStatus();
}

}  // namespace crius::sandbox
