#include "cri/image_convert.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace crius::cri {

void ToCriImage(const image::ImageInfo& info, ::runtime::v1::Image* out) {
  out->set_id(info.id);
  for (const auto& t : info.repo_tags) out->add_repo_tags(t);
  for (const auto& d : info.repo_digests) out->add_repo_digests(d);
  out->set_size(static_cast<uint64_t>(info.size));
  out->set_pinned(info.pinned);
  // USER is "name", "uid", "name:group" or "uid:gid": kubelet wants the uid
  // when it is numeric (runAsNonRoot checks), else the name.
  std::string user = info.config.user.substr(0, info.config.user.find(':'));
  int64_t uid = 0;
  if (user.empty()) {
    out->mutable_uid()->set_value(0);
  } else if (absl::SimpleAtoi(user, &uid)) {
    out->mutable_uid()->set_value(uid);
  } else {
    out->set_username(user);
  }
  out->mutable_spec()->set_image(info.id);
  for (const auto& [k, v] : info.annotations) (*out->mutable_spec()->mutable_annotations())[k] = v;
}

bool MatchesFilter(image::ImageStore& images, const image::ImageInfo& info,
                   const ::runtime::v1::ImageFilter& filter) {
  const std::string& want = filter.image().image();
  if (want.empty()) return true;
  absl::StatusOr<std::optional<image::ImageInfo>> found = images.Find(want);
  return found.ok() && found->has_value() && (*found)->id == info.id;
}

}  // namespace crius::cri
