// What the CRI handlers share: the effective config, the durable store, the
// image store, the pod and container tables, and the runtime-wide settings
// kubelet gives (pod CIDR).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "cgroups/driver.h"
#include "common/config.h"
#include "cri/containers.h"
#include "cri/events.h"
#include "cri/image_volumes.h"
#include "cri/monitor_watch.h"
#include "cri/pods.h"
#include "cri/stats.h"
#include "image/image_store.h"
#include "network/pod_network.h"
#include "store/store.h"
#include "stream/server.h"

namespace crius::cri {

class Runtime {
 public:
  Runtime(Config config, std::unique_ptr<store::Store> store);

  const Config& config() const { return config_; }
  store::Store& store() { return *store_; }
  int64_t started_at_ns() const { return started_at_ns_; }

  // Loads what earlier runs recorded (pod CIDR, images, pods, containers)
  // and rolls back what a crash left half made (pulls, pods, containers).
  absl::Status Recover();

  image::ImageStore& images() { return *images_; }
  PodTable& pods() { return pods_; }
  ContainerTable& containers() { return containers_; }
  // Images mounted for containers' image volumes.
  ImageVolumes& image_volumes() { return image_volumes_; }
  // The node's CNI network: pod attach and detach.
  const network::PodNetworks& networks() const { return networks_; }
  // The node's cgroup driver, detected by Recover().
  cgroups::Driver& cgroups() { return *cgroups_; }
  // Held while pod cgroups are made or removed, so that a parent pods share
  // is never removed as another pod is made in it (cri/pod_cgroups.h).
  std::mutex& cgroup_parents_mu() { return cgroup_parents_mu_; }
  // Whether pods can have user namespaces here (idmapped image layers on
  // the root's filesystem), found by Recover(): OK, or why not.
  const absl::Status& userns_support() const { return userns_support_; }
  // The previous CPU sample of each container and pod, for usage_nano_cores.
  CpuRates& cpu_rates() { return cpu_rates_; }
  // The last measure of each container's writable layer.
  LayerUsages& layer_usages() { return layer_usages_; }
  // Container and pod sandbox events for GetContainerEvents.
  EventHub& events() { return events_; }
  // Each ready pod's monitor, telling of container exits as they happen.
  MonitorWatch& watch() { return watch_; }

  // Starts the streaming server (Exec, Attach and PortForward URLs).
  absl::Status StartStreaming();
  // Null until StartStreaming.
  stream::Server* streaming() { return streaming_.get(); }

  // <state>/pods/<id>
  std::string PodDir(const std::string& id) const;
  // Where new containers' directories (writable layers) go: config
  // containers_dir, else <root>/containers.
  const std::string& containers_dir() const { return containers_dir_; }
  // The crius-monitor binary: config monitor_path, else beside criusd.
  const std::string& monitor_binary() const { return monitor_binary_; }
  // The tender of a flavour ("spt", "hvt"): config unikernel.*_path, else
  // beside criusd.
  std::string tender_binary(const std::string& flavour) const;

  std::string pod_cidr() const;
  // Records the pod CIDR durably, then makes it current.
  absl::Status SetPodCidr(const std::string& cidr);

 private:
  // cri/sandbox_recover.cc
  absl::Status RecoverPods();

  const Config config_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<image::ImageStore> images_;
  PodTable pods_;
  ContainerTable containers_;
  ImageVolumes image_volumes_;
  network::PodNetworks networks_;
  std::unique_ptr<cgroups::Driver> cgroups_;
  std::mutex cgroup_parents_mu_;
  absl::Status userns_support_;
  CpuRates cpu_rates_;
  LayerUsages layer_usages_;
  std::string own_dir_;  // where criusd is, with a trailing '/'
  std::string monitor_binary_;
  const std::string containers_dir_;
  const int64_t started_at_ns_;

  mutable std::mutex mu_;
  std::string pod_cidr_;
  // Last: their threads read the tables above, so they stop first (the
  // watch first: it publishes events).
  EventHub events_{*this, static_cast<size_t>(config_.events.max_queued)};
  MonitorWatch watch_{*this};
  // Its connections call into the tables: it stops before anything else.
  std::unique_ptr<stream::Backend> stream_backend_;
  std::unique_ptr<stream::Server> streaming_;
};

}  // namespace crius::cri
