#include <nlohmann/json.hpp>

#include "cri/handlers.h"
#include "cri/image_convert.h"

namespace crius::cri {

absl::Status ImageStatusGet(Runtime& rt, const v1::ImageStatusRequest& req, v1::ImageStatusResponse* resp) {
  const std::string& ref = req.image().image();
  if (ref.empty()) return absl::InvalidArgumentError("image.image: the image reference is empty");
  absl::StatusOr<std::optional<image::ImageInfo>> found = rt.images().Find(ref);
  if (!found.ok()) return found.status();
  // An unknown image is an empty answer, not an error: kubelet pulls then.
  if (!found->has_value()) return absl::OkStatus();
  const image::ImageInfo& info = **found;
  ToCriImage(info, resp->mutable_image());
  if (req.verbose()) {
    const image::ImageConfig& c = info.config;
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& l : info.layers) {
      layers.push_back({{"digest", l.digest}, {"mediaType", l.media_type}, {"size", l.size},
                        {"diffID", l.diff_id}, {"chainID", l.chain_id}});
    }
    nlohmann::json j = {
        {"manifestDigest", info.manifest_digest},
        {"layers", layers},
        {"layerDirs", rt.images().LayerDirs(info)},
        {"imageConfig",
         {{"architecture", c.architecture}, {"os", c.os}, {"Entrypoint", c.entrypoint},
          {"Cmd", c.cmd}, {"Env", c.env}, {"User", c.user}, {"WorkingDir", c.working_dir},
          {"StopSignal", c.stop_signal}, {"Labels", c.labels}, {"ExposedPorts", c.exposed_ports},
          {"Volumes", c.volumes}}},
        {"annotations", info.annotations},
    };
    (*resp->mutable_info())["info"] = j.dump();
  }
  return absl::OkStatus();
}

}  // namespace crius::cri
