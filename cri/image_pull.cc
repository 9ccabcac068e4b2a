#include <chrono>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "cri/handlers.h"
#include "metrics/metrics.h"

namespace crius::cri {

absl::Status ImagePull(Runtime& rt, const v1::PullImageRequest& req, v1::PullImageResponse* resp,
                       const image::PullCaller& caller) {
  const std::string& ref = req.image().image();
  if (ref.empty()) return absl::InvalidArgumentError("image.image: the image reference is empty");
  image::Credentials creds;
  const v1::AuthConfig& auth = req.auth();
  creds.username = auth.username();
  creds.password = auth.password();
  creds.identity_token = auth.identity_token();
  creds.registry_token = auth.registry_token();
  if (!auth.auth().empty()) {
    // "auth" is base64("user:password"), as in a docker config.json.
    std::string decoded;
    if (!absl::Base64Unescape(auth.auth(), &decoded) || decoded.find(':') == std::string::npos) {
      return absl::InvalidArgumentError("auth.auth: not base64 of \"user:password\"");
    }
    creds.username = decoded.substr(0, decoded.find(':'));
    creds.password = decoded.substr(decoded.find(':') + 1);
  }
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<image::ImageInfo> pulled = rt.images().Pull(ref, creds, caller);
  if (metrics::Metrics* m = metrics::Current()) {
    m->ObservePull(pulled.ok(), pulled.ok() ? pulled->fetched_bytes : 0,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  if (!pulled.ok()) return pulled.status();
  resp->set_image_ref(pulled->id);
  return absl::OkStatus();
}

}  // namespace crius::cri
