#include "image/image_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "image/unpack.h"

namespace crius::image {
namespace {

using json = nlohmann::json;

std::atomic<uint64_t> g_tmp_seq{0};

std::string Hex(absl::string_view digest) { return std::string(digest.substr(7)); }

json StringMapJson(const std::map<std::string, std::string>& m) {
  json j = json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j;
}

// Readers for our own record format; a damaged record reads as empty fields.
std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}
int64_t Int(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}
std::vector<std::string> StrList(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}
std::map<std::string, std::string> StrMap(const json& j, const char* key) {
  std::map<std::string, std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_object()) return out;
  for (auto& [k, v] : it->items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

ImageInfo FromRecord(const store::ImageRecord& r) {
  ImageInfo i;
  i.id = r.id;
  i.repo_tags = r.repo_tags;
  i.repo_digests = r.repo_digests;
  i.size = r.size;
  i.pinned = r.pinned;
  i.created_at_ns = r.created_at_ns;
  if (absl::Status st = DecodeImageSpec(r.spec, &i); !st.ok()) {
    LOG_WARN("image %s: %s", r.id, std::string(st.message()));
  }
  return i;
}

}  // namespace

std::string EncodeImageSpec(const ImageInfo& i) {
  const ImageConfig& c = i.config;
  json layers = json::array();
  for (const LayerInfo& l : i.layers) {
    layers.push_back({{"digest", l.digest}, {"mediaType", l.media_type}, {"size", l.size},
                      {"diffID", l.diff_id}, {"chainID", l.chain_id},
                      {"unpackedBytes", l.unpacked_bytes}, {"inodes", l.inodes}});
  }
  json j = {
      {"manifestDigest", i.manifest_digest},
      {"annotations", StringMapJson(i.annotations)},
      {"config",
       {{"architecture", c.architecture}, {"os", c.os}, {"Entrypoint", c.entrypoint},
        {"Cmd", c.cmd}, {"Env", c.env}, {"User", c.user}, {"WorkingDir", c.working_dir},
        {"StopSignal", c.stop_signal}, {"Labels", StringMapJson(c.labels)},
        {"ExposedPorts", c.exposed_ports}, {"Volumes", c.volumes}, {"diffIDs", c.diff_ids}}},
      {"layers", layers},
  };
  return j.dump();
}

absl::Status DecodeImageSpec(absl::string_view text, ImageInfo* i) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (!j.is_object()) return absl::DataLossError("image record spec is not a JSON object");
  i->manifest_digest = Str(j, "manifestDigest");
  i->annotations = StrMap(j, "annotations");
  if (auto c = j.find("config"); c != j.end() && c->is_object()) {
    ImageConfig& ic = i->config;
    ic.architecture = Str(*c, "architecture");
    ic.os = Str(*c, "os");
    ic.entrypoint = StrList(*c, "Entrypoint");
    ic.cmd = StrList(*c, "Cmd");
    ic.env = StrList(*c, "Env");
    ic.user = Str(*c, "User");
    ic.working_dir = Str(*c, "WorkingDir");
    ic.stop_signal = Str(*c, "StopSignal");
    ic.labels = StrMap(*c, "Labels");
    ic.exposed_ports = StrList(*c, "ExposedPorts");
    ic.volumes = StrList(*c, "Volumes");
    ic.diff_ids = StrList(*c, "diffIDs");
  }
  if (auto ls = j.find("layers"); ls != j.end() && ls->is_array()) {
    for (const json& l : *ls) {
      if (!l.is_object()) continue;
      i->layers.push_back({Str(l, "digest"), Str(l, "mediaType"), Int(l, "size"), Str(l, "diffID"),
                           Str(l, "chainID"), static_cast<uint64_t>(Int(l, "unpackedBytes")),
                           static_cast<uint64_t>(Int(l, "inodes"))});
    }
  }
  return absl::OkStatus();
}

ImageStore::ImageStore(std::string root, store::Store& db, std::unique_ptr<ContentStore> content,
                       std::unique_ptr<Registry> registry)
    : root_(std::move(root)), db_(db), content_(std::move(content)), registry_(std::move(registry)) {}

// Crash points: none, it runs at every start, which does it again
absl::StatusOr<std::unique_ptr<ImageStore>> ImageStore::Open(const std::string& root,
                                                            store::Store& db,
                                                            RegistryOptions options,
                                                            UnpackLimits limits) {
  CRIUS_ASSIGN_OR_RETURN(std::unique_ptr<ContentStore> content, ContentStore::Open(root));
  CRIUS_ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry, Registry::Create(std::move(options)));
  std::string layers = absl::StrCat(root, "/layers");
  if (auto made = MakeDirs(layers, 0700); !made.ok()) {
    return Annotate(made.status(), "create layer store");
  }
  std::unique_ptr<ImageStore> s(
      new ImageStore(root, db, std::move(content), std::move(registry)));
  s->limits_ = limits;
  // Unpacks a crash interrupted.
  UniqueFd dir(::open(layers.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return ErrnoError(errno, absl::StrCat("open ", layers));
  if (DIR* d = ::opendir(layers.c_str())) {
    std::vector<std::string> partial;
    while (struct dirent* e = ::readdir(d)) {
      if (absl::StartsWith(e->d_name, ".tmp-")) partial.push_back(e->d_name);
    }
    ::closedir(d);
    for (const std::string& name : partial) {
      LOG_INFO("removing partial layer %s/%s", layers, name);
      CRIUS_RETURN_IF_ERROR(RemoveTreeAt(dir.get(), name));
    }
  }
  std::lock_guard<std::mutex> lock(s->mu_);
  CRIUS_RETURN_IF_ERROR(Annotate(s->Collect(), "collect unreferenced image content"));
  return s;
}

std::string ImageStore::LayerDir(const std::string& chain_id) const {
  return absl::StrCat(root_, "/layers/", Hex(chain_id));
}

std::vector<std::string> ImageStore::LayerDirs(const ImageInfo& image) const {
  std::vector<std::string> out;
  for (auto it = image.layers.rbegin(); it != image.layers.rend(); ++it) {
    out.push_back(LayerDir(it->chain_id));
  }
  return out;
}

// Crash points: at its callers
absl::Status ImageStore::Unpack(LayerInfo& layer) {
  std::string final_dir = LayerDir(layer.chain_id);
  struct stat st;
  if (::stat(final_dir.c_str(), &st) == 0) return absl::OkStatus();
  std::string layers = absl::StrCat(root_, "/layers");
  std::string tmp_name = absl::StrCat(".tmp-", Hex(layer.chain_id), ".", g_tmp_seq.fetch_add(1));
  std::string tmp = absl::StrCat(layers, "/", tmp_name);
  // no crash point: a scratch directory, which the next start removes
  if (::mkdir(tmp.c_str(), 0755) != 0) return ErrnoError(errno, absl::StrCat("mkdir ", tmp));
  auto remove_tmp = [&] {
    UniqueFd dir(::open(layers.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) (void)RemoveTreeAt(dir.get(), tmp_name);  // no crash point: as the mkdir
  };
  absl::StatusOr<UnpackedLayer> r = UnpackLayer(content_->PathOf(layer.digest), tmp, limits_);
  if (!r.ok()) {
    remove_tmp();
    return Annotate(r.status(), absl::StrCat("unpack layer ", layer.digest, " into ", tmp));
  }
  if (r->diff_id != layer.diff_id) {
    remove_tmp();
    return absl::DataLossError(absl::StrCat("unpack layer ", layer.digest, ": its content has diff_id ",
                                            r->diff_id, ", the image config says ", layer.diff_id));
  }
  DirUsage u = UsageOf(tmp);
  layer.unpacked_bytes += u.bytes;
  layer.inodes += u.inodes;
  if (::rename(tmp.c_str(), final_dir.c_str()) != 0) {
    int err = errno;
    remove_tmp();
    return ErrnoError(err, absl::StrCat("rename ", tmp, " to ", final_dir));
  }
  return absl::OkStatus();
}

// Crash points: at its callers
absl::Status ImageStore::Record(ImageInfo& image) {
  std::lock_guard<std::mutex> lock(mu_);
  CRIUS_ASSIGN_OR_RETURN(std::optional<store::ImageRecord> existing, db_.GetImage(image.id));
  store::ImageRecord rec;
  rec.id = image.id;
  rec.repo_tags = image.repo_tags;
  rec.repo_digests = image.repo_digests;
  if (existing) {
    for (const auto& t : existing->repo_tags) {
      if (std::find(rec.repo_tags.begin(), rec.repo_tags.end(), t) == rec.repo_tags.end()) rec.repo_tags.push_back(t);
    }
    for (const auto& d : existing->repo_digests) {
      if (std::find(rec.repo_digests.begin(), rec.repo_digests.end(), d) == rec.repo_digests.end()) rec.repo_digests.push_back(d);
    }
    rec.pinned = existing->pinned;
  }
  rec.size = image.size;
  rec.spec = EncodeImageSpec(image);
  rec.created_at_ns = image.created_at_ns;
  // A tag names one image: the one pulled last. The images it leaves are
  // written with the new record, in one transaction.
  std::vector<store::ImageRecord> changed = {rec};
  CRIUS_ASSIGN_OR_RETURN(std::vector<store::ImageRecord> all, db_.ListImages());
  for (store::ImageRecord& other : all) {
    if (other.id == image.id) continue;
    size_t before = other.repo_tags.size();
    std::erase_if(other.repo_tags, [&](const std::string& t) {
      return std::find(rec.repo_tags.begin(), rec.repo_tags.end(), t) != rec.repo_tags.end();
    });
    if (other.repo_tags.size() != before) changed.push_back(std::move(other));
  }
  CRIUS_RETURN_IF_ERROR(db_.PutImages(changed));
  image.repo_tags = rec.repo_tags;
  image.repo_digests = rec.repo_digests;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<ImageInfo>> ImageStore::Find(const std::string& text) {
  if (text.empty()) return std::optional<ImageInfo>();
  CRIUS_ASSIGN_OR_RETURN(std::vector<store::ImageRecord> all, db_.ListImages());
  // An id, or a unique prefix of one (with or without "sha256:").
  std::string id = absl::StartsWith(text, "sha256:") ? text : absl::StrCat("sha256:", text);
  bool hex = id.size() > 7 && std::all_of(id.begin() + 7, id.end(), [](char c) {
               return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f');
             });
  if (hex) {
    const store::ImageRecord* match = nullptr;
    int matches = 0;
    for (const auto& r : all) {
      if (absl::StartsWith(r.id, id)) {
        match = &r;
        ++matches;
      }
    }
    if (matches == 1) return std::optional<ImageInfo>(FromRecord(*match));
  }
  absl::StatusOr<Reference> ref = ParseReference(text);
  if (!ref.ok()) return std::optional<ImageInfo>();
  std::string want = ref->digest.empty() ? ref->TagRef() : ref->DigestRef(ref->digest);
  const store::ImageRecord* best = nullptr;
  for (const auto& r : all) {
    const auto& names = ref->digest.empty() ? r.repo_tags : r.repo_digests;
    if (std::find(names.begin(), names.end(), want) != names.end() &&
        (best == nullptr || r.created_at_ns > best->created_at_ns)) {
      best = &r;
    }
  }
  if (best == nullptr) return std::optional<ImageInfo>();
  return std::optional<ImageInfo>(FromRecord(*best));
}

absl::StatusOr<std::vector<ImageInfo>> ImageStore::List() {
  CRIUS_ASSIGN_OR_RETURN(std::vector<store::ImageRecord> all, db_.ListImages());
  std::vector<ImageInfo> out;
  out.reserve(all.size());
  for (const auto& r : all) out.push_back(FromRecord(r));
  return out;
}

absl::Status ImageStore::Remove(const std::string& text) {
  CRIUS_ASSIGN_OR_RETURN(std::optional<ImageInfo> image, Find(text));
  if (!image) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  CRIUS_RETURN_IF_ERROR(db_.DeleteImage(image->id));
  CRIUS_FAILPOINT("image_remove.after_record");
  CRIUS_RETURN_IF_ERROR(Collect());
  CRIUS_FAILPOINT("image_remove.after_collect");
  return absl::OkStatus();
}

// Crash points: at its callers
absl::Status ImageStore::Collect() {
  CRIUS_ASSIGN_OR_RETURN(std::vector<store::ImageRecord> all, db_.ListImages());
  std::set<std::string> keep(leases_.begin(), leases_.end());
  for (const auto& r : all) {
    ImageInfo i = FromRecord(r);
    keep.insert(i.id);
    keep.insert(i.manifest_digest);
    for (const std::string& d : i.repo_digests) {
      if (size_t at = d.find('@'); at != std::string::npos) keep.insert(d.substr(at + 1));
    }
    for (const LayerInfo& l : i.layers) {
      keep.insert(l.digest);
      keep.insert(l.chain_id);
    }
  }
  CRIUS_ASSIGN_OR_RETURN(std::vector<std::string> blobs, content_->List());
  for (const std::string& digest : blobs) {
    // no crash point: a blob no record names, which the next start's collection removes
    if (!keep.count(digest)) CRIUS_RETURN_IF_ERROR(content_->Delete(digest));
  }
  std::string layers = absl::StrCat(root_, "/layers");
  UniqueFd dir(::open(layers.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return ErrnoError(errno, absl::StrCat("open ", layers));
  std::vector<std::string> unused;
  if (DIR* d = ::opendir(layers.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name[0] == '.') continue;  // ".", "..", and unpacks under way
      if (!keep.count(absl::StrCat("sha256:", name))) unused.push_back(name);
    }
    ::closedir(d);
  }
  for (const std::string& name : unused) {
    LOG_DEBUG("collecting layer %s", name);
    CRIUS_RETURN_IF_ERROR(RemoveTreeAt(dir.get(), name));
  }
  return absl::OkStatus();
}

FsUsage ImageStore::Usage() {
  FsUsage u;
  u.mountpoint = root_;
  u.used_bytes = content_->UsedBytes();
  absl::StatusOr<std::vector<store::ImageRecord>> all = db_.ListImages();
  std::set<std::string> counted;
  if (all.ok()) {
    for (const auto& r : *all) {
      ImageInfo i = FromRecord(r);
      for (const LayerInfo& l : i.layers) {
        if (!counted.insert(l.chain_id).second) continue;
        u.used_bytes += l.unpacked_bytes;
        u.inodes_used += l.inodes;
      }
    }
    absl::StatusOr<std::vector<std::string>> blobs = content_->List();
    if (blobs.ok()) u.inodes_used += blobs->size();
  }
  return u;
}

}  // namespace crius::image
