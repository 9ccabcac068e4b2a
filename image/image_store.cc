#include "image/image_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "image/unpack.h"

namespace crius::image {
namespace {

using json = nlohmann::json;

constexpr int kParallelLayers = 4;
std::atomic<uint64_t> g_tmp_seq{0};

int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::string Hex(absl::string_view digest) { return std::string(digest.substr(7)); }

// Holds digests and chain ids of a pull under way, so collection spares them.
class Lease {
 public:
  Lease(std::mutex& mu, std::multiset<std::string>& leases, std::vector<std::string> keys)
      : mu_(mu), leases_(leases), keys_(std::move(keys)) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& k : keys_) leases_.insert(k);
  }
  ~Lease() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& k : keys_) leases_.erase(leases_.find(k));
  }

 private:
  std::mutex& mu_;
  std::multiset<std::string>& leases_;
  std::vector<std::string> keys_;
};

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

absl::StatusOr<std::unique_ptr<ImageStore>> ImageStore::Open(const std::string& root,
                                                            store::Store& db,
                                                            RegistryOptions options) {
  CRIUS_ASSIGN_OR_RETURN(std::unique_ptr<ContentStore> content, ContentStore::Open(root));
  CRIUS_ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry, Registry::Create(std::move(options)));
  std::string layers = absl::StrCat(root, "/layers");
  if (auto made = MakeDirs(layers, 0700); !made.ok()) {
    return Annotate(made.status(), "create layer store");
  }
  std::unique_ptr<ImageStore> s(
      new ImageStore(root, db, std::move(content), std::move(registry)));
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

template <typename Fn>
absl::Status ImageStore::Once(std::map<std::string, std::shared_future<absl::Status>>& inflight,
                              const std::string& key, Fn&& work) {
  std::promise<absl::Status> promise;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (auto it = inflight.find(key); it != inflight.end()) {
      std::shared_future<absl::Status> other = it->second;
      lock.unlock();
      return other.get();
    }
    inflight[key] = promise.get_future().share();
  }
  absl::Status st = work();
  promise.set_value(st);
  std::lock_guard<std::mutex> lock(mu_);
  inflight.erase(key);
  return st;
}

absl::StatusOr<ImageInfo> ImageStore::Pull(const std::string& text, const Credentials& creds) {
  CRIUS_ASSIGN_OR_RETURN(Reference ref, ParseReference(text));
  std::string key = ref.String();
  std::promise<absl::StatusOr<ImageInfo>> promise;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (auto it = pulls_.find(key); it != pulls_.end()) {
      auto other = it->second;
      lock.unlock();
      absl::StatusOr<ImageInfo> shared = other.get();
      if (shared.ok()) shared->fetched_bytes = 0;  // the other pull fetched it
      return shared;
    }
    pulls_[key] = promise.get_future().share();
  }
  std::atomic<uint64_t> fetched{0};
  absl::StatusOr<ImageInfo> result = DoPull(ref, creds, fetched);
  if (result.ok()) result->fetched_bytes = fetched.load();
  if (!result.ok()) {
    result = Annotate(result.status(), absl::StrCat("pull ", key));
    // What the failed pull fetched goes again, unless another image uses it.
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status st = Collect(); !st.ok()) {
      LOG_WARN("after a failed pull of %s: %s", key, std::string(st.message()));
    }
  }
  promise.set_value(result);
  std::lock_guard<std::mutex> lock(mu_);
  pulls_.erase(key);
  return result;
}

absl::StatusOr<ImageInfo> ImageStore::DoPull(const Reference& ref, const Credentials& creds,
                                             std::atomic<uint64_t>& fetched) {
  std::string reference = ref.digest.empty() ? ref.tag : ref.digest;
  std::vector<Endpoint> endpoints = registry_->EndpointsFor(ref);
  absl::StatusOr<FetchedManifest> top = absl::UnknownError("no endpoint");
  Endpoint ep;
  std::vector<std::string> failures;
  for (const Endpoint& candidate : endpoints) {
    top = registry_->GetManifest(candidate, reference, creds);
    if (top.ok()) {
      fetched += top->body.size();
      ep = candidate;
      break;
    }
    failures.push_back(std::string(top.status().message()));
  }
  if (!top.ok()) {
    // The last endpoint is the registry itself: its answer decides the code.
    return absl::Status(top.status().code(), absl::StrJoin(failures, "; "));
  }

  ImageInfo image;
  FetchedManifest manifest_blob = *top;
  std::string index_digest;
  if (IsIndexType(top->media_type)) {
    CRIUS_ASSIGN_OR_RETURN(Index index, ParseIndex(top->body));
    CRIUS_ASSIGN_OR_RETURN(Descriptor chosen, ChoosePlatform(index, "linux", "amd64"));
    image.annotations = index.annotations;
    index_digest = top->digest;
    CRIUS_ASSIGN_OR_RETURN(manifest_blob, registry_->GetManifest(ep, chosen.digest, creds));
    fetched += manifest_blob.body.size();
    if (!IsManifestType(manifest_blob.media_type)) {
      return absl::InvalidArgumentError(absl::StrCat("index entry ", chosen.digest,
                                                     " has media type \"", manifest_blob.media_type,
                                                     "\", which is not an image manifest"));
    }
  } else if (!IsManifestType(top->media_type)) {
    return absl::InvalidArgumentError(absl::StrCat("manifest media type \"", top->media_type,
                                                   "\" is not supported"));
  }
  CRIUS_ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(manifest_blob.body));
  for (const auto& [k, v] : manifest.annotations) image.annotations[k] = v;
  for (const Descriptor& l : manifest.layers) {
    if (absl::StatusOr<std::string> c = LayerCompression(l.media_type); !c.ok()) {
      return Annotate(c.status(), absl::StrCat("layer ", l.digest));
    }
  }
  CRIUS_ASSIGN_OR_RETURN(std::string config_body, registry_->GetSmallBlob(ep, manifest.config, creds));
  fetched += config_body.size();
  CRIUS_ASSIGN_OR_RETURN(image.config, ParseImageConfig(config_body));
  if (image.config.diff_ids.size() != manifest.layers.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the manifest has ", manifest.layers.size(), " layers but the config lists ",
        image.config.diff_ids.size(), " diff_ids"));
  }

  image.id = manifest.config.digest;
  image.manifest_digest = manifest_blob.digest;
  image.size = manifest.config.size;
  std::vector<std::string> leased = {image.id, manifest_blob.digest};
  if (!index_digest.empty()) leased.push_back(index_digest);
  std::string chain;
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    const Descriptor& d = manifest.layers[i];
    const std::string& diff_id = image.config.diff_ids[i];
    chain = i == 0 ? diff_id : Sha256Digest(absl::StrCat(chain, " ", diff_id));
    image.layers.push_back({d.digest, d.media_type, d.size, diff_id, chain, 0, 0});
    image.size += d.size;
    leased.push_back(d.digest);
    leased.push_back(chain);
  }
  Lease lease(mu_, leases_, leased);

  CRIUS_RETURN_IF_ERROR(content_->Put(manifest_blob.digest, manifest_blob.body));
  if (!index_digest.empty()) CRIUS_RETURN_IF_ERROR(content_->Put(index_digest, top->body));
  CRIUS_RETURN_IF_ERROR(content_->Put(image.id, config_body));
  CRIUS_FAILPOINT("image_pull.after_manifest");

  // Layers are fetched and unpacked in parallel: each into its own directory.
  std::atomic<size_t> next{0};
  std::vector<absl::Status> results(image.layers.size());
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < image.layers.size();) {
      LayerInfo& layer = image.layers[i];
      Descriptor d{layer.media_type, layer.digest, layer.size, {}, {}};
      results[i] = Once(blob_fetches_, layer.digest, [&] { return FetchBlob({ep}, d, creds, fetched); });
      if (results[i].ok()) {
        results[i] = Once(unpacks_, layer.chain_id, [&] { return Unpack(layer); });
      }
      // Another pull may have unpacked it: count what is there.
      if (results[i].ok() && layer.unpacked_bytes == 0) {
        DirUsage u = UsageOf(LayerDir(layer.chain_id));
        layer.unpacked_bytes += u.bytes;
        layer.inodes += u.inodes;
      }
    }
  };
  std::vector<std::thread> workers;
  for (int i = 0; i < kParallelLayers && i < static_cast<int>(image.layers.size()); ++i) {
    workers.emplace_back(worker);
  }
  for (auto& w : workers) w.join();
  for (const absl::Status& st : results) CRIUS_RETURN_IF_ERROR(st);
  CRIUS_FAILPOINT("image_pull.after_layers");

  // Unpacked files reach the disk before a record points at them.
  UniqueFd rootfd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (rootfd) ::syncfs(rootfd.get());

  if (!ref.tag.empty()) image.repo_tags.push_back(ref.TagRef());
  image.repo_digests.push_back(ref.DigestRef(index_digest.empty() ? manifest_blob.digest : index_digest));
  image.created_at_ns = NowNs();
  CRIUS_RETURN_IF_ERROR(Record(image));
  CRIUS_FAILPOINT("image_pull.after_record");
  return image;
}

absl::Status ImageStore::FetchBlob(const std::vector<Endpoint>& eps, const Descriptor& d,
                                   const Credentials& creds, std::atomic<uint64_t>& fetched) {
  if (content_->Has(d.digest)) return absl::OkStatus();
  absl::Status last;
  for (const Endpoint& ep : eps) {
    CRIUS_ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> writer, content_->Writer(d.digest, d.size));
    last = registry_->GetBlob(ep, d, *writer, creds);
    fetched += writer->written();
    if (last.ok()) return last;
  }
  return last;
}

absl::Status ImageStore::Unpack(LayerInfo& layer) {
  std::string final_dir = LayerDir(layer.chain_id);
  struct stat st;
  if (::stat(final_dir.c_str(), &st) == 0) return absl::OkStatus();
  std::string layers = absl::StrCat(root_, "/layers");
  std::string tmp_name = absl::StrCat(".tmp-", Hex(layer.chain_id), ".", g_tmp_seq.fetch_add(1));
  std::string tmp = absl::StrCat(layers, "/", tmp_name);
  if (::mkdir(tmp.c_str(), 0755) != 0) return ErrnoError(errno, absl::StrCat("mkdir ", tmp));
  auto remove_tmp = [&] {
    UniqueFd dir(::open(layers.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) (void)RemoveTreeAt(dir.get(), tmp_name);
  };
  absl::StatusOr<UnpackedLayer> r = UnpackLayer(content_->PathOf(layer.digest), tmp);
  if (!r.ok()) {
    remove_tmp();
    return Annotate(r.status(), absl::StrCat("unpack layer ", layer.digest));
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
  CRIUS_RETURN_IF_ERROR(db_.PutImage(rec));
  image.repo_tags = rec.repo_tags;
  image.repo_digests = rec.repo_digests;
  // A tag names one image: the one pulled last. (Written after the new
  // record, so a crash in between leaves the tag on both, never on none.)
  CRIUS_ASSIGN_OR_RETURN(std::vector<store::ImageRecord> all, db_.ListImages());
  for (store::ImageRecord& other : all) {
    if (other.id == image.id) continue;
    size_t before = other.repo_tags.size();
    std::erase_if(other.repo_tags, [&](const std::string& t) {
      return std::find(image.repo_tags.begin(), image.repo_tags.end(), t) != image.repo_tags.end();
    });
    if (other.repo_tags.size() != before) CRIUS_RETURN_IF_ERROR(db_.PutImage(other));
  }
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
  return Collect();
}

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
