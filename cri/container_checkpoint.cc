// CheckpointContainer: refused, with the reason. Checkpointing a running
// container (kubelet's ContainerCheckpoint feature, for forensics) needs
// CRIU to dump its processes, and crius has no CRIU integration.
#include "absl/strings/str_cat.h"
#include "cri/handlers.h"

namespace crius::cri {

absl::Status CheckpointContainerRefused(Runtime&, const v1::CheckpointContainerRequest& req,
                                        v1::CheckpointContainerResponse*) {
  return absl::UnimplementedError(absl::StrCat(
      "CheckpointContainer: crius does not checkpoint containers (it has no CRIU integration); container ",
      req.container_id(), " is left as it is"));
}

}  // namespace crius::cri
