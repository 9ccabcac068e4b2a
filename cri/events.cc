#include "cri/events.h"

#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "cri/handlers.h"
#include "cri/runtime.h"

namespace crius::cri {
std::optional<v1::ContainerEventResponse> EventHub::Subscription::Next(absl::Duration wait) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoNanoseconds(wait), [&] { return !queue_.empty() || overflowed_; });
  if (overflowed_ || queue_.empty()) return std::nullopt;
  v1::ContainerEventResponse e = std::move(queue_.front());
  queue_.pop_front();
  return e;
}

bool EventHub::Subscription::overflowed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return overflowed_;
}

EventHub::~EventHub() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (dispatcher_.joinable()) dispatcher_.join();
}

void EventHub::Publish(v1::ContainerEventType type, const std::string& id, const std::string& pod_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (subscribers_.empty()) return;
  pending_.push_back({type, id, pod_id, NowNs()});
  cv_.notify_one();
}

std::shared_ptr<EventHub::Subscription> EventHub::Subscribe() {
  auto s = std::make_shared<Subscription>();
  std::lock_guard<std::mutex> lock(mu_);
  subscribers_.insert(s);
  if (!dispatcher_.joinable()) dispatcher_ = std::thread([this] { Dispatch(); });
  return s;
}

void EventHub::Unsubscribe(const std::shared_ptr<Subscription>& s) {
  std::lock_guard<std::mutex> lock(mu_);
  subscribers_.erase(s);
}

v1::ContainerEventResponse EventHub::Build(const Pending& p) {
  v1::ContainerEventResponse e;
  e.set_container_id(p.id);
  e.set_container_event_type(p.type);
  e.set_created_at(p.created_at_ns);
  // As they are now (a deleted pod or container has none): the statuses
  // kubelet would read next.
  v1::PodSandboxStatusRequest pod_req;
  pod_req.set_pod_sandbox_id(p.pod_id);
  v1::PodSandboxStatusResponse pod_resp;
  if (SandboxStatus(rt_, pod_req, &pod_resp).ok()) *e.mutable_pod_sandbox_status() = pod_resp.status();
  for (const std::shared_ptr<Container>& c : rt_.containers().OfPod(p.pod_id)) {
    if (c->state == kContainerCreating) continue;
    v1::ContainerStatusRequest req;
    req.set_container_id(c->id);
    v1::ContainerStatusResponse resp;
    if (ContainerStatusGet(rt_, req, &resp).ok()) *e.add_containers_statuses() = resp.status();
  }
  return e;
}

void EventHub::Dispatch() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
    if (stopping_) return;
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    lock.unlock();
    v1::ContainerEventResponse e = Build(p);
    lock.lock();
    for (auto it = subscribers_.begin(); it != subscribers_.end();) {
      Subscription& s = **it;
      std::lock_guard<std::mutex> slock(s.mu_);
      if (s.queue_.size() < max_queued_) {
        s.queue_.push_back(e);
        s.cv_.notify_one();
        ++it;
        continue;
      }
      // Its stream ends once its client reads again: what it has not taken
      // is freed now, and nothing more is kept for it.
      s.overflowed_ = true;
      s.queue_.clear();
      s.cv_.notify_one();
      LOG_WARN("GetContainerEvents: a stream fell %d events behind; it is ended (ResourceExhausted)",
               max_queued_);
      it = subscribers_.erase(it);
    }
  }
}

}  // namespace crius::cri
