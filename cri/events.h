// GetContainerEvents: what happens to containers and pod sandboxes, as
// kubelet's evented PLEG takes it. Handlers publish a change once it is
// recorded; a dispatcher thread adds the pod's status and its containers'
// statuses and hands each event to every subscribed stream. Publishing never
// blocks and takes no lock a handler holds, and costs nothing while nobody
// subscribes.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "api.pb.h"

namespace crius::cri {

namespace v1 = ::runtime::v1;

class Runtime;

class EventHub {
 public:
  class Subscription {
   public:
    // The next event, or none after `wait`; none at once once overflowed.
    std::optional<v1::ContainerEventResponse> Next(absl::Duration wait);
    // Fell `max_queued` events behind: its events are dropped, it gets no
    // more, and its stream is to be ended.
    bool overflowed() const;

   private:
    friend class EventHub;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<v1::ContainerEventResponse> queue_;
    bool overflowed_ = false;
  };

  // A stream that has not taken `max_queued` events (config
  // events.max_queued) is ended rather than let the daemon's memory grow;
  // the others never wait for it.
  EventHub(Runtime& rt, size_t max_queued) : rt_(rt), max_queued_(max_queued) {}
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // `id` is a container's, or for the sandbox's own events the pod's.
  void Publish(v1::ContainerEventType type, const std::string& id, const std::string& pod_id);

  size_t max_queued() const { return max_queued_; }

  std::shared_ptr<Subscription> Subscribe();
  void Unsubscribe(const std::shared_ptr<Subscription>& s);

 private:
  struct Pending {
    v1::ContainerEventType type;
    std::string id;
    std::string pod_id;
    int64_t created_at_ns;
  };
  void Dispatch();
  v1::ContainerEventResponse Build(const Pending& p);

  Runtime& rt_;
  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> pending_;
  std::set<std::shared_ptr<Subscription>> subscribers_;
  std::thread dispatcher_;
  bool stopping_ = false;
};

}  // namespace crius::cri
