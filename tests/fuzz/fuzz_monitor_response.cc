// What criusd reads from a pod's monitor, which a container that got out
// may control: the answer to a call (CallMonitor, with the descriptors an
// attach answer carries), a Watch's answer and the reports that follow it
// (WatchMonitor, then read as MonitorWatch reads them), and an exit record
// (a ContainerState file). A stand-in monitor listens on a real
// monitor.sock, reads each request and answers with the input's packets,
// each with as many descriptors as its flag byte says, then closes.
// The input: a byte choosing the exchange, then packets of a flag byte
// (low 4 bits: descriptors), a 16-bit little-endian length and the bytes.
#include <fcntl.h>
#include <semaphore.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "monitor.pb.h"
#include "sandbox/monitor_client.h"
#include "sandbox/monitor_wire.h"
#include "tests/fuzz/fd_check.h"

namespace {

[[noreturn]] void Fail(const char* why) {
  std::fprintf(stderr, "fuzz_monitor_response: %s\n", why);
  std::abort();
}

struct Packet {
  const uint8_t* data;
  size_t size;
  unsigned fds;
};

class StandIn {
 public:
  StandIn() {
    google::protobuf::SetLogHandler(nullptr);  // quiet about each string that is not UTF-8
    char tmpl[] = "/tmp/crius-fuzz-monitor-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) Fail("mkdtemp");
    dir_ = tmpl;
    null_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    listen_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    crius::sandbox::MonitorSocket(dir_).copy(addr.sun_path, sizeof addr.sun_path - 1);
    if (null_ < 0 || listen_ < 0 || ::bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_, 4) != 0) {
      Fail("listen on the stand-in's monitor.sock");
    }
    sem_init(&go_, 0, 0);
    sem_init(&done_, 0, 0);
    std::thread([this] { Serve(); }).detach();
  }
  // Never destroyed: its thread serves until the process ends. What it
  // made on disk goes then.
  void RemoveAtExit() {
    static std::string dir = dir_;
    std::atexit([] {
      ::unlink(crius::sandbox::MonitorSocket(dir).c_str());
      ::rmdir(dir.c_str());
    });
  }

  const std::string& dir() const { return dir_; }

  // Answers the next `connections` connections with `packets`; Wait()
  // returns once they are answered.
  void Expect(std::vector<Packet> packets, int connections) {
    packets_ = std::move(packets);
    for (int i = 0; i < connections; ++i) sem_post(&go_);
    pending_ = connections;
  }
  void Wait() {
    for (; pending_ > 0; --pending_) Await(&done_);
  }

 private:
  // libFuzzer's -timeout alarm interrupts waits (EINTR).
  static void Await(sem_t* s) {
    while (sem_wait(s) != 0) {
    }
  }

  void Serve() {
    for (;;) {
      Await(&go_);
      int conn;
      do {
        conn = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      } while (conn < 0 && errno == EINTR);
      if (conn < 0) Fail("accept");
      crius::monitor::Request req;
      if (crius::sandbox::ReceiveMessage(conn, &req).ok()) {
        for (const Packet& p : packets_) {
          if (!Send(conn, p)) break;  // criusd has read what it wanted and closed
        }
      }
      ::close(conn);
      sem_post(&done_);
    }
  }

  bool Send(int conn, const Packet& p) {
    struct iovec iov = {const_cast<uint8_t*>(p.data), p.size};
    struct msghdr mh = {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 15)];
    if (p.fds > 0) {
      mh.msg_control = control;
      mh.msg_controllen = CMSG_SPACE(sizeof(int) * p.fds);
      struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * p.fds);
      for (unsigned i = 0; i < p.fds; ++i) std::memcpy(CMSG_DATA(c) + i * sizeof(int), &null_, sizeof(int));
    }
    ssize_t n;
    do {
      n = ::sendmsg(conn, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n >= 0;
  }

  std::string dir_;
  int null_ = -1, listen_ = -1;
  sem_t go_, done_;
  std::vector<Packet> packets_;
  int pending_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static StandIn& monitor = [] () -> StandIn& {
    auto* m = new StandIn();
    m->RemoveAtExit();
    return *m;
  }();
  const int lowest = crius::fuzz::LowestFreeFd();
  if (size == 0) return 0;
  unsigned exchange = data[0] % 5;
  std::vector<Packet> packets;
  for (size_t at = 1; at + 3 <= size;) {
    size_t len = std::min<size_t>(data[at + 1] | data[at + 2] << 8, size - at - 3);
    packets.push_back({data + at + 3, len, data[at] & 15u});
    at += 3 + len;
  }
  if (exchange == 4) {  // an exit record, as criusd reads it when the monitor is gone
    crius::monitor::ContainerState recorded;
    if (!packets.empty()) {
      (void)recorded.ParseFromArray(packets[0].data, static_cast<int>(packets[0].size));
    }
    return 0;
  }
  monitor.Expect(std::move(packets), 1);
  if (exchange == 3) {
    absl::StatusOr<crius::UniqueFd> watch = crius::sandbox::WatchMonitor(monitor.dir());
    if (watch.ok()) {
      crius::monitor::Response told;
      while (crius::sandbox::ReceiveMessage(watch->get(), &told).ok()) {
      }
    }
  } else {
    crius::monitor::Request req;
    if (exchange == 0) req.mutable_hello();
    if (exchange == 1) req.mutable_signal()->set_id("c");
    if (exchange == 2) req.mutable_attach()->set_id("c");
    std::vector<crius::UniqueFd> fds;
    absl::StatusOr<crius::monitor::Response> resp =
        crius::sandbox::CallMonitor(monitor.dir(), req, 2000, exchange == 2 ? &fds : nullptr);
    if (fds.size() > 8) Fail("more descriptors than one packet can carry");
    if (resp.ok() && resp->code() != 0) Fail("an error answer taken as success");
  }
  monitor.Wait();
  crius::fuzz::CheckFdsClosed("fuzz_monitor_response", lowest);
  return 0;
}
