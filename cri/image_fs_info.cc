#include <time.h>

#include "cri/handlers.h"

namespace crius::cri {

absl::Status ImageFsInfoGet(Runtime& rt, const v1::ImageFsInfoRequest&, v1::ImageFsInfoResponse* resp) {
  image::FsUsage usage = rt.images().Usage();
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  v1::FilesystemUsage* fs = resp->add_image_filesystems();
  fs->set_timestamp(int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec);
  fs->mutable_fs_id()->set_mountpoint(usage.mountpoint);
  fs->mutable_used_bytes()->set_value(usage.used_bytes);
  fs->mutable_inodes_used()->set_value(usage.inodes_used);
  return absl::OkStatus();
}

}  // namespace crius::cri
