#include "absl/strings/str_cat.h"
#include "cri/handlers.h"

namespace crius::cri {

absl::Status ImageRemove(Runtime& rt, const v1::RemoveImageRequest& req, v1::RemoveImageResponse*) {
  const std::string& ref = req.image().image();
  if (ref.empty()) return absl::InvalidArgumentError("image.image: the image reference is empty");
  absl::StatusOr<std::optional<image::ImageInfo>> found = rt.images().Find(ref);
  if (!found.ok()) return found.status();
  // Removing an image that is not there succeeds (kubelet retries removals).
  if (!found->has_value()) return absl::OkStatus();
  // Its layers are the root filesystem of every container made from it.
  for (const std::shared_ptr<Container>& c : rt.containers().All()) {
    if (c->image_id == (*found)->id) {
      return absl::FailedPreconditionError(absl::StrCat(
          "image ", ref, " is used by container ", c->id, " (", c->config.metadata().name(),
          "): remove the container first"));
    }
    for (const ImageVolumeUse& v : c->image_volumes) {
      if (v.image_id == (*found)->id) {
        return absl::FailedPreconditionError(absl::StrCat(
            "image ", ref, " is mounted by container ", c->id, " (", c->config.metadata().name(),
            ") as an image volume (config.mounts[", v.index, "]): remove the container first"));
      }
    }
  }
  return rt.images().Remove((*found)->id);
}

}  // namespace crius::cri
