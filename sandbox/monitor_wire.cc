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

namespace {

// One sendmsg of `data` with `fds` (SCM_RIGHTS); -1 and errno on failure.
ssize_t SendPacket(int sock, const char* data, size_t size, const std::vector<int>& fds) {
  struct iovec iov = {const_cast<char*>(data), size};
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
    n = ::sendmsg(sock, &mh, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n;
}

// One recvmsg into `buf`; descriptors that came with it are kept in `fds`
// if given, else closed. -1 and errno on failure.
ssize_t ReceivePacket(int sock, char* buf, size_t size, int flags, std::vector<UniqueFd>* fds) {
  struct iovec iov = {buf, size};
  struct msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return n;
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
  return n;
}

}  // namespace

absl::Status SendMessage(int fd, const google::protobuf::MessageLite& msg, const std::vector<int>& fds) {
  // A leading version byte: the packet is never empty (an empty packet reads
  // like a closed socket), and a future format can be told apart.
  std::string bytes(1, kWireVersion);
  if (!msg.AppendToString(&bytes)) return absl::InternalError("serialize monitor message");
  if (bytes.size() > kMaxPacket) {
    return absl::InvalidArgumentError(absl::StrCat("monitor message of ", bytes.size(),
                                                   " bytes is larger than ", kMaxPacket));
  }
  if (SendPacket(fd, bytes.data(), bytes.size(), fds) < 0) return ErrnoError(errno, "send to monitor socket");
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
  ssize_t n = ReceivePacket(fd, buf.data(), buf.size(), 0, fds);
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

absl::Status SendFd(int sock, int fd) {
  if (SendPacket(sock, "f", 1, {fd}) != 1) return ErrnoError(errno, "send a descriptor");
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> ReceiveFd(int sock, int flags) {
  char byte;
  std::vector<UniqueFd> fds;
  ssize_t n = ReceivePacket(sock, &byte, 1, flags, &fds);
  if (n < 0) return ErrnoError(errno, "receive a descriptor");
  if (fds.empty()) return absl::NotFoundError("no descriptor came (the sender closed the socket)");
  return std::move(fds[0]);
}

}  // namespace crius::sandbox
