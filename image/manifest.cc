#include "image/manifest.h"

#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "image/reference.h"

namespace crius::image {
namespace {

using json = nlohmann::json;

absl::StatusOr<json> ParseJson(absl::string_view body, absl::string_view what) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(what, " is not valid JSON"));
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(what, " is not a JSON object"));
  return j;
}

// Field readers that never throw: a wrong type is an error naming the field.
absl::Status String(const json& j, const char* key, std::string* out, absl::string_view what,
                    bool required = false) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return absl::InvalidArgumentError(absl::StrCat(what, ": field ", key, " is missing"));
    return absl::OkStatus();
  }
  if (!it->is_string()) return absl::InvalidArgumentError(absl::StrCat(what, ": field ", key, " is not a string"));
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status StringList(const json& j, const char* key, std::vector<std::string>* out,
                        absl::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_array()) return absl::InvalidArgumentError(absl::StrCat(what, ": field ", key, " is not an array"));
  for (const json& item : *it) {
    if (!item.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": field ", key, " has a non-string entry"));
    }
    out->push_back(item.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status StringMap(const json& j, const char* key, std::map<std::string, std::string>* out,
                       absl::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_object()) return absl::InvalidArgumentError(absl::StrCat(what, ": field ", key, " is not an object"));
  for (auto& [k, v] : it->items()) {
    if (!v.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", key, "[", k, "] is not a string"));
    }
    (*out)[k] = v.get<std::string>();
  }
  return absl::OkStatus();
}

// {"a": {}, "b": {}} -> ["a", "b"] (ExposedPorts, Volumes).
absl::Status KeysOf(const json& j, const char* key, std::vector<std::string>* out,
                    absl::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_object()) return absl::InvalidArgumentError(absl::StrCat(what, ": field ", key, " is not an object"));
  for (auto& [k, v] : it->items()) out->push_back(k);
  return absl::OkStatus();
}

absl::StatusOr<Descriptor> ParseDescriptor(const json& j, absl::string_view what) {
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(what, " is not an object"));
  Descriptor d;
  if (absl::Status st = String(j, "mediaType", &d.media_type, what); !st.ok()) return st;
  if (absl::Status st = String(j, "digest", &d.digest, what, true); !st.ok()) return st;
  if (!IsDigest(d.digest)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": \"", d.digest, "\" is not a sha256 digest"));
  }
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": field size is missing or not a size"));
  }
  d.size = size->get<int64_t>();
  if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
    if (absl::Status st = String(*p, "os", &d.platform.os, what); !st.ok()) return st;
    if (absl::Status st = String(*p, "architecture", &d.platform.architecture, what); !st.ok()) return st;
    if (absl::Status st = String(*p, "variant", &d.platform.variant, what); !st.ok()) return st;
  }
  if (absl::Status st = StringMap(j, "annotations", &d.annotations, what); !st.ok()) return st;
  return d;
}

}  // namespace

bool IsIndexType(absl::string_view t) { return t == media::kOciIndex || t == media::kDockerList; }
bool IsManifestType(absl::string_view t) {
  return t == media::kOciManifest || t == media::kDockerManifest;
}

std::string ManifestMediaType(absl::string_view body, absl::string_view content_type) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_object()) {
    if (auto mt = j.find("mediaType"); mt != j.end() && mt->is_string()) return mt->get<std::string>();
  }
  // Content-Type may carry parameters ("...; charset=utf-8").
  std::string ct(content_type.substr(0, content_type.find(';')));
  if (!ct.empty() && ct != "application/json" && ct != "text/plain") return ct;
  if (j.is_object() && j.contains("manifests")) return std::string(media::kOciIndex);
  if (j.is_object() && j.contains("layers") && j.contains("config")) {
    return std::string(media::kOciManifest);
  }
  return ct;
}

absl::StatusOr<Index> ParseIndex(absl::string_view body) {
  auto j = ParseJson(body, "image index");
  if (!j.ok()) return j.status();
  Index index;
  auto list = j->find("manifests");
  if (list == j->end() || !list->is_array()) {
    return absl::InvalidArgumentError("image index: field manifests is missing or not an array");
  }
  for (size_t i = 0; i < list->size(); ++i) {
    auto d = ParseDescriptor((*list)[i], absl::StrCat("image index: manifests[", i, "]"));
    if (!d.ok()) return d.status();
    index.manifests.push_back(*std::move(d));
  }
  if (absl::Status st = StringMap(*j, "annotations", &index.annotations, "image index"); !st.ok()) return st;
  return index;
}

absl::StatusOr<Manifest> ParseManifest(absl::string_view body) {
  auto j = ParseJson(body, "image manifest");
  if (!j.ok()) return j.status();
  Manifest m;
  if (auto v = j->find("schemaVersion"); v == j->end() || !v->is_number_integer() || *v != 2) {
    return absl::InvalidArgumentError("image manifest: schemaVersion is not 2");
  }
  if (absl::Status st = String(*j, "mediaType", &m.media_type, "image manifest"); !st.ok()) return st;
  auto config = j->find("config");
  if (config == j->end()) return absl::InvalidArgumentError("image manifest: field config is missing");
  auto c = ParseDescriptor(*config, "image manifest: config");
  if (!c.ok()) return c.status();
  m.config = *std::move(c);
  auto layers = j->find("layers");
  if (layers == j->end() || !layers->is_array()) {
    return absl::InvalidArgumentError("image manifest: field layers is missing or not an array");
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    auto d = ParseDescriptor((*layers)[i], absl::StrCat("image manifest: layers[", i, "]"));
    if (!d.ok()) return d.status();
    m.layers.push_back(*std::move(d));
  }
  if (absl::Status st = StringMap(*j, "annotations", &m.annotations, "image manifest"); !st.ok()) return st;
  return m;
}

absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view body) {
  auto j = ParseJson(body, "image config");
  if (!j.ok()) return j.status();
  ImageConfig c;
  constexpr absl::string_view what = "image config";
  if (absl::Status st = String(*j, "architecture", &c.architecture, what); !st.ok()) return st;
  if (absl::Status st = String(*j, "os", &c.os, what); !st.ok()) return st;
  if (auto cfg = j->find("config"); cfg != j->end() && !cfg->is_null()) {
    if (!cfg->is_object()) return absl::InvalidArgumentError("image config: field config is not an object");
    constexpr absl::string_view cwhat = "image config: config";
    for (absl::Status st : {StringList(*cfg, "Entrypoint", &c.entrypoint, cwhat),
                            StringList(*cfg, "Cmd", &c.cmd, cwhat),
                            StringList(*cfg, "Env", &c.env, cwhat),
                            String(*cfg, "User", &c.user, cwhat),
                            String(*cfg, "WorkingDir", &c.working_dir, cwhat),
                            String(*cfg, "StopSignal", &c.stop_signal, cwhat),
                            StringMap(*cfg, "Labels", &c.labels, cwhat),
                            KeysOf(*cfg, "ExposedPorts", &c.exposed_ports, cwhat),
                            KeysOf(*cfg, "Volumes", &c.volumes, cwhat)}) {
      if (!st.ok()) return st;
    }
  }
  auto rootfs = j->find("rootfs");
  if (rootfs == j->end() || !rootfs->is_object()) {
    return absl::InvalidArgumentError("image config: field rootfs is missing");
  }
  if (absl::Status st = StringList(*rootfs, "diff_ids", &c.diff_ids, "image config: rootfs"); !st.ok()) {
    return st;
  }
  for (const std::string& id : c.diff_ids) {
    if (!IsDigest(id)) {
      return absl::InvalidArgumentError(absl::StrCat("image config: rootfs.diff_ids has \"", id,
                                                     "\", which is not a sha256 digest"));
    }
  }
  return c;
}

absl::StatusOr<Descriptor> ChoosePlatform(const Index& index, absl::string_view os,
                                          absl::string_view architecture) {
  // Each platform once, in index order, and only the first few: an index may
  // have thousands of entries, and the error must stay readable.
  constexpr size_t kShown = 8;
  std::vector<std::string> offered;
  std::set<std::string> seen;
  for (const Descriptor& d : index.manifests) {
    if (d.platform.os == os && d.platform.architecture == architecture) return d;
    std::string p = absl::StrCat(d.platform.os, "/", d.platform.architecture);
    if (!d.platform.variant.empty()) absl::StrAppend(&p, "/", d.platform.variant);
    if (seen.insert(p).second && offered.size() < kShown) offered.push_back(p);
  }
  std::string more = seen.size() > kShown ? absl::StrCat(" and ", seen.size() - kShown, " more") : "";
  return absl::NotFoundError(absl::StrCat(
      "no manifest for ", os, "/", architecture, " in the index of ", index.manifests.size(),
      index.manifests.size() == 1 ? " entry" : " entries", " (it offers: ",
      offered.empty() ? "nothing" : absl::StrJoin(offered, ", "), more, ")"));
}

absl::StatusOr<std::string> LayerCompression(absl::string_view t) {
  if (t == media::kOciLayer) return std::string();
  if (t == media::kOciLayerGzip || t == media::kDockerLayerGzip) return std::string("gzip");
  if (t == media::kOciLayerZstd) return std::string("zstd");
  return absl::InvalidArgumentError(absl::StrCat("layer media type \"", t, "\" is not supported"));
}

}  // namespace crius::image
