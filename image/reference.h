// Image references as kubelet sends them ("busybox", "gcr.io/x/y:1.2",
// "repo@sha256:..."), normalised the way docker and containerd do.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crius::image {

inline constexpr absl::string_view kDockerHub = "docker.io";

struct Reference {
  std::string domain;  // "docker.io", "127.0.0.1:5000", "localhost"
  std::string path;    // "library/busybox"
  std::string tag;     // empty when only a digest was given
  std::string digest;  // "sha256:<64 hex>" or empty

  // "docker.io/library/busybox"
  std::string Repository() const { return domain + "/" + path; }
  // "docker.io/library/busybox:latest" or ".../busybox@sha256:..."; with
  // both, the tag and the digest.
  std::string String() const;
  // "docker.io/library/busybox:latest" (empty without a tag).
  std::string TagRef() const { return tag.empty() ? "" : Repository() + ":" + tag; }
  // "docker.io/library/busybox@sha256:..." for a given digest.
  std::string DigestRef(absl::string_view digest) const;
};

// Parses and normalises: the docker.io domain and its library/ prefix are
// added where the reference has none, and ":latest" when it has neither tag
// nor digest. InvalidArgument says what is wrong with the text.
absl::StatusOr<Reference> ParseReference(absl::string_view text);

// "sha256:<64 lowercase hex>" (the only algorithm registries use).
bool IsDigest(absl::string_view text);

}  // namespace crius::image
