// Image volumes (KEP-4639): a CRI mount whose `image` is set gets that
// image's filesystem, read-only, nosuid and nodev. Each image is
// mounted once, in the node's mount namespace at
// <state>/image-volumes/<algorithm>-<hex>, and every container that mounts
// it binds that one mount; an idmapped image mount of a pod with a user
// namespace has a volume of that pod's own, an overlay of idmapped layers
// (<algorithm>-<hex>-pod-<pod id>). The container records are the
// reference counts: a volume stays mounted while a recorded container
// names it, so whatever a crash leaves is swept at the next start.
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cri/containers.h"

namespace crius::cri {

class ImageVolumes {
 public:
  ImageVolumes(std::string dir, const ContainerTable& containers) : dir_(std::move(dir)), containers_(containers) {}

  // Finds the volumes an earlier run mounted and unmounts those no
  // container needs any more.
  absl::Status Recover();
  // The name of the volume of image `image_id` (config digest), idmapped
  // for pod `idmap_pod` unless that is empty: what a container records.
  static std::string Name(const std::string& image_id, const std::string& idmap_pod);
  // The mount point of volume `name`, of the image whose layers (topmost
  // first) are `layers`: mounted now unless it is, idmapped through the
  // user namespace at `userns` when that is not empty. The container that
  // needs it must be recorded first, or a Sweep may take it away again.
  absl::StatusOr<std::string> Mount(const std::string& name, const std::vector<std::string>& layers,
                                    const std::string& userns);
  // Unmounts each volume that no recorded container names.
  void Sweep();

 private:
  void SweepLocked();

  const std::string dir_;
  const ContainerTable& containers_;
  std::mutex mu_;
  std::set<std::string> mounted_;  // volume names
};

// `sub_path` (a mount's image_sub_path) inside the volume mounted at
// `mount_point`, as a path on the node. It is relative with no ".." part,
// leads through no symlink out of the image (an absolute symlink counts
// from the image's root), and is there. Errors name `field`.
absl::StatusOr<std::string> ImageSubPath(const std::string& mount_point, const std::string& sub_path,
                                         const std::string& field);

}  // namespace crius::cri
