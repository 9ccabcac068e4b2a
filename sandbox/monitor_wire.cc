#include "sandbox/monitor_wire.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
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

absl::Status SendMessage(int fd, const google::protobuf::MessageLite& msg, const std::vector<int>& fds) {
  // A leading version byte: the packet is never empty (an empty packet reads
  // like a closed socket), and a future format can be told apart.
  std::string bytes(1, kWireVersion);
  if (!msg.AppendToString(&bytes)) return absl::InternalError("serialize monitor message");
  if (bytes.size() > kMaxPacket) {
    return absl::InvalidArgumentError(absl::StrCat("monitor message of ", bytes.size(),
                                                   " bytes is larger than ", kMaxPacket));
  }
  struct iovec iov = {bytes.data(), bytes.size()};
  struct msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    mh.msg_control = control.data();
    mh.msg_controllen = control.size();
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(fd, &mh, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError(errno, "send to monitor socket");
  return absl::OkStatus();
}

absl::Status ReceiveMessage(int fd, google::protobuf::MessageLite* msg, std::vector<UniqueFd>* fds) {
  // Peek the packet's size first, so a small message costs a small buffer.
  ssize_t size;
  do {
    size = ::recv(fd, nullptr, 0, MSG_PEEK | MSG_TRUNC);
  } while (size < 0 && errno == EINTR);
  if (size < 0) return ErrnoError(errno, "receive from monitor socket");
  std::vector<char> buf(std::max<size_t>(static_cast<size_t>(size), 1));
  struct iovec iov = {buf.data(), buf.size()};
  struct msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError(errno, "receive from monitor socket");
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int got;
      std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
      UniqueFd owned(got);
      if (fds != nullptr) fds->push_back(std::move(owned));
    }
  }
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
