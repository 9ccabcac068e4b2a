// OCI and Docker schema 2 manifests, indexes / manifest lists, and image
// configs: parsed from what a registry sends, trusting nothing in it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crius::image {

namespace media {
inline constexpr absl::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr absl::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr absl::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr absl::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr absl::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr absl::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr absl::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr absl::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr absl::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr absl::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
}  // namespace media

// What the Accept header of a manifest request lists.
inline constexpr absl::string_view kManifestAccept =
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
};

struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  Platform platform;  // index entries only
  std::map<std::string, std::string> annotations;
};

struct Index {
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;
};

struct Manifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
};

struct ImageConfig {
  std::string architecture;
  std::string os;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;
  std::string user;
  std::string working_dir;
  std::string stop_signal;
  std::map<std::string, std::string> labels;
  std::vector<std::string> exposed_ports;
  std::vector<std::string> volumes;
  std::vector<std::string> diff_ids;
};

bool IsIndexType(absl::string_view media_type);
bool IsManifestType(absl::string_view media_type);

// The media type of a manifest body: its own mediaType field, else the
// Content-Type the registry gave, else guessed from the fields present.
std::string ManifestMediaType(absl::string_view body, absl::string_view content_type);

absl::StatusOr<Index> ParseIndex(absl::string_view body);
absl::StatusOr<Manifest> ParseManifest(absl::string_view body);
absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view body);

// The entry for linux/<arch> (variant ignored for amd64), or NotFound
// listing the platforms the index does offer.
absl::StatusOr<Descriptor> ChoosePlatform(const Index& index, absl::string_view os,
                                          absl::string_view architecture);

// The compression of a layer media type: "", "gzip" or "zstd";
// InvalidArgument for a media type that is not a layer we can unpack.
absl::StatusOr<std::string> LayerCompression(absl::string_view media_type);

}  // namespace crius::image
