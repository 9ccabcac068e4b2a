// Container exits as they happen: one connection per ready pod on which its
// monitor reports each exit (sandbox::WatchMonitor). A report, or the
// monitor going away, refreshes the pod's containers at once, so their
// status, kubelet's lists and GetContainerEvents see the exit without
// waiting for the next list.
#pragma once

#include <map>
#include <set>
#include <mutex>
#include <string>
#include <thread>

#include "common/unique_fd.h"

namespace crius::cri {

class Runtime;

class MonitorWatch {
 public:
  explicit MonitorWatch(Runtime& rt) : rt_(rt) {}
  ~MonitorWatch();
  MonitorWatch(const MonitorWatch&) = delete;
  MonitorWatch& operator=(const MonitorWatch&) = delete;

  // Starts watching the pod's monitor (the thread on first use). A monitor
  // that cannot be watched is logged: its exits are still found by lists.
  void Watch(const std::string& pod_id, const std::string& dir);
  // Whether the pod's monitor is watched now: its containers' exits reach
  // the table as they happen, and lists need not ask it.
  bool Watching(const std::string& pod_id);

 private:
  void Run();

  Runtime& rt_;
  std::mutex mu_;
  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd: stop
  std::map<int, std::pair<std::string, UniqueFd>> conns_;  // fd -> pod id, connection
  std::set<std::string> watched_;                           // their pod ids
  std::thread thread_;
};

}  // namespace crius::cri
