// Unpacks one image layer (a tar, plain, gzip or zstd) into its own
// directory, in the form overlayfs stacks: whiteouts become 0/0 character
// devices and opaque directories get trusted.overlay.opaque=y.
//
// Nothing in a layer may reach outside its directory: absolute paths, ".."
// components, and entries whose path would pass through a symlink that
// leaves the directory fail the unpack (every path is resolved with
// openat2(RESOLVE_BENEATH) below the layer's directory fd). So do whiteouts
// that hide "." or "..", and entries under a whiteout name (".wh.a/b").
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace crius::image {

struct UnpackedLayer {
  std::string diff_id;  // sha256 of the uncompressed tar
  uint64_t tar_bytes = 0;
  uint64_t entries = 0;
};

struct UnpackLimits {
  // Of the uncompressed tar stream: a layer that inflates past it (a
  // decompression bomb) fails with ResourceExhausted once it gets there.
  uint64_t max_bytes = uint64_t{64} << 30;
};

// `dest` must be an existing, empty directory. On error, `dest` holds a part
// of the layer: the caller removes it.
absl::StatusOr<UnpackedLayer> UnpackLayer(const std::string& blob_path, const std::string& dest,
                                          const UnpackLimits& limits = {});

}  // namespace crius::image
