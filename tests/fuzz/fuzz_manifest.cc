// What a registry sends: an index (or Docker manifest list), a manifest and
// an image config. One input is tried as each, and an index that parses is
// asked for linux/amd64 as a pull would.
#include <cstddef>
#include <cstdint>

#include "image/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view body(reinterpret_cast<const char*>(data), size);
  if (absl::StatusOr<crius::image::Index> index = crius::image::ParseIndex(body); index.ok()) {
    (void)crius::image::ChoosePlatform(*index, "linux", "amd64");
  }
  if (absl::StatusOr<crius::image::Manifest> manifest = crius::image::ParseManifest(body); manifest.ok()) {
    for (const crius::image::Descriptor& layer : manifest->layers) {
      (void)crius::image::LayerCompression(layer.media_type);
    }
  }
  (void)crius::image::ParseImageConfig(body);
  return 0;
}
