// Images: pulled from registries into the content store, unpacked once per
// layer (by chain id), recorded in the state database, collected when no
// image references them any more.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "image/content_store.h"
#include "image/manifest.h"
#include "image/pull_progress.h"
#include "image/reference.h"
#include "image/registry.h"
#include "image/unpack.h"
#include "store/store.h"

namespace crius::image {

struct LayerInfo {
  std::string digest;  // compressed blob
  std::string media_type;
  int64_t size = 0;
  std::string diff_id;
  std::string chain_id;
  uint64_t unpacked_bytes = 0;
  uint64_t inodes = 0;
};

struct ImageInfo {
  std::string id;  // config digest
  std::vector<std::string> repo_tags;
  std::vector<std::string> repo_digests;
  int64_t size = 0;  // config + compressed layers
  bool pinned = false;
  int64_t created_at_ns = 0;
  std::string manifest_digest;
  ImageConfig config;
  std::vector<LayerInfo> layers;
  // Manifest annotations over index annotations (the manifest's win).
  std::map<std::string, std::string> annotations;
  // Not recorded: what the Pull that returned this fetched from registries
  // (0 for a caller that shared another's pull).
  uint64_t fetched_bytes = 0;
};

struct FsUsage {
  std::string mountpoint;
  uint64_t used_bytes = 0;
  uint64_t inodes_used = 0;
};

class ImageStore {
 public:
  // Opens <root>/content and <root>/layers, removes what a crash left half
  // made, and collects blobs and layers no image references.
  static absl::StatusOr<std::unique_ptr<ImageStore>> Open(const std::string& root,
                                                         store::Store& db,
                                                         RegistryOptions registry,
                                                         UnpackLimits limits = {});

  // Abandons the pulls under way and waits for them to end.
  ~ImageStore();

  // Pulls `ref` (as kubelet sends it) for `caller`. Concurrent pulls of one
  // reference share one pull, which runs on a thread of its own; each caller
  // waits for it until its own deadline. When the last caller gives up, the
  // pull is abandoned: its transfers stop and what it fetched is collected.
  // Blobs and layers shared between images are fetched and unpacked once.
  // Nothing is recorded unless everything succeeded.
  absl::StatusOr<ImageInfo> Pull(const std::string& ref, const Credentials& creds,
                                 const PullCaller& caller);

  // By id ("sha256:..."), a unique id prefix, a tag reference or a digest
  // reference. nullopt when no image matches.
  absl::StatusOr<std::optional<ImageInfo>> Find(const std::string& text);
  absl::StatusOr<std::vector<ImageInfo>> List();
  // Removes the image (all its tags) and collects what only it used.
  // Removing an unknown image succeeds.
  absl::Status Remove(const std::string& text);
  FsUsage Usage();

  // The overlay lower directories of an image, topmost first.
  std::vector<std::string> LayerDirs(const ImageInfo& image) const;
  std::string LayerDir(const std::string& chain_id) const;

 private:
  ImageStore(std::string root, store::Store& db, std::unique_ptr<ContentStore> content,
             std::unique_ptr<Registry> registry);
  struct PullJob;
  void RunPull(std::shared_ptr<PullJob> job, Reference ref, Credentials creds, std::string key);
  absl::StatusOr<ImageInfo> DoPull(const Reference& ref, const Credentials& creds,
                                   std::atomic<uint64_t>& fetched, PullProgress& progress);
  absl::Status FetchBlob(const std::vector<Endpoint>& eps, const Descriptor& d,
                         const Credentials& creds, std::atomic<uint64_t>& fetched,
                         PullProgress& progress);
  absl::Status Unpack(LayerInfo& layer);
  absl::Status Record(ImageInfo& image);
  absl::Status Collect();

  // Work shared between concurrent pulls, keyed by what it produces.
  template <typename Fn>
  absl::Status Once(std::map<std::string, std::shared_future<absl::Status>>& inflight,
                    const std::string& key, Fn&& work);

  const std::string root_;
  store::Store& db_;
  std::unique_ptr<ContentStore> content_;
  std::unique_ptr<Registry> registry_;
  UnpackLimits limits_;

  std::mutex mu_;  // guards the maps below and serialises records and collection
  std::map<std::string, std::shared_ptr<PullJob>> pulls_;  // by reference
  int running_pulls_ = 0;
  std::condition_variable pulls_done_;
  std::map<std::string, std::shared_future<absl::Status>> blob_fetches_;
  std::map<std::string, std::shared_future<absl::Status>> unpacks_;
  std::multiset<std::string> leases_;  // digests and chain ids of pulls under way
};

// Image config and the rest of ImageInfo as the JSON kept in the record.
std::string EncodeImageSpec(const ImageInfo& image);
absl::Status DecodeImageSpec(absl::string_view json, ImageInfo* image);

}  // namespace crius::image
