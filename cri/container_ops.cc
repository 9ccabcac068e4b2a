#include "cri/container_ops.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/clock.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "cri/sandbox_ops.h"
#include "cri/unikernel.h"
#include "metrics/metrics.h"
#include "sandbox/monitor_client.h"

namespace crius::cri {
namespace {

struct NamedSignal {
  const char* name;
  int number;
};
constexpr NamedSignal kSignals[] = {
    {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"BUS", SIGBUS},   {"CHLD", SIGCHLD}, {"CLD", SIGCHLD},
    {"CONT", SIGCONT}, {"FPE", SIGFPE},   {"HUP", SIGHUP},   {"ILL", SIGILL},   {"INT", SIGINT},
    {"IO", SIGIO},     {"IOT", SIGIOT},   {"KILL", SIGKILL}, {"PIPE", SIGPIPE}, {"POLL", SIGPOLL},
    {"PROF", SIGPROF}, {"PWR", SIGPWR},   {"QUIT", SIGQUIT}, {"SEGV", SIGSEGV}, {"STKFLT", SIGSTKFLT},
    {"STOP", SIGSTOP}, {"SYS", SIGSYS},   {"TERM", SIGTERM}, {"TRAP", SIGTRAP}, {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU}, {"URG", SIGURG},   {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
    {"VTALRM", SIGVTALRM}, {"WINCH", SIGWINCH}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
};

// A unikernel guest's first console output, seen by this criusd (one
// started before it came saw it already): its boot time.
void ObserveBoot(const std::string& flavour, const crius::monitor::ContainerState& s, int64_t since_ns) {
  metrics::Metrics* m = metrics::Current();
  if (m == nullptr || flavour.empty() || s.first_output_at_ns() == 0 || s.first_output_at_ns() < since_ns ||
      s.started_at_ns() == 0) {
    return;
  }
  m->ObserveGuestBoot(flavour, static_cast<double>(s.first_output_at_ns() - s.started_at_ns()) / 1e9);
}

// Applies what the monitor says of a container (of a pod whose tenders are
// `flavour`, "" for none; `since_ns`: when this criusd started); true when
// it changed.
bool Apply(Container& c, const crius::monitor::ContainerState& s, const std::string& flavour, int64_t since_ns,
           int64_t* seen_boot) {
  if (s.first_output_at_ns() != 0 && *seen_boot == 0) {
    *seen_boot = s.first_output_at_ns();
    ObserveBoot(flavour, s, since_ns);
  }
  if (s.phase() == crius::monitor::ContainerState::EXITED) {
    if (c.state == kContainerExited) return false;
    c.state = kContainerExited;
    c.exit_code = s.exit_code();
    c.finished_at_ns = s.finished_at_ns();
    if (c.started_at_ns == 0) c.started_at_ns = s.started_at_ns();
    c.reason = s.oom_killed() ? "OOMKilled" : s.exit_code() == 0 ? "Completed" : "Error";
    if (!s.message().empty()) c.message = s.message();
    if (metrics::Metrics* m = metrics::Current()) {
      m->ObserveContainerExit(c.reason);
      if (!flavour.empty()) {
        bool fault = s.exit_code() == 255 && absl::StartsWith(s.message(), "guest fault");
        std::string reason = s.oom_killed()       ? "OOMKilled"
                             : fault              ? "GuestFault"
                             : !s.shutdown().empty() ? "Shutdown"
                                                  : c.reason;
        m->ObserveTenderExit(flavour, reason, s.shutdown());
      }
    }
    return true;
  }
  if (s.phase() == crius::monitor::ContainerState::RUNNING && c.state == kContainerCreated) {
    c.state = kContainerRunning;
    c.started_at_ns = s.started_at_ns();
    return true;
  }
  return false;
}

}  // namespace

int SignalNumber(const std::string& text) {
  std::string name = absl::AsciiStrToUpper(text);
  int number = 0;
  if (absl::SimpleAtoi(name, &number)) return number > 0 && number < NSIG ? number : 0;
  absl::string_view n = name;
  absl::ConsumePrefix(&n, "SIG");
  for (const NamedSignal& s : kSignals) {
    if (n == s.name) return s.number;
  }
  return 0;
}

void RefreshContainers(Runtime& rt, Pod& pod) {
  std::vector<std::shared_ptr<Container>> mine = rt.containers().OfPod(pod.id);
  const std::string flavour = PodFlavour(rt, pod);
  bool live = false;
  for (const auto& c : mine) live = live || c->state == kContainerRunning || c->state == kContainerCreated;
  if (!live) return;
  // No RefreshPod here: StopPod calls this holding pod.op. A monitor that
  // is gone is taken as gone below, which is all the containers need; one
  // that is alive but did not answer in time (busy, or its node starved)
  // says nothing, and its containers keep the state last heard.
  crius::monitor::PodState state;
  bool answered = false;
  if (pod.state == kPodReady) {
    crius::monitor::Request hello;
    hello.mutable_hello();
    // no crash point: a question; it changes nothing
    absl::StatusOr<crius::monitor::Response> resp = sandbox::CallMonitor(pod.dir, hello);
    if (resp.ok()) {
      state = resp->pod();
      answered = true;
    } else if (!MonitorExited(pod)) {
      LOG_WARN("pod %s: its monitor (pid %d) is running but did not answer: %s", pod.id, pod.monitor_pid,
               std::string(resp.status().message()));
      return;
    }
  }
  // A monitor that is gone may have been killed by the OOM killer: its
  // containers, killed with it (PR_SET_PDEATHSIG), say so.
  const bool monitor_oom_killed = !answered && MonitorOomKills(rt, pod) > 0;
  for (const auto& c : mine) {
    if (c->state != kContainerRunning && c->state != kContainerCreated) continue;
    std::lock_guard<std::mutex> lock(c->op);
    bool changed = false;
    bool found = false;
    for (const auto& s : state.containers()) {
      if (s.id() == c->id) {
        found = true;
        changed = Apply(*c, s, flavour, rt.started_at_ns(), &c->first_output_at_ns);
      }
    }
    if (!found && !answered) {
      // The monitor is gone: its exit record says how the container ended,
      // if it ended before the monitor did.
      crius::monitor::ContainerState recorded;
      absl::StatusOr<std::string> record = ReadFile(absl::StrCat(pod.dir, "/exits/", c->id));
      if (record.ok() && recorded.ParseFromString(*record)) {
        changed = Apply(*c, recorded, flavour, rt.started_at_ns(), &c->first_output_at_ns);
      } else {
        c->state = kContainerExited;
        c->exit_code = 137;
        c->finished_at_ns = NowNs();
        c->reason = monitor_oom_killed ? "OOMKilled" : "Error";
        c->message = monitor_oom_killed
                         ? "the pod's monitor was killed by the OOM killer; the container was killed with it"
                         : "the pod's monitor exited; the container was killed with it";
        if (metrics::Metrics* m = metrics::Current()) m->ObserveContainerExit(c->reason);
        changed = true;
      }
    }
    if (changed) {
      // no crash point: it records what the monitor said, which the next start asks again
      if (absl::Status st = rt.containers().Save(*c); !st.ok()) {
        LOG_ERROR("container %s: record state: %s", c->id, std::string(st.message()));
      }
      rt.events().Publish(c->state == kContainerExited ? v1::CONTAINER_STOPPED_EVENT : v1::CONTAINER_STARTED_EVENT,
                          c->id, c->pod_id);
    }
  }
}

namespace {
// Records a container that was stopped, then tells GetContainerEvents,
// unless the exit was already told of (the pod's monitor reported it first).
// Crash points: at its callers
absl::Status SaveStopped(Runtime& rt, const Container& c, bool exited_now) {
  CRIUS_RETURN_IF_ERROR(rt.containers().Save(c));
  if (exited_now) rt.events().Publish(v1::CONTAINER_STOPPED_EVENT, c.id, c.pod_id);
  return absl::OkStatus();
}
}  // namespace

// Crash points: at its callers
absl::Status StopContainerProcess(Runtime& rt, Pod& pod, Container& c, int64_t timeout_s) {
  const std::string flavour = PodFlavour(rt, pod);
  auto state_now = [&]() -> absl::StatusOr<crius::monitor::ContainerState> {
    crius::monitor::Request req;
    req.mutable_signal()->set_id(c.id);
    req.mutable_signal()->set_signal(0);
    // no crash point: signal 0 is a question
    CRIUS_ASSIGN_OR_RETURN(crius::monitor::Response resp, sandbox::CallMonitor(pod.dir, req));
    return resp.container();
  };
  auto send = [&](int sig) -> absl::Status {
    crius::monitor::Request req;
    req.mutable_signal()->set_id(c.id);
    req.mutable_signal()->set_signal(sig);
    // no crash point: each signal is followed by a wait, then SaveStopped
    return sandbox::CallMonitor(pod.dir, req).status();
  };
  // Polls until the process is gone or the deadline passes.
  bool exited_now = false;  // this call saw the exit first: it tells of it
  auto wait = [&](int64_t deadline_ns) -> absl::StatusOr<bool> {
    int64_t sleep_us = 200;
    for (;;) {
      CRIUS_ASSIGN_OR_RETURN(crius::monitor::ContainerState s, state_now());
      if (s.phase() == crius::monitor::ContainerState::EXITED) {
        exited_now = Apply(c, s, flavour, rt.started_at_ns(), &c.first_output_at_ns) || exited_now;
        return true;
      }
      if (NowNs() >= deadline_ns) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
      sleep_us = std::min<int64_t>(sleep_us * 2, 20000);
    }
  };

  int sig = c.config.stop_signal() != v1::RUNTIME_DEFAULT
                ? SignalNumber(v1::Signal_Name(c.config.stop_signal()))
                : c.stop_signal;
  // A tender takes SIGTERM as the guest's shutdown request, whatever the
  // image says.
  if (sig == 0 || !flavour.empty()) sig = SIGTERM;
  if (timeout_s > 0 && sig != SIGKILL) {
    CRIUS_RETURN_IF_ERROR(Annotate(send(sig), absl::StrCat("signal container ", c.id)));
    CRIUS_ASSIGN_OR_RETURN(bool gone, wait(NowNs() + timeout_s * 1000000000));
    if (gone) return SaveStopped(rt, c, exited_now);  // no crash point: the callers' follow it
  }
  CRIUS_FAILPOINT("container_stop.before_kill");
  CRIUS_RETURN_IF_ERROR(Annotate(send(SIGKILL), absl::StrCat("kill container ", c.id)));
  CRIUS_ASSIGN_OR_RETURN(bool gone, wait(NowNs() + int64_t{10} * 1000000000));
  if (!gone) {
    return absl::DeadlineExceededError(
        absl::StrCat("container ", c.id, " is still there 10 s after SIGKILL"));
  }
  return SaveStopped(rt, c, exited_now);
}

}  // namespace crius::cri
