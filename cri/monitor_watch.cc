#include "cri/monitor_watch.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "cri/container_ops.h"
#include "cri/runtime.h"
#include "cri/sandbox_ops.h"
#include "sandbox/monitor_client.h"
#include "sandbox/monitor_wire.h"

namespace crius::cri {

MonitorWatch::~MonitorWatch() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_.get(), &one, sizeof one);
    (void)ignored;
    thread_.join();
  }
}

void MonitorWatch::Watch(const std::string& pod_id, const std::string& dir) {
  absl::StatusOr<UniqueFd> conn = sandbox::WatchMonitor(dir);
  if (!conn.ok()) {
    LOG_WARN("pod %s: cannot watch its monitor (exits show at the next list): %s", pod_id,
             std::string(conn.status().message()));
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!thread_.joinable()) {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    wake_.reset(::eventfd(0, EFD_CLOEXEC));
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.fd = wake_.get();
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev);
    thread_ = std::thread([this] { Run(); });
  }
  int fd = conn->get();
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    LOG_WARN("pod %s: watch its monitor: epoll: %s", pod_id, strerror(errno));
    return;
  }
  conns_[fd] = {pod_id, std::move(*conn)};
  watched_.insert(pod_id);
}

bool MonitorWatch::Watching(const std::string& pod_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return watched_.count(pod_id) != 0;
}

void MonitorWatch::Run() {
  struct epoll_event events[16];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, 16, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      LOG_ERROR("monitor watch: epoll_wait: %s", strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_.get()) return;
      std::string pod_id;
      bool gone = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = conns_.find(fd);
        if (it == conns_.end()) continue;
        pod_id = it->second.first;
        crius::monitor::Response told;
        if (!sandbox::ReceiveMessage(fd, &told).ok()) {  // the monitor exited or shut down
          ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
          watched_.erase(pod_id);
          conns_.erase(it);
          gone = true;
        }
      }
      // No lock of ours held: these take the pod's and containers' locks.
      if (std::shared_ptr<Pod> pod = rt_.pods().Get(pod_id)) {
        if (gone) RefreshPod(rt_, *pod);
        RefreshContainers(rt_, *pod);
      }
    }
  }
}

}  // namespace crius::cri
