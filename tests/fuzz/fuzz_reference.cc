// Image references as kubelet and users write them (PullImage, ImageStatus,
// CreateContainer's image): a reference that parses prints as one that
// parses to the same parts.
#include <cstddef>
#include <cstdint>

#include "image/reference.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<crius::image::Reference> ref = crius::image::ParseReference(text);
  if (!ref.ok()) return 0;
  absl::StatusOr<crius::image::Reference> again = crius::image::ParseReference(ref->String());
  if (!again.ok() || again->domain != ref->domain || again->path != ref->path || again->tag != ref->tag ||
      again->digest != ref->digest) {
    __builtin_trap();
  }
  return 0;
}
