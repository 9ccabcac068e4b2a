#include "cri/handlers.h"
#include "cri/image_convert.h"

namespace crius::cri {

absl::Status ImageList(Runtime& rt, const v1::ListImagesRequest& req, v1::ListImagesResponse* resp) {
  absl::StatusOr<std::vector<image::ImageInfo>> all = rt.images().List();
  if (!all.ok()) return all.status();
  for (const image::ImageInfo& info : *all) {
    if (MatchesFilter(rt.images(), info, req.filter())) ToCriImage(info, resp->add_images());
  }
  return absl::OkStatus();
}

absl::Status ImagesStream(Runtime& rt, const v1::StreamImagesRequest& req,
                          const std::function<bool(const v1::StreamImagesResponse&)>& send) {
  absl::StatusOr<std::vector<image::ImageInfo>> all = rt.images().List();
  if (!all.ok()) return all.status();
  // Batches keep each message far below the gRPC message limit.
  constexpr int kBatch = 256;
  v1::StreamImagesResponse batch;
  for (const image::ImageInfo& info : *all) {
    if (!MatchesFilter(rt.images(), info, req.filter())) continue;
    ToCriImage(info, batch.add_images());
    if (batch.images_size() == kBatch) {
      if (!send(batch)) return absl::CancelledError("StreamImages: the client went away");
      batch.Clear();
    }
  }
  if (batch.images_size() > 0 && !send(batch)) {
    return absl::CancelledError("StreamImages: the client went away");
  }
  return absl::OkStatus();
}

}  // namespace crius::cri
