// What criusd makes of its pods when it starts: pods a crash left half made
// are rolled back, pods whose monitor still answers are taken up again, and
// pods whose monitor is gone are NotReady.
#include <dirent.h>
#include <fcntl.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "cri/container_cgroups.h"
#include "cri/pod_cgroups.h"
#include "cri/runtime.h"
#include "cri/sandbox_ops.h"
#include "sandbox/monitor_client.h"

namespace crius::cri {
namespace {

// Detaches the network cached in `dir`, stops whatever monitor serves it and
// removes the directory. false, with the directory kept but its monitor
// stopped, when the network could not be detached.
// Crash points: none, it runs at every start, which does it again
bool Discard(const network::PodNetworks& networks, const std::string& dir) {
  absl::Status net = networks.Teardown(absl::StrCat(dir, "/network.json"));
  if (!net.ok()) LOG_ERROR("%s: %s", dir, std::string(net.message()));
  crius::monitor::Request shutdown;
  shutdown.mutable_shutdown();
  (void)sandbox::CallMonitor(dir, shutdown, 5000);
  sandbox::ReleasePins(dir, /*keep_net=*/!net.ok());
  if (!net.ok()) return false;
  (void)RemoveTree(dir);
  return true;
}

}  // namespace

// Crash points: none, it runs at every start, which does it again
absl::Status Runtime::RecoverPods() {
  CRIUS_ASSIGN_OR_RETURN(std::vector<std::shared_ptr<Pod>> pods, pods_.Load());
  std::set<std::string> known;
  for (const std::shared_ptr<Pod>& pod : pods) {
    known.insert(pod->id);
    if (pod->dir.empty()) pod->dir = PodDir(pod->id);
    CRIUS_RETURN_IF_ERROR(AdoptOlderCgroupParent(*this, *pod));
    if (pod->state == kPodCreating) {
      LOG_INFO("pod %s: RunPodSandbox was interrupted: rolling it back", pod->id);
      if (Discard(networks_, pod->dir)) {
        if (absl::Status st = RemovePodCgroups(*this, *pod); !st.ok()) {
          LOG_ERROR("pod %s: %s", pod->id, std::string(st.message()));
        }
        CRIUS_RETURN_IF_ERROR(pods_.Delete(pod->id));
      } else {
        LOG_WARN("pod %s: kept NotReady: StopPodSandbox retries its network teardown", pod->id);
        pod->state = kPodNotReady;
        pod->namespaces.clear();
        pod->ips.clear();
        CRIUS_RETURN_IF_ERROR(pods_.Save(*pod));
      }
      continue;
    }
    if (pod->state == kPodReady) {
      if (absl::Status st = AttachMonitor(*pod); !st.ok()) {
        LOG_WARN("pod %s: %s", pod->id, std::string(st.message()));
        NoteMonitorGone(*this, *pod);
        ReleasePodPins(*pod);
        pod->namespaces.clear();
        pod->ips.clear();
        pod->state = kPodNotReady;
        CRIUS_RETURN_IF_ERROR(pods_.Save(*pod));
      } else {
        watch_.Watch(pod->id, pod->dir);
      }
      continue;
    }
    ReleasePodPins(*pod);
  }
  // Containers a crash left half made are rolled back.
  CRIUS_ASSIGN_OR_RETURN(std::vector<std::shared_ptr<Container>> containers, containers_.Load());
  for (const std::shared_ptr<Container>& c : containers) {
    if (c->state != kContainerCreating) continue;
    LOG_INFO("container %s: CreateContainer was interrupted: rolling it back", c->id);
    std::shared_ptr<Pod> pod = pods_.Get(c->pod_id);
    if (pod != nullptr && pod->state == kPodReady) {
      crius::monitor::Request remove;
      remove.mutable_remove()->set_id(c->id);
      (void)sandbox::CallMonitor(pod->dir, remove);
    }
    if (absl::Status st = RemoveContainerCgroup(*this, *c); !st.ok()) {
      LOG_ERROR("container %s: %s", c->id, std::string(st.message()));
    }
    if (!c->dir.empty()) (void)RemoveTree(c->dir);
    CRIUS_RETURN_IF_ERROR(containers_.Delete(c->id));
  }
  // Directories no record speaks of are leftovers of a crash.
  std::string root = absl::StrCat(config_.state, "/pods");
  if (DIR* d = ::opendir(root.c_str())) {
    std::vector<std::string> orphans;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name[0] != '.' && !known.count(name)) orphans.push_back(name);
    }
    ::closedir(d);
    for (const std::string& name : orphans) {
      LOG_INFO("removing pod directory %s/%s that no pod record names", root, name);
      std::string dir = absl::StrCat(root, "/", name);
      // No record will ever retry this one: the directory goes regardless.
      if (!Discard(networks_, dir)) {
        sandbox::ReleasePins(dir);
        (void)RemoveTree(dir);
      }
    }
  }
  return RecoverCgroupParents(*this);
}

}  // namespace crius::cri
