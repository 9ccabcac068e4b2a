#include "metrics/metrics.h"

#include <atomic>
#include <sstream>

#include <prometheus/gauge.h>
#include <prometheus/text_serializer.h>

#include "absl/strings/str_cat.h"

namespace crius::metrics {
namespace {

const prometheus::Histogram::BucketBoundaries& GuestBootBuckets() {
  // A unikernel boots in a millisecond (spt) to tens of them (hvt).
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 5};
  return kBuckets;
}

const prometheus::Histogram::BucketBoundaries& SandboxRunBuckets() {
  // A step of RunPodSandbox: tens of microseconds (validate) to tens of
  // milliseconds (a CNI ADD); seconds only on a node in trouble.
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5};
  return kBuckets;
}

std::atomic<Metrics*> current{nullptr};

}  // namespace

const std::vector<double>& RpcDurationBuckets() {
  static const std::vector<double> buckets = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
  return buckets;
}

absl::string_view CodeLabel(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return "OK";
    case absl::StatusCode::kCancelled: return "Canceled";
    case absl::StatusCode::kUnknown: return "Unknown";
    case absl::StatusCode::kInvalidArgument: return "InvalidArgument";
    case absl::StatusCode::kDeadlineExceeded: return "DeadlineExceeded";
    case absl::StatusCode::kNotFound: return "NotFound";
    case absl::StatusCode::kAlreadyExists: return "AlreadyExists";
    case absl::StatusCode::kPermissionDenied: return "PermissionDenied";
    case absl::StatusCode::kResourceExhausted: return "ResourceExhausted";
    case absl::StatusCode::kFailedPrecondition: return "FailedPrecondition";
    case absl::StatusCode::kAborted: return "Aborted";
    case absl::StatusCode::kOutOfRange: return "OutOfRange";
    case absl::StatusCode::kUnimplemented: return "Unimplemented";
    case absl::StatusCode::kInternal: return "Internal";
    case absl::StatusCode::kUnavailable: return "Unavailable";
    case absl::StatusCode::kDataLoss: return "DataLoss";
    case absl::StatusCode::kUnauthenticated: return "Unauthenticated";
    default: return "Unknown";  // codes outside gRPC's set are reported as gRPC does
  }
}

Metrics::Metrics(const BuildInfo& build, std::string proc)
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("crius_grpc_requests_total")
                    .Help("CRI gRPC requests served, by method and gRPC status code.")
                    .Register(*registry_)),
      durations_(prometheus::BuildHistogram()
                     .Name("crius_grpc_request_duration_seconds")
                     .Help("Time criusd spent serving a CRI gRPC request, by method.")
                     .Register(*registry_)),
      pulls_(prometheus::BuildCounter()
                 .Name("crius_image_pulls_total")
                 .Help("PullImage requests finished, by outcome (success or failure).")
                 .Register(*registry_)),
      pulls_ok_(pulls_.Add({{"outcome", "success"}})),
      pulls_failed_(pulls_.Add({{"outcome", "failure"}})),
      pull_bytes_(prometheus::BuildCounter()
                      .Name("crius_image_pull_bytes_total")
                      .Help("Bytes of manifests, configs and layers that successful pulls fetched from registries.")
                      .Register(*registry_)
                      .Add({})),
      pull_durations_(prometheus::BuildHistogram()
                          .Name("crius_image_pull_duration_seconds")
                          .Help("Time a PullImage took, successful or not.")
                          .Register(*registry_)
                          .Add({}, prometheus::Histogram::BucketBoundaries{
                                       0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                                       60, 120, 300})),
      pod_ready_(prometheus::BuildHistogram()
                     .Name("crius_pod_ready_duration_seconds")
                     .Help("Time from RunPodSandbox to the pod's first container running.")
                     .Register(*registry_)
                     .Add({}, prometheus::Histogram::BucketBoundaries{
                                  0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60})),
      exits_(prometheus::BuildCounter()
                 .Name("crius_container_exits_total")
                 .Help("Containers recorded exited, by reason (Completed, Error, OOMKilled, ...).")
                 .Register(*registry_)),
      cni_durations_(prometheus::BuildHistogram()
                         .Name("crius_cni_plugin_duration_seconds")
                         .Help("Time one CNI plugin execution took, by operation (ADD, CHECK, DEL) and plugin type.")
                         .Register(*registry_)),
      cni_failures_(prometheus::BuildCounter()
                        .Name("crius_cni_plugin_failures_total")
                        .Help("CNI plugin executions that failed, by operation and plugin type.")
                        .Register(*registry_)),
      tender_starts_(prometheus::BuildCounter()
                         .Name("crius_tender_starts_total")
                         .Help("Unikernel tenders started, by flavour (spt, hvt).")
                         .Register(*registry_)),
      tender_exits_(prometheus::BuildCounter()
                        .Name("crius_tender_exits_total")
                        .Help("Unikernel tenders ended, by flavour and reason (Completed, Error, GuestFault, "
                              "OOMKilled, Shutdown).")
                        .Register(*registry_)),
      tender_shutdowns_(prometheus::BuildCounter()
                            .Name("crius_tender_shutdowns_total")
                            .Help("Unikernel guests stopped, by flavour and outcome: cooperative (exited on its "
                                  "own after SIGTERM), halted (did not opt into shutdown), killed (SIGKILL).")
                            .Register(*registry_)),
      guest_boot_(prometheus::BuildHistogram()
                      .Name("crius_guest_boot_duration_seconds")
                      .Help("Time from a unikernel container's start to its guest's first console output, by "
                            "flavour.")
                      .Register(*registry_)),
      sandbox_run_less_cni_(prometheus::BuildHistogram()
                                .Name("crius_pod_sandbox_run_less_cni_seconds")
                                .Help("Time a RunPodSandbox that made a pod took, less its CNI ADD's plugins.")
                                .Register(*registry_)
                                .Add({}, SandboxRunBuckets())),
      process_(std::move(proc)) {
  prometheus::Family<prometheus::Histogram>& steps =
      prometheus::BuildHistogram()
          .Name("crius_pod_sandbox_run_step_seconds")
          .Help("Time each step of a RunPodSandbox that made a pod took (validate, reserve, files, cgroup, "
                "monitor, network, ready).")
          .Register(*registry_);
  for (const std::string& step : SandboxRunSteps()) {
    sandbox_run_steps_.push_back(&steps.Add({{"step", step}}, SandboxRunBuckets()));
  }
  // Known reasons start at 0, so a rate() over them works from the start.
  for (const char* reason : {"Completed", "Error", "StartError", "OOMKilled"}) {
    exits_.Add({{"reason", reason}});
  }
  for (const char* flavour : {"spt", "hvt"}) {
    tender_starts_.Add({{"flavour", flavour}});
    for (const char* reason : {"Completed", "Error", "GuestFault", "OOMKilled", "Shutdown"}) {
      tender_exits_.Add({{"flavour", flavour}, {"reason", reason}});
    }
    for (const char* outcome : {"cooperative", "halted", "killed"}) {
      tender_shutdowns_.Add({{"flavour", flavour}, {"outcome", outcome}});
    }
    guest_boot_.Add({{"flavour", flavour}}, GuestBootBuckets());
  }
  prometheus::BuildGauge()
      .Name("crius_build_info")
      .Help("Always 1; the labels name criusd's version and the CRI API version it serves.")
      .Register(*registry_)
      .Add({{"version", build.version}, {"api_version", build.api_version}})
      .Set(1);
}

const std::vector<std::string>& Metrics::SandboxRunSteps() {
  static const std::vector<std::string> kSteps = {"validate", "reserve", "files", "cgroup",
                                                  "monitor",  "network", "ready"};
  return kSteps;
}

void Metrics::ObserveSandboxRun(const std::vector<double>& step_seconds, double less_cni_seconds) {
  for (size_t i = 0; i < step_seconds.size() && i < sandbox_run_steps_.size(); ++i) {
    sandbox_run_steps_[i]->Observe(step_seconds[i]);
  }
  sandbox_run_less_cni_.Observe(less_cni_seconds);
}

void Metrics::ObserveCniPlugin(absl::string_view operation, absl::string_view plugin,
                               double seconds, bool ok) {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  std::string key = absl::StrCat("cni\n", operation, "\n", plugin);
  prometheus::Histogram* histogram = nullptr;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (auto it = histograms_.find(key); it != histograms_.end()) histogram = it->second;
  }
  std::map<std::string, std::string> labels = {{"operation", std::string(operation)},
                                               {"plugin", std::string(plugin)}};
  if (histogram == nullptr) {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = histograms_.try_emplace(key, nullptr);
    if (inserted) it->second = &cni_durations_.Add(labels, kBuckets);
    histogram = it->second;
  }
  histogram->Observe(seconds);
  if (!ok) cni_failures_.Add(labels).Increment();
}

void Metrics::ObserveRpc(absl::string_view method, absl::StatusCode code, double seconds) {
  absl::string_view code_label = CodeLabel(code);
  std::string counter_key = absl::StrCat(method, "\n", code_label);
  prometheus::Counter* counter = nullptr;
  prometheus::Histogram* histogram = nullptr;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (auto it = counters_.find(counter_key); it != counters_.end()) counter = it->second;
    if (auto it = histograms_.find(method); it != histograms_.end()) histogram = it->second;
  }
  if (counter == nullptr || histogram == nullptr) {
    absl::MutexLock lock(&mu_);
    if (counter == nullptr) {
      auto [it, inserted] = counters_.try_emplace(counter_key, nullptr);
      if (inserted) {
        it->second = &requests_.Add(
            {{"method", std::string(method)}, {"code", std::string(code_label)}});
      }
      counter = it->second;
    }
    if (histogram == nullptr) {
      auto [it, inserted] = histograms_.try_emplace(method, nullptr);
      if (inserted) {
        it->second = &durations_.Add({{"method", std::string(method)}}, RpcDurationBuckets());
      }
      histogram = it->second;
    }
  }
  counter->Increment();
  histogram->Observe(seconds);
}

void Metrics::ObservePull(bool ok, uint64_t bytes_fetched, double seconds) {
  (ok ? pulls_ok_ : pulls_failed_).Increment();
  pull_bytes_.Increment(static_cast<double>(bytes_fetched));
  pull_durations_.Observe(seconds);
}

void Metrics::ObservePodReady(double seconds) { pod_ready_.Observe(seconds); }

void Metrics::ObserveContainerExit(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  exits_.Add({{"reason", reason.empty() ? "Unknown" : reason}}).Increment();
}

void Metrics::ObserveTenderStart(const std::string& flavour) {
  absl::MutexLock lock(&mu_);
  tender_starts_.Add({{"flavour", flavour}}).Increment();
}

void Metrics::ObserveTenderExit(const std::string& flavour, const std::string& reason, const std::string& shutdown) {
  absl::MutexLock lock(&mu_);
  tender_exits_.Add({{"flavour", flavour}, {"reason", reason}}).Increment();
  if (!shutdown.empty()) tender_shutdowns_.Add({{"flavour", flavour}, {"outcome", shutdown}}).Increment();
}

void Metrics::ObserveGuestBoot(const std::string& flavour, double seconds) {
  absl::MutexLock lock(&mu_);
  guest_boot_.Add({{"flavour", flavour}}, GuestBootBuckets()).Observe(seconds);
}

void Metrics::SetStateSource(std::function<void(StateCounts&, StateCounts&)> source) {
  absl::MutexLock lock(&mu_);
  state_source_ = std::move(source);
}

namespace {

prometheus::MetricFamily StateGauge(const char* name, const char* help,
                                    const Metrics::StateCounts& counts) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = prometheus::MetricType::Gauge;
  for (const auto& [state, n] : counts) {
    prometheus::ClientMetric m;
    m.label.push_back({"state", state});
    m.gauge.value = static_cast<double>(n);
    family.metric.push_back(std::move(m));
  }
  return family;
}

}  // namespace

std::vector<prometheus::MetricFamily> Metrics::Collect() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  {
    absl::ReaderMutexLock lock(&mu_);
    if (state_source_) {
      // Every state is shown, 0 when no object is in it.
      StateCounts pods = {{"creating", 0}, {"ready", 0}, {"notready", 0}};
      StateCounts containers = {{"creating", 0}, {"created", 0}, {"running", 0}, {"exited", 0}};
      state_source_(pods, containers);
      families.push_back(StateGauge("crius_pods", "Pod sandboxes known to criusd, by state.", pods));
      families.push_back(StateGauge("crius_containers", "Containers known to criusd, by state.",
                                    containers));
    }
  }
  for (auto& family : process_.Collect()) families.push_back(std::move(family));
  return families;
}

std::string Metrics::Text() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, Collect());
  return out.str();
}

Metrics* Current() { return current.load(std::memory_order_acquire); }

ScopedCurrent::ScopedCurrent(Metrics* metrics)
    : previous_(current.exchange(metrics, std::memory_order_acq_rel)) {}

ScopedCurrent::~ScopedCurrent() { current.store(previous_, std::memory_order_release); }

}  // namespace crius::metrics
