// What crius-monitor reads on its socket: requests from criusd, and a
// container's terminal master from the container's child. Each packet of
// the input is sent on a SOCK_SEQPACKET socketpair, as the monitor's socket
// delivers it, with as many descriptors attached as its flag byte says (up
// to 15, more than the reader has room for), and read as the monitor reads
// it: ReceiveMessage into a Request, or ReceiveFd. A request that parses
// must go back out with SendMessage and parse the same; no descriptor may
// be left open.
// A packet of the input: a flag byte (low 4 bits: descriptors; bit 4: read
// with ReceiveFd; bit 5: keep the descriptors that come with a message), a
// 16-bit little-endian length, the bytes.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "monitor.pb.h"
#include "sandbox/monitor_wire.h"
#include "tests/fuzz/fd_check.h"

namespace {

struct Wire {
  int criusd = -1, monitor = -1;  // the two ends
  int null = -1;                  // what the sender attaches
  Wire() {
    google::protobuf::SetLogHandler(nullptr);  // quiet about each string that is not UTF-8
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) std::abort();
    criusd = pair[0];
    monitor = pair[1];
    null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0) std::abort();
  }
};

[[noreturn]] void Fail(const char* why) {
  std::fprintf(stderr, "fuzz_monitor_request: %s\n", why);
  std::abort();
}

bool SendRaw(const Wire& w, const uint8_t* data, size_t size, unsigned nfds) {
  struct iovec iov = {const_cast<uint8_t*>(data), size};
  struct msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 15)];
  if (nfds > 0) {
    mh.msg_control = control;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    for (unsigned i = 0; i < nfds; ++i) std::memcpy(CMSG_DATA(c) + i * sizeof(int), &w.null, sizeof(int));
  }
  ssize_t n;
  do {
    n = ::sendmsg(w.criusd, &mh, MSG_NOSIGNAL);  // libFuzzer's -timeout alarm may interrupt it
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Wire wire;
  const int lowest = crius::fuzz::LowestFreeFd();
  while (size >= 3) {
    unsigned flags = data[0];
    size_t len = std::min<size_t>(data[1] | data[2] << 8, size - 3);
    const uint8_t* packet = data + 3;
    data += 3 + len;
    size -= 3 + len;
    if (!SendRaw(wire, packet, len, flags & 15)) Fail("send a packet");
    if (flags & 16) {
      (void)crius::sandbox::ReceiveFd(wire.monitor, MSG_DONTWAIT);
      continue;
    }
    crius::monitor::Request req;
    std::vector<crius::UniqueFd> fds;
    absl::Status st = crius::sandbox::ReceiveMessage(wire.monitor, &req, (flags & 32) ? &fds : nullptr);
    if (fds.size() > std::min(flags & 15u, 8u)) Fail("more descriptors kept than came");
    if (!st.ok()) continue;
    // Back out as criusd would send it, and in again.
    std::string bytes = req.SerializeAsString();
    if (!crius::sandbox::SendMessage(wire.criusd, req).ok()) Fail("a parsed request cannot be sent");
    crius::monitor::Request again;
    if (!crius::sandbox::ReceiveMessage(wire.monitor, &again).ok() || again.SerializeAsString() != bytes) {
      Fail("a request sent again parses differently");
    }
  }
  crius::fuzz::CheckFdsClosed("fuzz_monitor_request", lowest);
  return 0;
}
