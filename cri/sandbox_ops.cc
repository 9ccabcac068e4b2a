#include "cri/sandbox_ops.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/failpoint.h"
#include "common/log.h"
#include "common/status.h"
#include "cri/container_ops.h"
#include "sandbox/monitor_client.h"

namespace crius::cri {
namespace {

}  // namespace

bool MonitorExited(const Pod& pod) {
  if (!pod.monitor_pidfd) return true;
  struct pollfd p = {pod.monitor_pidfd.get(), POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

absl::Status AttachMonitor(Pod& pod) {
  crius::monitor::Request hello;
  hello.mutable_hello();
  // no crash point: a question; it changes nothing
  CRIUS_ASSIGN_OR_RETURN(crius::monitor::Response resp, sandbox::CallMonitor(pod.dir, hello));
  int pid = resp.pod().monitor_pid();
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return ErrnoError(errno, absl::StrCat("pidfd_open monitor ", pid));
  pod.monitor_pid = pid;
  pod.monitor_pidfd.reset(fd);
  pod.namespaces.clear();
  for (const auto& [kind, path] : resp.pod().namespaces()) pod.namespaces[kind] = path;
  return absl::OkStatus();
}

uint64_t MonitorOomKills(Runtime& rt, const Pod& pod) {
  if (pod.cgroup.empty()) return 0;
  absl::StatusOr<uint64_t> kills = rt.cgroups().OomKills(pod.MonitorCgroup());
  return kills.ok() ? *kills : 0;
}

void NoteMonitorGone(Runtime& rt, Pod& pod) {
  if (uint64_t kills = MonitorOomKills(rt, pod); kills > 0) {
    pod.monitor_exit_reason = kMonitorOomKilled;
    pod.monitor_exit_message =
        absl::StrCat("the pod's monitor (pid ", pod.monitor_pid, ") was killed by the OOM killer (its cgroup ",
                     pod.MonitorCgroup(), " counts ", kills, " OOM kill", kills == 1 ? "" : "s", ")");
  } else {
    pod.monitor_exit_reason = kMonitorExited;
    pod.monitor_exit_message =
        absl::StrCat("the pod's monitor (pid ", pod.monitor_pid, ") exited without being asked to");
  }
  LOG_WARN("pod %s: %s: the pod is NotReady", pod.id, pod.monitor_exit_message);
}

void RefreshPod(Runtime& rt, Pod& pod) {
  if (pod.state != kPodReady || !MonitorExited(pod)) return;
  std::lock_guard<std::mutex> lock(pod.op);
  if (pod.state != kPodReady || !MonitorExited(pod)) return;
  NoteMonitorGone(rt, pod);
  ReleasePodPins(pod);
  pod.monitor_pidfd.reset();
  pod.namespaces.clear();
  pod.ips.clear();
  pod.state = kPodNotReady;
  // no crash point: it records what it saw, which the next start sees again
  if (absl::Status st = rt.pods().Save(pod); !st.ok()) {
    LOG_ERROR("pod %s: record NotReady: %s", pod.id, std::string(st.message()));
  }
  rt.events().Publish(v1::CONTAINER_STOPPED_EVENT, pod.id, pod.id);
}

void ReleasePodPins(const Pod& pod) {
  sandbox::ReleasePins(pod.dir, ::access(pod.NetworkCache().c_str(), F_OK) == 0);
}

// Crash points: at its callers
absl::Status DetachNetwork(Runtime& rt, Pod& pod) {
  CRIUS_RETURN_IF_ERROR(Annotate(rt.networks().Teardown(pod.NetworkCache()),
                                 absl::StrCat("detach the network of pod ", pod.id)));
  // A pod whose monitor is gone kept its netns pinned for this DEL alone.
  if (pod.state != kPodReady && pod.state != kPodCreating) sandbox::ReleasePins(pod.dir);
  return absl::OkStatus();
}

// Crash points: at its callers
absl::Status StopPod(Runtime& rt, Pod& pod) {
  if (pod.state == kPodNotReady) return DetachNetwork(rt, pod);  // no crash point: the callers' follow it
  // Containers first, each recorded exited, while the monitor still answers.
  RefreshContainers(rt, pod);
  for (const std::shared_ptr<Container>& c : rt.containers().OfPod(pod.id)) {
    std::lock_guard<std::mutex> lock(c->op);
    if (c->state == kContainerRunning && pod.state == kPodReady) {
      CRIUS_RETURN_IF_ERROR(StopContainerProcess(rt, pod, *c, 0));
    }
  }
  CRIUS_FAILPOINT("sandbox_stop.after_containers");
  // Then the network, while the netns is still pinned. A failed DEL fails
  // the stop with the pod still up, so a retry finds everything in place.
  CRIUS_RETURN_IF_ERROR(DetachNetwork(rt, pod));
  CRIUS_FAILPOINT("sandbox_stop.after_network");
  return ShutdownMonitor(rt, pod);
}

// Crash points: at its callers
absl::Status ShutdownMonitor(Runtime& rt, Pod& pod) {
  // Gone before it was asked: the pod's status says why.
  if (pod.monitor_pidfd && MonitorExited(pod) && pod.monitor_exit_reason.empty()) NoteMonitorGone(rt, pod);
  if (!MonitorExited(pod) || !pod.monitor_pidfd) {
    crius::monitor::Request shutdown;
    shutdown.mutable_shutdown();
    absl::StatusOr<crius::monitor::Response> resp = sandbox::CallMonitor(pod.dir, shutdown);
    if (!resp.ok() && resp.status().code() != absl::StatusCode::kUnavailable) {
      return Annotate(resp.status(), absl::StrCat("stop pod ", pod.id));
    }
    // The monitor exits once it has answered; wait for it (bounded).
    if (pod.monitor_pidfd) {
      struct pollfd p = {pod.monitor_pidfd.get(), POLLIN, 0};
      if (::poll(&p, 1, 5000) == 0) {
        LOG_WARN("pod %s: monitor %d still there 5 s after shutdown: killing it", pod.id, pod.monitor_pid);
        ::syscall(SYS_pidfd_send_signal, pod.monitor_pidfd.get(), SIGKILL, nullptr, 0);
        ::poll(&p, 1, 5000);
      }
    }
  }
  CRIUS_FAILPOINT("sandbox_stop.after_monitor");
  ReleasePodPins(pod);
  pod.monitor_pidfd.reset();
  pod.namespaces.clear();
  pod.ips.clear();
  pod.state = kPodNotReady;
  CRIUS_RETURN_IF_ERROR(Annotate(rt.pods().Save(pod), absl::StrCat("record pod ", pod.id, " stopped")));
  rt.events().Publish(v1::CONTAINER_STOPPED_EVENT, pod.id, pod.id);
  // Created containers that never ran went with the monitor.
  RefreshContainers(rt, pod);
  return absl::OkStatus();
}

}  // namespace crius::cri
