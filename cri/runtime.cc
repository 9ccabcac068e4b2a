#include "cri/runtime.h"

#include "cri/container_stream.h"

#include "sandbox/userns.h"

#include <time.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

#include "common/clock.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "metrics/metrics.h"
#include "sandbox/userns.h"

namespace crius::cri {
namespace {
constexpr char kPodCidrSetting[] = "pod_cidr";

}  // namespace

Runtime::Runtime(Config config, std::unique_ptr<store::Store> store)
    : config_(std::move(config)), store_(std::move(store)), pods_(*store_), containers_(*store_),
      image_volumes_(config_.state + "/image-volumes", containers_),
      networks_(config_.network.cni_conf_dir, config_.network.cni_bin_dirs,
                [](const char* op, const std::string& plugin, double seconds, bool ok) {
                  if (metrics::Metrics* m = metrics::Current()) m->ObserveCniPlugin(op, plugin, seconds, ok);
                }),
      containers_dir_(config_.containers_dir.empty() ? config_.root + "/containers" : config_.containers_dir),
      started_at_ns_(NowNs()) {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  std::string exe = n > 0 ? std::string(self, static_cast<size_t>(n)) : "/usr/local/bin/criusd";
  own_dir_ = exe.substr(0, exe.rfind('/') + 1);
  monitor_binary_ = config_.monitor_path.empty() ? own_dir_ + "crius-monitor" : config_.monitor_path;
}

std::string Runtime::tender_binary(const std::string& flavour) const {
  const std::string& configured = flavour == "spt" ? config_.unikernel.spt_path : config_.unikernel.hvt_path;
  if (!configured.empty()) return configured;
  return own_dir_ + "crius-" + flavour;
}

std::string Runtime::PodDir(const std::string& id) const {
  return absl::StrCat(config_.state, "/pods/", id);
}

// Crash points: none, it runs at every start, which does it again
absl::Status Runtime::Recover() {
  CRIUS_ASSIGN_OR_RETURN(cgroups_, cgroups::Driver::Detect());
  image::RegistryOptions registry;
  registry.insecure_hosts = config_.registry.insecure;
  registry.ca_files = config_.registry.ca_files;
  registry.mirrors = config_.registry.mirrors;
  (void)absl::ParseDuration(config_.registry.pull_progress_timeout, &registry.progress_timeout);
  image::UnpackLimits limits;
  limits.max_bytes = static_cast<uint64_t>(config_.registry.max_unpacked_layer_mib) << 20;
  CRIUS_ASSIGN_OR_RETURN(images_,
                         image::ImageStore::Open(config_.root, *store_, std::move(registry), limits));
  // The image layers live under the root: can they be idmapped there?
  userns_support_ = sandbox::ProbeIdmappedOverlay(config_.root);
  if (!userns_support_.ok()) {
    LOG_INFO("user namespaces: pods cannot have one on this node: %s", std::string(userns_support_.message()));
  }
  if (absl::StatusOr<std::vector<std::string>> made = MakeDirs(containers_dir_, 0700); !made.ok()) {
    return Annotate(made.status(), "create containers_dir");
  }
  CRIUS_RETURN_IF_ERROR(Annotate(RecoverPods(), "recover pods"));
  CRIUS_RETURN_IF_ERROR(Annotate(image_volumes_.Recover(), "recover image volumes"));
  CRIUS_ASSIGN_OR_RETURN(std::optional<std::string> cidr, store_->GetSetting(kPodCidrSetting));
  std::lock_guard<std::mutex> lock(mu_);
  pod_cidr_ = cidr.value_or("");
  return absl::OkStatus();
}

std::string Runtime::pod_cidr() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pod_cidr_;
}

absl::Status Runtime::SetPodCidr(const std::string& cidr) {
  std::lock_guard<std::mutex> lock(mu_);
  CRIUS_FAILPOINT("runtime_config_update.before_store");
  CRIUS_RETURN_IF_ERROR(Annotate(store_->PutSetting(kPodCidrSetting, cidr), "record pod CIDR"));
  CRIUS_FAILPOINT("runtime_config_update.after_store");
  pod_cidr_ = cidr;
  return absl::OkStatus();
}

}  // namespace crius::cri

namespace crius::cri {

absl::Status Runtime::StartStreaming() {
  stream::ServerOptions options;
  options.address = config_.streaming.address;
  // ValidateConfig has checked both.
  (void)absl::ParseDuration(config_.streaming.idle_timeout, &options.idle_timeout);
  (void)absl::ParseDuration(config_.streaming.token_ttl, &options.token_ttl);
  stream_backend_ = std::make_unique<StreamBackend>(*this);
  absl::StatusOr<std::unique_ptr<stream::Server>> server = stream::Server::Start(options, stream_backend_.get());
  if (!server.ok()) return server.status();
  streaming_ = std::move(*server);
  return absl::OkStatus();
}

}  // namespace crius::cri
