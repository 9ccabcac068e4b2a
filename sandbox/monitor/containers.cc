// The monitor's containers: create (clone, parked before execve), start,
// signal, reap, log, remove.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "sandbox/monitor/container_init.h"
#include "sandbox/monitor/monitor.h"
#include "sandbox/monitor_wire.h"

namespace crius::monitor {
namespace {

constexpr int kSyncTimeoutMs = 60000;

// Reads the child's report: "R" (parked), "E..."/"I..." (failed), or EOF
// (it exec'd: the pipe is close-on-exec). Returns the text read.
absl::StatusOr<std::string> ReadSync(int fd) {
  std::string text;
  char buf[4096];
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    int r = ::poll(&p, 1, kSyncTimeoutMs);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return absl::DeadlineExceededError("the container process did not report in 60 s");
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return text;
    text.append(buf, static_cast<size_t>(n));
    if (text == "R") return text;
  }
}

absl::Status FromChild(const std::string& report) {
  if (report.empty()) return absl::InternalError("the container process exited during set-up");
  absl::StatusCode code =
      report[0] == 'I' ? absl::StatusCode::kInvalidArgument : absl::StatusCode::kInternal;
  return absl::Status(code, report.substr(1));
}


}  // namespace

Container* Monitor::Find(const std::string& id) {
  auto it = containers_.find(id);
  return it == containers_.end() ? nullptr : it->second.get();
}

absl::Status Monitor::Create(const ContainerSpec& spec, ContainerState* state) {
  if (Find(spec.id()) != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("container ", spec.id(), " exists in this pod"));
  }
  auto c = std::make_unique<Container>();
  c->spec = spec;
  c->state.set_id(spec.id());
  c->state.set_phase(ContainerState::CREATED);
  CRIUS_RETURN_IF_ERROR(c->log.Open(spec.log_path()));

  int sync[2], start[2], out[2], err[2], in[2] = {-1, -1};
  if (::pipe2(sync, O_CLOEXEC) != 0 || ::pipe2(start, O_CLOEXEC) != 0 ||
      ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 ||
      (spec.stdin() && !spec.tty() && ::pipe2(in, O_CLOEXEC) != 0)) {
    return ErrnoError(errno, "pipe");
  }
  // With a terminal, the child makes it in its own /dev/pts and sends us
  // the master on this socket.
  UniqueFd console_ours, console_theirs;
  if (spec.tty()) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      return ErrnoError(errno, "socketpair for the container's terminal");
    }
    console_ours.reset(pair[0]);
    console_theirs.reset(pair[1]);
  }
  unsigned long flags = CLONE_NEWNS | (spec.new_pid_namespace() ? CLONE_NEWPID : 0) | SIGCHLD;
  // With a pod-wide pid namespace our children are born in it, and a new pid
  // namespace cannot be made from there: for a container that wants its
  // own, new children go back to our namespace for this one clone.
  UniqueFd pod_pid_ns;
  if (spec.new_pid_namespace() && pod_init_ > 0) {
    pod_pid_ns.reset(::open("/proc/self/ns/pid_for_children", O_RDONLY | O_CLOEXEC));
    UniqueFd own(::open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC));
    if (!pod_pid_ns || !own || ::setns(own.get(), CLONE_NEWPID) != 0) {
      return ErrnoError(errno, "leave the pod's pid namespace for a container's own");
    }
  } else if (!spec.target_pid_namespace().empty()) {
    // pid mode TARGET (kubelet's debug containers): born into the pid
    // namespace of another container of the pod, which must be running.
    const Container* target = Find(spec.target_pid_namespace());
    if (target == nullptr || target->pid <= 0 || target->state.phase() != ContainerState::RUNNING) {
      return absl::FailedPreconditionError(absl::StrCat(
          "config.linux.security_context.namespace_options.target_id: container ", spec.target_pid_namespace(),
          " is not running in this pod"));
    }
    pod_pid_ns.reset(::open("/proc/self/ns/pid_for_children", O_RDONLY | O_CLOEXEC));
    UniqueFd theirs(::open(absl::StrCat("/proc/", target->pid, "/ns/pid").c_str(), O_RDONLY | O_CLOEXEC));
    if (!pod_pid_ns || !theirs || ::setns(theirs.get(), CLONE_NEWPID) != 0) {
      return ErrnoError(errno, absl::StrCat("enter the pid namespace of container ", target->state.id()));
    }
  }
  pid_t pid = static_cast<pid_t>(::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr));
  if (pid != 0 && pod_pid_ns && ::setns(pod_pid_ns.get(), CLONE_NEWPID) != 0) {
    LOG_ERROR("return to the pod's pid namespace: %s", strerror(errno));
  }
  if (pid == 0) {
    ::close(sync[0]);
    ::close(start[1]);
    ::close(out[0]);
    ::close(err[0]);
    InitPipes pipes{sync[1], start[0], out[1], err[1], in[0], console_theirs.get()};
    if (spec.has_tender()) TenderInit(spec, pipes);
    ContainerInit(spec, pipes);
  }
  int clone_errno = errno;
  if (pid > 0) {
    // Into its cgroup before it does anything: then one byte lets it go on
    // (the next byte on the same pipe, at StartContainer, lets it exec).
    for (const std::string& procs : spec.cgroup_procs()) {
      std::string text = absl::StrCat(pid);
      UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
      if (!fd || ::write(fd.get(), text.data(), text.size()) < 0) {
        absl::Status st = ErrnoError(errno, absl::StrCat("move the container process into ", procs));
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        for (int fd2 : {sync[0], sync[1], start[0], start[1], out[0], out[1], err[0], err[1], in[0], in[1]}) {
          if (fd2 >= 0) ::close(fd2);
        }
        return st;
      }
    }
    if (::write(start[1], "C", 1) != 1) clone_errno = errno;
  }
  ::close(sync[1]);
  ::close(start[0]);
  ::close(out[1]);
  ::close(err[1]);
  c->sync.reset(sync[0]);
  c->start.reset(start[1]);
  c->out[0].reset(out[0]);
  c->out[1].reset(err[0]);
  if (in[0] >= 0) ::close(in[0]);
  if (in[1] >= 0) c->stdin_w.reset(in[1]);
  console_theirs.reset();
  if (pid < 0) return ErrnoError(clone_errno, "clone the container process");
  c->pid = pid;

  absl::StatusOr<std::string> report = ReadSync(c->sync.get());
  if (!report.ok() || *report != "R") {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return report.ok() ? FromChild(*report) : report.status();
  }
  if (console_ours) {
    // Sent before "R". The terminal's output is the container's stdout;
    // the pipe stays unused.
    absl::StatusOr<UniqueFd> master = sandbox::ReceiveFd(console_ours.get(), MSG_DONTWAIT);
    if (!master.ok()) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return Annotate(master.status(), "the container's terminal from its init");
    }
    c->out[0] = std::move(*master);
  }
  for (int stream = 0; stream < 2; ++stream) {
    int fd = c->out[stream].get();
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
    log_fds_[fd] = {c.get(), stream};
  }
  c->state.set_pid(pid);
  *state = c->state;
  containers_[spec.id()] = std::move(c);
  return absl::OkStatus();
}

absl::Status Monitor::Start(const std::string& id, ContainerState* state) {
  Container* c = Find(id);
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("container ", id, " is not in this pod"));
  if (c->state.phase() != ContainerState::CREATED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "container ", id, " is ", c->state.phase() == ContainerState::RUNNING ? "running" : "exited",
        ", not created"));
  }
  if (::write(c->start.get(), "G", 1) != 1) {
    return ErrnoError(errno, absl::StrCat("release container ", id));
  }
  c->start.reset();
  c->state.set_started_at_ns(NowNs());
  absl::StatusOr<std::string> report = ReadSync(c->sync.get());
  c->sync.reset();
  if (!report.ok() || !report->empty()) {
    // The child exits after its report; the reaper records it.
    absl::Status st = report.ok() ? FromChild(*report) : report.status();
    c->state.set_message(std::string(st.message()));
    ::kill(c->pid, SIGKILL);
    return st;
  }
  if (c->state.phase() == ContainerState::CREATED) c->state.set_phase(ContainerState::RUNNING);
  *state = c->state;
  return absl::OkStatus();
}

absl::Status Monitor::Signal(const std::string& id, int sig, ContainerState* state) {
  Container* c = Find(id);
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("container ", id, " is not in this pod"));
  if (c->state.phase() != ContainerState::EXITED && c->pid > 0 && ::kill(c->pid, sig) != 0 &&
      errno != ESRCH) {
    return ErrnoError(errno, absl::StrCat("signal ", sig, " to container ", id));
  }
  if (sig == SIGTERM) c->sigterm = true;
  *state = c->state;
  return absl::OkStatus();
}

absl::Status Monitor::Remove(const std::string& id) {
  Container* c = Find(id);
  if (c == nullptr) return absl::OkStatus();
  if (c->state.phase() == ContainerState::RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("container ", id, " is running; stop it first"));
  }
  if (c->state.phase() == ContainerState::CREATED && c->pid > 0) {
    // Parked, never started: it goes without ever running.
    ::kill(c->pid, SIGKILL);
    ::waitpid(c->pid, nullptr, 0);
  }
  for (auto& fd : c->out) {
    if (fd) {
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd.get(), nullptr);
      log_fds_.erase(fd.get());
    }
  }
  ::unlink(absl::StrCat(options_.dir, "/exits/", id).c_str());
  containers_.erase(id);
  return absl::OkStatus();
}

absl::Status Monitor::ReopenLog(const std::string& id, ContainerState* state) {
  Container* c = Find(id);
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("container ", id, " is not in this pod"));
  CRIUS_RETURN_IF_ERROR(c->log.Reopen());
  *state = c->state;
  return absl::OkStatus();
}

// The "oom_kill N" count of a memory.events or memory.oom_control file.
static uint64_t OomKills(const std::string& file) {
  std::ifstream in(file);
  for (std::string key, value; in >> key >> value;) {
    uint64_t n = 0;
    if (key == "oom_kill" && absl::SimpleAtoi(value, &n)) return n;
  }
  return 0;
}

// The last line of a tender's stderr that names a guest fault, or "".
static std::string FaultLine(const std::string& tail) {
  std::string found;
  size_t start = 0;
  while (start < tail.size()) {
    size_t end = tail.find('\n', start);
    if (end == std::string::npos) end = tail.size();
    std::string line = tail.substr(start, end - start);
    if (line.find("guest fault:") != std::string::npos || line.find("KVM: run vCPU") != std::string::npos) {
      found = line;
    }
    start = end + 1;
  }
  return found;
}

// How a pod sees a tender's end (unikernel/ABI.md has the tenders' side):
// the guest's own status; 143 for SIGTERM, which a guest that did not opt
// into shutdown never sees; 137 for SIGKILL; and 255 for a guest fault,
// with the fault as the message (hvt: status 1 and its "guest fault:"
// line; spt: the signal the fault raised).
static void TenderExit(const Container& c, int status, ContainerState* s) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    if (sig == SIGKILL || sig == SIGTERM) {
      s->set_exit_code(128 + sig);
      s->set_shutdown(sig == SIGKILL ? "killed" : "halted");
      return;
    }
    s->set_exit_code(255);
    const char* abbrev = sigabbrev_np(sig);
    if (sig == SIGSYS) {
      s->set_message("guest fault: a system call outside the spt allowlist (SIGSYS)");
    } else if (abbrev != nullptr) {
      s->set_message(absl::StrCat("guest fault: SIG", abbrev, " (", strsignal(sig), ")"));
    } else {
      s->set_message(absl::StrCat("guest fault: signal ", sig));
    }
    return;
  }
  int code = WEXITSTATUS(status);
  std::string fault = code == 1 ? FaultLine(c.stderr_tail) : "";
  if (!fault.empty()) {
    // Without the tender's name: "guest fault: ..." or "KVM: run vCPU: ...".
    size_t from = fault.find("guest fault:");
    s->set_exit_code(255);
    s->set_message(fault.substr(from != std::string::npos ? from : fault.find("KVM:")));
    return;
  }
  s->set_exit_code(code);
  if (code == 1 && !c.stderr_tail.empty()) {
    // A set-up error of the tender: its message is its last line.
    std::string tail = c.stderr_tail.substr(0, c.stderr_tail.find_last_not_of('\n') + 1);
    s->set_message(tail.substr(tail.rfind('\n') == std::string::npos ? 0 : tail.rfind('\n') + 1));
  }
  if (c.sigterm) s->set_shutdown("cooperative");
}

void Monitor::Reaped(pid_t pid, int status) {
  for (auto& [id, c] : containers_) {
    if (c->pid != pid) continue;
    c->state.set_phase(ContainerState::EXITED);
    c->state.set_finished_at_ns(NowNs());
    c->state.set_exit_code(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
    if (c->spec.has_tender()) {
      // Its last words first: they may name a fault.
      for (auto& fd : c->out) {
        if (fd) ReadLogs(fd.get());
      }
      TenderExit(*c, status, &c->state);
    }
    // Killed, and its cgroup counts an OOM kill: the OOM killer did it (the
    // process itself, or its pid 1 after a child was chosen).
    if (!c->spec.oom_events().empty() && OomKills(c->spec.oom_events()) > 0 &&
        (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
      c->state.set_oom_killed(true);
    }
    c->state.set_pid(0);
    c->pid = 0;
    RecordExit(*c);
    return;
  }
}

void Monitor::RecordExit(Container& c) {
  // Durable before criusd can ask: a monitor that dies later still leaves
  // the exit code for criusd to find.
  std::string dir = absl::StrCat(options_.dir, "/exits");
  ::mkdir(dir.c_str(), 0700);
  std::string text = c.state.SerializeAsString();
  if (absl::Status st = WriteFileAtomic(absl::StrCat(dir, "/", c.state.id()), text, 0600); !st.ok()) {
    LOG_ERROR("record exit of %s: %s", c.state.id(), std::string(st.message()));
  }
  Tell(c);
}

void Monitor::Tell(const Container& c) {
  crius::monitor::Response told;
  *told.mutable_container() = c.state;
  for (int conn : watchers_) (void)sandbox::SendMessage(conn, told);  // a gone watcher is closed on its EOF
}

void Monitor::ReadLogs(int fd) {
  auto it = log_fds_.find(fd);
  if (it == log_fds_.end()) return;
  auto [c, stream] = it->second;
  char buf[65536];
  // At most kReadsPerWakeup reads, then back to epoll (level-triggered, so
  // the rest waits there): a container that writes without pause must not
  // starve criusd's requests or the pod's other containers.
  constexpr int kReadsPerWakeup = 16;
  for (int reads = 0; reads < kReadsPerWakeup; ++reads) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      c->log.Write(stream == 1, absl::string_view(buf, static_cast<size_t>(n)));
      if (c->spec.has_tender()) TenderOutput(*c, stream, absl::string_view(buf, static_cast<size_t>(n)));
      if (!c->attached.empty()) Forward(*c, stream, buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    // EOF: every writer (the container and what it left behind) is gone.
    c->log.Flush(stream == 1);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    log_fds_.erase(it);
    c->out[stream].reset();
    // The output has ended: so have the attach sessions.
    if (!c->out[0] && !c->out[1]) c->attached.clear();
    return;
  }
}

void Monitor::TenderOutput(Container& c, int stream, absl::string_view data) {
  if (stream == 1) {
    constexpr size_t kTail = 4096;
    c.stderr_tail.append(data.data(), data.size());
    if (c.stderr_tail.size() > kTail) c.stderr_tail.erase(0, c.stderr_tail.size() - kTail);
    return;
  }
  if (c.state.first_output_at_ns() == 0 && c.state.phase() == ContainerState::RUNNING) {
    // The guest's first console line: its boot time, told to criusd.
    c.state.set_first_output_at_ns(NowNs());
    Tell(c);
  }
}

void Monitor::Forward(Container& c, int stream, const char* data, size_t n) {
  std::string packet(1, static_cast<char>(stream + 1));
  packet.append(data, n);
  for (auto it = c.attached.begin(); it != c.attached.end();) {
    // Never blocks the pod's logs: a client that does not keep up is
    // dropped (its output is still in the log).
    if (::send(it->get(), packet.data(), packet.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
      if (errno == EAGAIN) LOG_WARN("container %s: an attached client fell behind: detached", c.state.id());
      it = c.attached.erase(it);
    } else {
      ++it;
    }
  }
}

absl::Status Monitor::Attach(const std::string& id, std::vector<UniqueFd>* fds) {
  Container* c = Find(id);
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("container ", id, " is not in this pod"));
  if (c->state.phase() == ContainerState::EXITED || (!c->out[0] && !c->out[1])) {
    return absl::FailedPreconditionError(absl::StrCat("container ", id, " has exited: nothing to attach to"));
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return ErrnoError(errno, "socketpair for attach");
  }
  UniqueFd ours(pair[0]), theirs(pair[1]);
  int size = 1 << 20;
  ::setsockopt(ours.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  ::shutdown(ours.get(), SHUT_RD);
  fds->push_back(std::move(theirs));
  // The terminal is the stdin of a tty container; else the pipe, if kept.
  int in = c->spec.tty() ? c->out[0].get() : c->stdin_w.get();
  if (in >= 0 && (c->spec.tty() || c->spec.stdin())) {
    UniqueFd dup(::fcntl(in, F_DUPFD_CLOEXEC, 0));
    if (!dup) return ErrnoError(errno, "dup the container's stdin");
    fds->push_back(std::move(dup));
  }
  c->attached.push_back(std::move(ours));
  return absl::OkStatus();
}

absl::Status Monitor::CloseStdin(const std::string& id) {
  Container* c = Find(id);
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("container ", id, " is not in this pod"));
  c->stdin_w.reset();
  return absl::OkStatus();
}

}  // namespace crius::monitor
