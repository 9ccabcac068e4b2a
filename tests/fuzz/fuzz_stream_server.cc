// A client of the streaming server, as kubelet, crictl or anything that can
// reach its port connects: the HTTP request and its upgrade (SPDY/3.1, or
// WebSocket with its subprotocols and port parameters), then WebSocket
// frames (masking, fragments, control frames, lengths) or SPDY frames, into
// exec, attach and port-forward sessions with a stand-in runtime. The bytes
// go to a real server through one end of a socketpair (Server::Serve), in
// pieces as a socket delivers them: the low 6 bits of the first byte say
// how big each piece is, and each is sent once the server has read the one
// before. As a client must (RFC 6455 4.1), what follows the request's head
// waits for the server's answer, unless bit 6 says to send on at once. The
// second byte says what the request asked for and how the runtime answers;
// "@E", "@A" and "@P" in the rest become fresh tokens of an exec, an attach
// and a port-forward. Once the client has sent everything and shut its
// side, the server must close the connection.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/sockios.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "stream/server.h"

namespace {

using crius::UniqueFd;
namespace stream = crius::stream;

[[noreturn]] void Fail(const char* why) {
  std::fprintf(stderr, "fuzz_stream_server: %s\n", why);
  std::abort();
}

// Bits of the second byte.
constexpr unsigned kTty = 1, kStdin = 2, kStdout = 4, kStderr = 8, kRuntimeFails = 16, kPorts = 32,
                   kPeerCloses = 64, kExitCode = 128;

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// A pipe whose read end is returned, with `text` in it and its write end closed.
UniqueFd Filled(const std::string& text) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) Fail("pipe");
  if (::write(p[1], text.data(), text.size()) != static_cast<ssize_t>(text.size())) Fail("write a pipe");
  ::close(p[1]);
  return UniqueFd(p[0]);
}

class StandInIo : public stream::Io {
 public:
  explicit StandInIo(int code) : code_(code) {}
  absl::StatusOr<int> Finish() override { return code_; }
  UniqueFd stdin_r;  // kept open so that stdin can be written
  UniqueFd tty;

 private:
  int code_;
};

// The runtime's side, as cri/container_stream.cc gives it: an exec's pipes
// and exit, an attach's tagged output packets, a port's connection.
class StandInRuntime : public stream::Backend {
 public:
  void Set(unsigned flags) { flags_ = flags; }
  // What the sessions of one input left open on our side.
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    peers_.clear();
  }

  absl::StatusOr<std::unique_ptr<stream::Io>> Exec(const stream::Request& req) override {
    if (flags_ & kRuntimeFails) return absl::FailedPreconditionError("container c is not running");
    auto io = std::make_unique<StandInIo>((flags_ & kExitCode) ? 3 : 0);
    io->stdout_r = Filled("out\n");
    io->stderr_r = Filled("err\n");
    Stdio(req, io.get());
    io->exited.reset(::eventfd(1, EFD_CLOEXEC));
    return io;
  }

  absl::StatusOr<std::unique_ptr<stream::Io>> Attach(const stream::Request& req) override {
    if (flags_ & kRuntimeFails) return absl::InternalError("attach: the monitor sent no output socket");
    auto io = std::make_unique<StandInIo>(0);
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) Fail("socketpair");
    for (const char* packet : {"\1out\n", "\2err\n", "\1", "\3odd\n"}) {
      (void)::send(pair[1], packet, std::strlen(packet), MSG_NOSIGNAL);
    }
    ::close(pair[1]);
    io->tagged_r.reset(pair[0]);
    Stdio(req, io.get());
    return io;
  }

  absl::StatusOr<UniqueFd> Dial(const std::string& pod_id, int port) override {
    if ((flags_ & kRuntimeFails) || port == 1) return absl::UnavailableError("connection refused");
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) Fail("socketpair");
    (void)::send(pair[1], "pong\n", 5, MSG_NOSIGNAL);
    if (flags_ & kPeerCloses) {
      ::close(pair[1]);
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      peers_.emplace_back(pair[1]);
    }
    return UniqueFd(pair[0]);
  }

 private:
  void Stdio(const stream::Request& req, StandInIo* io) {
    if (req.stdin) {
      int p[2];
      if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) Fail("pipe");
      io->stdin_r.reset(p[0]);
      io->stdin_w.reset(p[1]);
    }
    if (req.tty) {
      int master = -1, slave = -1;
      if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) Fail("openpty");
      ::close(slave);
      io->tty.reset(master);
      io->tty_fd = master;
    }
  }

  unsigned flags_ = 0;
  std::mutex mu_;
  std::vector<UniqueFd> peers_;
};

std::string ReadProc(const std::string& path) {
  char buf[512];
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail("read /proc");
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

// Whether the server's thread sleeps in epoll, waiting for more (asio polls
// epoll between handlers too, but does not sleep then).
bool ServerThreadWaits(const std::string& task) {
  std::string stat = ReadProc(task + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'S') return false;
  std::string nr = ReadProc(task + "/syscall");
  nr = nr.substr(0, nr.find(' '));
  return nr == std::to_string(SYS_epoll_wait) || nr == std::to_string(SYS_epoll_pwait);
}

std::string ServerThread() {
  for (int i = 0; i < 1000; ++i) {
    DIR* d = ::opendir("/proc/self/task");
    while (struct dirent* e = ::readdir(d)) {
      std::string task = std::string("/proc/self/task/") + e->d_name;
      char comm[32] = {};
      int fd = ::open((task + "/comm").c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      ssize_t n = ::read(fd, comm, sizeof comm - 1);
      ::close(fd);
      if (n > 0 && std::string(comm, n) == "crius-stream\n") {
        ::closedir(d);
        return task;
      }
    }
    ::closedir(d);
    ::usleep(1000);
  }
  Fail("no crius-stream thread");
}

// Once the connection is closed, the input is done when the server's thread
// waits for more: its objects are freed then (else libFuzzer takes what is
// still to be freed for a leak, and runs its costly check).
void WaitServerIdle(const std::string& task) {
  int64_t deadline = NowMs() + 1000;
  for (int seen = 0; seen < 2 && NowMs() < deadline;) {
    seen = ServerThreadWaits(task) ? seen + 1 : 0;
    sched_yield();
  }
}

struct Harness {
  StandInRuntime runtime;
  std::unique_ptr<stream::Server> server;
  std::string thread;
  Harness() {
    signal(SIGPIPE, SIG_IGN);  // as criusd
    crius::SetLogLevel(crius::LogLevel::kError);
    stream::ServerOptions options;  // idle connections close after hours, as in criusd
    absl::StatusOr<std::unique_ptr<stream::Server>> s = stream::Server::Start(options, &runtime);
    if (!s.ok()) Fail("start the streaming server");
    server = std::move(*s);
    thread = ServerThread();
  }
};

std::string Token(stream::Server& server, stream::Request::Kind kind, unsigned flags) {
  stream::Request req;
  req.kind = kind;
  req.container_id = "c";
  req.pod_id = "p";
  req.cmd = {"sh"};
  req.tty = flags & kTty;
  req.stdin = flags & kStdin;
  req.stdout = flags & kStdout;
  req.stderr = flags & kStderr;
  if (flags & kPorts) req.ports = {80, 1};
  absl::StatusOr<std::string> url = server.Url(std::move(req));
  if (!url.ok()) return "";
  return url->substr(url->rfind('/') + 1);
}

// The client's bytes with each placeholder (at most a few) made a token;
// `used` gets the path of each.
std::string WithTokens(Harness& h, const uint8_t* data, size_t size, unsigned flags, std::vector<std::string>* used) {
  std::string in(reinterpret_cast<const char*>(data), size), out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '@' && i + 1 < in.size() && used->size() < 4) {
      char k = in[i + 1];
      if (k == 'E' || k == 'A' || k == 'P') {
        stream::Request::Kind kind = k == 'E'   ? stream::Request::Kind::kExec
                                     : k == 'A' ? stream::Request::Kind::kAttach
                                                : stream::Request::Kind::kPortForward;
        std::string token = Token(*h.server, kind, flags);
        used->push_back(absl::StrCat("/", stream::KindPath(kind), "/", token));
        out += token;
        ++i;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

void Drain(int fd) {
  char buf[65536];
  while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

// Sends `piece` and waits (a while at most) until the server has read it:
// a unix socket's SIOCOUTQ counts what its peer has not read yet. False
// when the server has closed the connection.
bool SendPiece(int fd, const char* piece, size_t n) {
  int64_t deadline = NowMs() + 100;
  while (n > 0) {
    ssize_t sent = ::send(fd, piece, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0 && errno != EAGAIN) return false;
    if (sent > 0) {
      piece += sent;
      n -= static_cast<size_t>(sent);
    }
    for (int spins = 0;; ++spins) {
      Drain(fd);
      int unread = 0;
      if (::ioctl(fd, SIOCOUTQ, &unread) != 0 || unread == 0 || NowMs() > deadline) break;
      if (spins < 100) {
        sched_yield();
      } else {
        ::usleep(20);
      }
    }
  }
  return true;
}

// Sends bytes[from, to) in pieces; false when the server has closed.
bool SendPieces(int fd, const std::string& bytes, size_t from, size_t to, size_t piece) {
  for (size_t at = from; at < to; at += piece) {
    if (!SendPiece(fd, bytes.data() + at, std::min(piece, to - at))) return false;
  }
  return true;
}

// Waits a little for the server's first bytes (its answer to the request).
void AwaitAnswer(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  ::poll(&p, 1, 5);
}

// One connection: `bytes` sent in pieces of `piece` (what follows the head
// of the request once the server has answered, unless `at_once`), then the
// client's end shut; returns once the server has closed the connection.
void Connect(Harness& h, const std::string& bytes, size_t piece, bool at_once) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) Fail("socketpair");
  UniqueFd client(pair[0]);
  h.server->Serve(UniqueFd(pair[1]));
  size_t head = at_once ? std::string::npos : bytes.find("\r\n\r\n");
  head = head == std::string::npos ? bytes.size() : head + 4;
  if (SendPieces(client.get(), bytes, 0, head, piece)) {
    if (head < bytes.size()) AwaitAnswer(client.get());
    SendPieces(client.get(), bytes, head, bytes.size(), piece);
  }
  ::shutdown(client.get(), SHUT_WR);
  int64_t deadline = NowMs() + 8000;  // more than the 5 s the server gives a close
  for (;;) {
    struct pollfd p = {client.get(), POLLIN, 0};
    int64_t left = deadline - NowMs();
    if (left <= 0) Fail("the server kept the connection open after the client's end");
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[65536];
    ssize_t n = ::recv(client.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // closed (or reset)
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness h;
  if (size < 2) return 0;
  size_t piece = data[0] % 64 + 1;
  bool at_once = data[0] & 64;
  unsigned flags = data[1];
  h.runtime.Set(flags);
  std::vector<std::string> tokens;
  std::string bytes = WithTokens(h, data + 2, size - 2, flags, &tokens);
  Connect(h, bytes, std::max(piece, bytes.size() / 256), at_once);
  // Each token is used up, whether the input used it or not.
  for (const std::string& path : tokens) Connect(h, absl::StrCat("GET ", path, " HTTP/1.1\r\n\r\n"), 4096, true);
  h.runtime.Release();
  WaitServerIdle(h.thread);
  return 0;
}
