#include "cri/handlers.h"
#include "cri/version.h"

namespace crius::cri {

absl::Status RuntimeVersion(Runtime&, const v1::VersionRequest&, v1::VersionResponse* resp) {
  // `version` is the version of the CRI API kubelet's client library speaks.
  resp->set_version("0.1.0");
  resp->set_runtime_name("crius");
  resp->set_runtime_version(CRIUS_VERSION);
  resp->set_runtime_api_version("v1");
  return absl::OkStatus();
}

}  // namespace crius::cri
