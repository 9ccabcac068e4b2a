#include <sys/stat.h>

#include "common/clock.h"
#include "cri/handlers.h"
#include "cri/stats.h"

namespace crius::cri {

namespace {

void Fill(v1::FilesystemUsage* fs, int64_t now_ns, const std::string& mountpoint, uint64_t bytes,
          uint64_t inodes) {
  fs->set_timestamp(now_ns);
  fs->mutable_fs_id()->set_mountpoint(mountpoint);
  fs->mutable_used_bytes()->set_value(bytes);
  fs->mutable_inodes_used()->set_value(inodes);
}

bool SameFilesystem(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev;
}

}  // namespace

// Image layers and containers' writable layers (KEP-4191). On one
// filesystem (the default) both lists name it, with both kinds counted, as
// CRI-O answers; with containers_dir on a filesystem of its own each list
// counts its own kind only, so kubelet sees a split image filesystem.
absl::Status ImageFsInfoGet(Runtime& rt, const v1::ImageFsInfoRequest&, v1::ImageFsInfoResponse* resp) {
  image::FsUsage images = rt.images().Usage();
  DirUsage writable;
  for (const std::shared_ptr<Container>& c : rt.containers().All()) {
    if (c->dir.empty()) continue;
    DirUsage u = rt.layer_usages().Get(c->id, c->dir + "/upper").usage;
    writable.bytes += u.bytes;
    writable.inodes += u.inodes;
  }
  const int64_t now = NowNs();
  if (SameFilesystem(images.mountpoint, rt.containers_dir())) {
    const uint64_t bytes = images.used_bytes + writable.bytes, inodes = images.inodes_used + writable.inodes;
    Fill(resp->add_image_filesystems(), now, images.mountpoint, bytes, inodes);
    Fill(resp->add_container_filesystems(), now, images.mountpoint, bytes, inodes);
  } else {
    Fill(resp->add_image_filesystems(), now, images.mountpoint, images.used_bytes, images.inodes_used);
    Fill(resp->add_container_filesystems(), now, rt.containers_dir(), writable.bytes, writable.inodes);
  }
  return absl::OkStatus();
}

}  // namespace crius::cri
