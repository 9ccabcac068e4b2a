// ImageInfo (the image store's view) to the CRI Image message.
#pragma once

#include "api.pb.h"
#include "image/image_store.h"

namespace crius::cri {

void ToCriImage(const image::ImageInfo& info, ::runtime::v1::Image* out);

// Whether `info` matches a ListImages filter's image spec (empty matches all).
bool MatchesFilter(image::ImageStore& images, const image::ImageInfo& info,
                   const ::runtime::v1::ImageFilter& filter);

}  // namespace crius::cri
