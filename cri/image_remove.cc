#include "cri/handlers.h"

namespace crius::cri {

absl::Status ImageRemove(Runtime& rt, const v1::RemoveImageRequest& req, v1::RemoveImageResponse*) {
  const std::string& ref = req.image().image();
  if (ref.empty()) return absl::InvalidArgumentError("image.image: the image reference is empty");
  // Removing an image that is not there succeeds (kubelet retries removals).
  return rt.images().Remove(ref);
}

}  // namespace crius::cri
