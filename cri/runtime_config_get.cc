#include "cri/handlers.h"

namespace crius::cri {

absl::Status RuntimeConfigGet(Runtime& rt, const v1::RuntimeConfigRequest&,
                              v1::RuntimeConfigResponse* resp) {
  // ValidateConfig admits only cgroupfs today; systemd joins it with its driver.
  resp->mutable_linux()->set_cgroup_driver(v1::CGROUPFS);
  return absl::OkStatus();
}

}  // namespace crius::cri
