// Exec, Attach and PortForward: each validates the request and answers with
// a one-time URL on the streaming server (stream/server.h); the server
// calls back here, through StreamBackend, when the client connects.
#include "cri/container_stream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "cri/container_ops.h"
#include "cri/exec_process.h"
#include "cri/handlers.h"
#include "cri/unikernel.h"
#include "sandbox/monitor_client.h"

namespace crius::cri {
namespace {

// An exec's process, seen by the streaming server.
class ExecIo : public stream::Io {
 public:
  explicit ExecIo(ExecChild child) : child_(std::move(child)) {}
  absl::StatusOr<int> Finish() override { return child_.Reap(child_.ReadReport()); }
  UniqueFd tty;  // a copy of the terminal's master, for the window size

 private:
  ExecChild child_;  // killed with this object if it still runs
};

// The container's own stdio, through its monitor.
class AttachIo : public stream::Io {
 public:
  AttachIo(std::string pod_dir, std::string id, bool stdin_once)
      : pod_dir_(std::move(pod_dir)), id_(std::move(id)), stdin_once_(stdin_once) {}
  absl::StatusOr<int> Finish() override { return 0; }
  void StdinClosed() override {
    if (!stdin_once_) return;
    crius::monitor::Request req;
    req.mutable_close_stdin()->set_id(id_);
    if (absl::Status st = sandbox::CallMonitor(pod_dir_, req).status(); !st.ok()) {
      LOG_WARN("close the stdin of container %s: %s", id_, st.message());
    }
  }
  UniqueFd tty;

 private:
  const std::string pod_dir_;
  const std::string id_;
  const bool stdin_once_;
};

absl::Status CheckStdio(bool in, bool out, bool err, bool tty) {
  if (!in && !out && !err) return absl::InvalidArgumentError("stdin, stdout, stderr: one of them must be set");
  if (tty && err) return absl::InvalidArgumentError("tty, stderr: a terminal has no separate stderr");
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Container>> FindContainer(Runtime& rt, const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("container_id: is empty");
  std::shared_ptr<Container> c = rt.containers().Find(id);
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("container ", id, " not found"));
  return c;
}

absl::Status CheckRunning(const Container& c, absl::string_view what) {
  if (c.state != kContainerRunning) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", c.id, " is not running (", c.state, "): ", what, " needs a running container"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<pid_t> RunningPid(Runtime& rt, Container& c, Pod& pod) {
  // The monitor knows the container's process: it must be running now.
  crius::monitor::Request hello;
  hello.mutable_hello();
  // no crash point: a question; it changes nothing
  absl::StatusOr<crius::monitor::Response> state = sandbox::CallMonitor(pod.dir, hello);
  if (state.ok()) {
    for (const crius::monitor::ContainerState& s : state->pod().containers()) {
      if (s.id() == c.id && s.phase() == crius::monitor::ContainerState::RUNNING) return s.pid();
    }
  }
  RefreshContainers(rt, pod);
  return absl::FailedPreconditionError(
      absl::StrCat("container ", c.id, " is not running (", c.state, "): exec needs a running container"));
}

absl::StatusOr<std::unique_ptr<stream::Io>> StreamBackend::Exec(const stream::Request& req) {
  CRIUS_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, FindContainer(rt_, req.container_id));
  std::shared_ptr<Pod> pod = rt_.pods().Get(c->pod_id);
  if (pod == nullptr) return absl::NotFoundError(absl::StrCat("pod sandbox ", c->pod_id, " not found"));
  CRIUS_ASSIGN_OR_RETURN(pid_t pid, RunningPid(rt_, *c, *pod));
  ExecStdio stdio{.tty = req.tty, .stdin = req.stdin, .stdout = req.stdout, .stderr = req.stderr};
  CRIUS_ASSIGN_OR_RETURN(ExecChild child,
                         SpawnExec(rt_.monitor_binary(), ContainerSpecPath(*c), pid, req.cmd, stdio));
  UniqueFd in = std::move(child.stdin_w), out = std::move(child.stdout_r), err = std::move(child.stderr_r);
  // A copy: the child keeps its own, to wait for the helper when it ends it.
  UniqueFd exited(::fcntl(child.pidfd.get(), F_DUPFD_CLOEXEC, 0));
  if (!exited) return ErrnoError(errno, "dup the exec's pidfd");
  auto io = std::make_unique<ExecIo>(std::move(child));
  if (req.tty) {
    io->tty.reset(::fcntl(out.get(), F_DUPFD_CLOEXEC, 0));
    io->tty_fd = io->tty.get();
    if (!req.stdin) in.reset();
  }
  io->stdin_w = std::move(in);
  io->stdout_r = std::move(out);
  io->stderr_r = std::move(err);
  io->exited = std::move(exited);
  return io;
}

absl::StatusOr<std::unique_ptr<stream::Io>> StreamBackend::Attach(const stream::Request& req) {
  CRIUS_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, FindContainer(rt_, req.container_id));
  std::shared_ptr<Pod> pod = rt_.pods().Get(c->pod_id);
  if (pod == nullptr) return absl::NotFoundError(absl::StrCat("pod sandbox ", c->pod_id, " not found"));
  crius::monitor::Request attach;
  attach.mutable_attach()->set_id(c->id);
  std::vector<UniqueFd> fds;
  // no crash point: a stream; nothing of it outlives the connection
  CRIUS_ASSIGN_OR_RETURN(crius::monitor::Response resp, sandbox::CallMonitor(pod->dir, attach, 10000, &fds));
  if (fds.empty()) return absl::InternalError("attach: the monitor sent no output socket");
  auto io = std::make_unique<AttachIo>(pod->dir, c->id, c->config.stdin_once());
  io->tagged_r = std::move(fds[0]);
  if (fds.size() > 1) {
    if (c->config.tty()) {
      io->tty.reset(::fcntl(fds[1].get(), F_DUPFD_CLOEXEC, 0));
      io->tty_fd = io->tty.get();
    }
    if (req.stdin) io->stdin_w = std::move(fds[1]);
  }
  return io;
}

absl::StatusOr<UniqueFd> StreamBackend::Dial(const std::string& pod_id, int port) {
  std::shared_ptr<Pod> pod = rt_.pods().Get(pod_id);
  if (pod == nullptr) return absl::NotFoundError(absl::StrCat("pod sandbox ", pod_id, " not found"));
  if (pod->state != kPodReady) {
    return absl::FailedPreconditionError(absl::StrCat("pod sandbox ", pod_id, " is not ready"));
  }
  std::string netns;
  auto it = pod->namespaces.find("net");
  if (it != pod->namespaces.end()) netns = it->second;
  // A unikernel guest is its pod IP, and the pod's own stack never sees its
  // traffic: it is reached from the node, as a Service reaches it.
  in_addr_t to = htonl(INADDR_LOOPBACK);
  if (!PodFlavour(rt_, *pod).empty()) {
    struct in_addr ip = {};
    if (pod->ips.empty() || ::inet_pton(AF_INET, pod->ips.front().c_str(), &ip) != 1) {
      return absl::FailedPreconditionError(absl::StrCat("pod sandbox ", pod_id, " has no IPv4 address"));
    }
    netns.clear();
    to = ip.s_addr;
  }
  // The socket is made in the pod's network namespace by a thread that
  // enters it (a thread's namespace is its own), then used from anywhere.
  absl::StatusOr<UniqueFd> result = absl::InternalError("dial: not run");
  std::thread dialer([&] {
    if (!netns.empty()) {
      UniqueFd ns(::open(netns.c_str(), O_RDONLY | O_CLOEXEC));
      if (!ns || ::setns(ns.get(), CLONE_NEWNET) != 0) {
        result = ErrnoError(errno, absl::StrCat("enter the network namespace of pod ", pod_id));
        return;
      }
    }
    UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) {
      result = ErrnoError(errno, "socket");
      return;
    }
    struct sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = to;
    struct timeval tv = {5, 0};  // loopback answers at once; a full backlog does not
    ::setsockopt(sock.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      char text[INET_ADDRSTRLEN] = "?";
      ::inet_ntop(AF_INET, &addr.sin_addr, text, sizeof text);
      result = ErrnoError(errno, absl::StrCat("dial tcp4 ", text, ":", port));
      return;
    }
    struct timeval none = {0, 0};
    ::setsockopt(sock.get(), SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
    result = std::move(sock);
  });
  dialer.join();
  return result;
}

absl::Status ContainerExec(Runtime& rt, const v1::ExecRequest& req, v1::ExecResponse* resp) {
  CRIUS_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, FindContainer(rt, req.container_id()));
  if (req.cmd_size() == 0 || req.cmd(0).empty()) return absl::InvalidArgumentError("cmd: is empty");
  CRIUS_RETURN_IF_ERROR(CheckStdio(req.stdin(), req.stdout(), req.stderr(), req.tty()));
  CRIUS_RETURN_IF_ERROR(CheckRunning(*c, "exec"));
  if (std::shared_ptr<Pod> pod = rt.pods().Get(c->pod_id)) {
    CRIUS_RETURN_IF_ERROR(RefuseIntoGuest(rt, *pod, absl::StrCat("exec into container ", c->id)));
  }
  if (rt.streaming() == nullptr) return absl::UnavailableError("the streaming server is not running");
  stream::Request r;
  r.kind = stream::Request::Kind::kExec;
  r.container_id = c->id;
  r.cmd.assign(req.cmd().begin(), req.cmd().end());
  r.tty = req.tty();
  r.stdin = req.stdin();
  r.stdout = req.stdout();
  r.stderr = req.stderr();
  CRIUS_ASSIGN_OR_RETURN(std::string url, rt.streaming()->Url(std::move(r)));
  resp->set_url(url);
  return absl::OkStatus();
}

absl::Status ContainerAttach(Runtime& rt, const v1::AttachRequest& req, v1::AttachResponse* resp) {
  CRIUS_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, FindContainer(rt, req.container_id()));
  CRIUS_RETURN_IF_ERROR(CheckStdio(req.stdin(), req.stdout(), req.stderr(), req.tty()));
  if (req.stdin() && !c->config.stdin()) {
    return absl::InvalidArgumentError(absl::StrCat("stdin: container ", c->id, " was not created with stdin"));
  }
  if (req.tty() && !c->config.tty()) {
    return absl::InvalidArgumentError(absl::StrCat("tty: container ", c->id, " was not created with a tty"));
  }
  CRIUS_RETURN_IF_ERROR(CheckRunning(*c, "attach"));
  if (std::shared_ptr<Pod> pod = rt.pods().Get(c->pod_id)) {
    CRIUS_RETURN_IF_ERROR(RefuseIntoGuest(rt, *pod, absl::StrCat(
        "attach to container ", c->id, " (its console output is in the container's log)")));
  }
  if (rt.streaming() == nullptr) return absl::UnavailableError("the streaming server is not running");
  stream::Request r;
  r.kind = stream::Request::Kind::kAttach;
  r.container_id = c->id;
  r.tty = c->config.tty();
  r.stdin = req.stdin();
  r.stdout = req.stdout();
  r.stderr = req.stderr() && !c->config.tty();
  CRIUS_ASSIGN_OR_RETURN(std::string url, rt.streaming()->Url(std::move(r)));
  resp->set_url(url);
  return absl::OkStatus();
}

absl::Status PodPortForward(Runtime& rt, const v1::PortForwardRequest& req, v1::PortForwardResponse* resp) {
  if (req.pod_sandbox_id().empty()) return absl::InvalidArgumentError("pod_sandbox_id: is empty");
  for (int i = 0; i < req.port_size(); ++i) {
    if (req.port(i) < 1 || req.port(i) > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("port[", i, "]: ", req.port(i), " is not a TCP port"));
    }
  }
  std::shared_ptr<Pod> pod = rt.pods().Find(req.pod_sandbox_id());
  if (pod == nullptr) return absl::NotFoundError(absl::StrCat("pod sandbox ", req.pod_sandbox_id(), " not found"));
  if (pod->state != kPodReady) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod sandbox ", pod->id, " is not ready (", pod->state, "): nothing to forward to"));
  }
  if (rt.streaming() == nullptr) return absl::UnavailableError("the streaming server is not running");
  stream::Request r;
  r.kind = stream::Request::Kind::kPortForward;
  r.pod_id = pod->id;
  r.ports.assign(req.port().begin(), req.port().end());
  CRIUS_ASSIGN_OR_RETURN(std::string url, rt.streaming()->Url(std::move(r)));
  resp->set_url(url);
  return absl::OkStatus();
}

}  // namespace crius::cri
