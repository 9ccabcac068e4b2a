// ImageStore::Pull: one pull per reference at a time, run on a thread of its
// own and waited for by every caller until its own deadline; the manifest,
// config and layers fetched, verified, unpacked and recorded.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "image/image_store.h"

namespace crius::image {
namespace {

constexpr int kParallelLayers = 4;
// A layer another pull was fetching, and gave up, is fetched again this often.
constexpr int kRefetches = 3;
constexpr absl::Duration kPoll = absl::Milliseconds(50);

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

// Waits for `result` as long as the caller does: true once it is ready.
bool WaitFor(const std::shared_future<absl::StatusOr<ImageInfo>>& result, const PullCaller& caller) {
  for (;;) {
    absl::Duration left = caller.deadline - absl::Now();
    if (left <= absl::ZeroDuration() || caller.Cancelled()) {
      return result.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    }
    if (result.wait_for(absl::ToChronoNanoseconds(std::min(left, kPoll))) == std::future_status::ready) {
      return true;
    }
  }
}

}  // namespace

struct ImageStore::PullJob {
  explicit PullJob(absl::Duration stall_timeout) : progress(stall_timeout) {}
  PullProgress progress;
  std::promise<absl::StatusOr<ImageInfo>> promise;
  std::shared_future<absl::StatusOr<ImageInfo>> result = promise.get_future().share();
  const absl::Time started = absl::Now();
  int waiters = 0;         // under mu_
  bool abandoned = false;  // under mu_
};

ImageStore::~ImageStore() {
  std::unique_lock<std::mutex> lock(mu_);
  for (auto& [key, job] : pulls_) {
    job->abandoned = true;
    job->progress.Abandon("criusd is stopping");
  }
  pulls_done_.wait(lock, [&] { return running_pulls_ == 0; });
}

absl::StatusOr<ImageInfo> ImageStore::Pull(const std::string& text, const Credentials& creds,
                                           const PullCaller& caller) {
  CRIUS_ASSIGN_OR_RETURN(Reference ref, ParseReference(text));
  const std::string key = ref.String();
  const absl::Time asked = absl::Now();
  auto gave_up = [&](absl::string_view what) {
    // gRPC cancels a call whose deadline passed: the deadline is the reason then.
    bool cancelled = absl::Now() < caller.deadline - absl::Milliseconds(10);
    std::string msg = absl::StrCat(
        "pull ", key, ": ", cancelled ? "the client cancelled the request" : "the request's deadline passed",
        " after ", absl::FormatDuration(absl::Trunc(absl::Now() - asked, absl::Milliseconds(1))), "; ", what);
    return cancelled ? absl::CancelledError(msg) : absl::DeadlineExceededError(msg);
  };
  for (;;) {
    if (caller.deadline <= absl::Now() || caller.Cancelled()) return gave_up("nothing was fetched");
    std::shared_ptr<PullJob> job, ending;
    bool first = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = pulls_.find(key);
      if (it == pulls_.end()) {
        job = std::make_shared<PullJob>(registry_->progress_timeout());
        pulls_[key] = job;
        first = true;
        ++running_pulls_;
        std::thread([this, job, ref, creds, key] { RunPull(job, ref, creds, key); }).detach();
      } else if (!it->second->abandoned) {
        job = it->second;
      } else {
        ending = it->second;  // every caller of it gave up: a new pull starts when it has ended
      }
      if (job) ++job->waiters;
    }
    if (ending) {
      if (!WaitFor(ending->result, caller)) return gave_up("nothing was fetched");
      continue;
    }
    bool ready = WaitFor(job->result, caller);
    int others = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      others = --job->waiters;
      if (!ready && others == 0) {
        // The last caller gave up: the pull stops, and what it fetched goes.
        job->abandoned = true;
        job->progress.Abandon(absl::StrCat("pull ", key, ": every request for it gave up"));
      }
    }
    if (!ready) {
      return gave_up(others > 0 ? absl::StrCat("the pull goes on for ", others, " other request",
                                               others == 1 ? "" : "s")
                                : "the pull was abandoned and what it fetched is removed");
    }
    absl::StatusOr<ImageInfo> result = job->result.get();
    if (result.ok() && !first) result->fetched_bytes = 0;  // the first caller's pull fetched it
    return result;
  }
}

void ImageStore::RunPull(std::shared_ptr<PullJob> job, Reference ref, Credentials creds,
                         std::string key) {
  std::atomic<uint64_t> fetched{0};
  absl::StatusOr<ImageInfo> result = DoPull(ref, creds, fetched, job->progress);
  if (result.ok()) result->fetched_bytes = fetched.load();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!result.ok()) {
      result = Annotate(result.status(), absl::StrCat("pull ", key));
      // What the failed pull fetched goes again, unless another image uses it.
      // no crash point: a rollback, which the next start's collection redoes
      if (absl::Status st = Collect(); !st.ok()) {
        LOG_WARN("after a failed pull of %s: %s", key, std::string(st.message()));
      }
    }
    if (auto it = pulls_.find(key); it != pulls_.end() && it->second == job) pulls_.erase(it);
  }
  job->promise.set_value(result);
  std::lock_guard<std::mutex> lock(mu_);
  --running_pulls_;
  pulls_done_.notify_all();
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

absl::StatusOr<ImageInfo> ImageStore::DoPull(const Reference& ref, const Credentials& creds,
                                             std::atomic<uint64_t>& fetched, PullProgress& progress) {
  std::string reference = ref.digest.empty() ? ref.tag : ref.digest;
  std::vector<Endpoint> endpoints = registry_->EndpointsFor(ref);
  absl::StatusOr<FetchedManifest> top = absl::UnknownError("no endpoint");
  Endpoint ep;
  std::vector<std::string> failures;
  for (const Endpoint& candidate : endpoints) {
    top = registry_->GetManifest(candidate, reference, creds, &progress);
    if (top.ok()) {
      fetched += top->body.size();
      ep = candidate;
      break;
    }
    CRIUS_RETURN_IF_ERROR(progress.Abandoned());
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
    CRIUS_ASSIGN_OR_RETURN(manifest_blob, registry_->GetManifest(ep, chosen.digest, creds, &progress));
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
  CRIUS_ASSIGN_OR_RETURN(std::string config_body,
                         registry_->GetSmallBlob(ep, manifest.config, creds, &progress));
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

  // no crash point: as image_pull.after_manifest, a blob no record names
  CRIUS_RETURN_IF_ERROR(content_->Put(manifest_blob.digest, manifest_blob.body));
  // no crash point: as image_pull.after_manifest, a blob no record names
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
      for (int attempt = 0; attempt < kRefetches; ++attempt) {
        results[i] = progress.Abandoned();
        if (!results[i].ok()) break;
        results[i] = Once(blob_fetches_, layer.digest,
                          [&] { return FetchBlob({ep}, d, creds, fetched, progress); });
        if (results[i].ok()) CRIUS_FAILPOINT("image_pull.after_blob");
        // Shared with another pull whose callers all gave up: this one goes on.
        if (results[i].code() != absl::StatusCode::kCancelled || !progress.Abandoned().ok()) break;
      }
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
  // Nobody waits for it any more: nothing is recorded.
  CRIUS_RETURN_IF_ERROR(progress.Abandoned());

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

// Crash points: at its callers
absl::Status ImageStore::FetchBlob(const std::vector<Endpoint>& eps, const Descriptor& d,
                                   const Credentials& creds, std::atomic<uint64_t>& fetched,
                                   PullProgress& progress) {
  if (content_->Has(d.digest)) return absl::OkStatus();
  absl::Status last;
  for (const Endpoint& ep : eps) {
    CRIUS_ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> writer, content_->Writer(d.digest, d.size));
    last = registry_->GetBlob(ep, d, *writer, creds, &progress);
    fetched += writer->written();
    if (last.ok()) return last;
  }
  return last;
}

}  // namespace crius::image
