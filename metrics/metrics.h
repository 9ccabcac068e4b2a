// criusd's Prometheus metrics: one registry for the whole daemon. The RPC
// boundary (cri/boundary.cc) counts and times every RPC here; later folders
// add their own families to registry(). Names follow Prometheus conventions:
// the crius_ prefix, base units (_seconds, _bytes), _total for counters.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "metrics/process.h"

namespace crius::metrics {

struct BuildInfo {
  std::string version;      // criusd's version, "0.1.0"
  std::string api_version;  // the CRI API version served, "v1"
};

// Bucket upper bounds of crius_grpc_request_duration_seconds: 50 µs (a
// cached list call) to 10 s (a pull or a stop with a grace period), roughly
// 1-2.5-5 per decade.
const std::vector<double>& RpcDurationBuckets();

// The gRPC code name as gRPC's own tooling prints it ("OK", "NotFound",
// "InvalidArgument"): the `code` label of crius_grpc_requests_total.
absl::string_view CodeLabel(absl::StatusCode code);

class Metrics : public prometheus::Collectable {
 public:
  // `proc` is the procfs root the process collector reads (tests pass a fake).
  explicit Metrics(const BuildInfo& build, std::string proc = "/proc");

  // One finished RPC: crius_grpc_requests_total{method,code} += 1 and
  // crius_grpc_request_duration_seconds{method} observes `seconds`.
  void ObserveRpc(absl::string_view method, absl::StatusCode code, double seconds);

  // One finished PullImage: crius_image_pulls_total{outcome} += 1,
  // crius_image_pull_bytes_total += bytes fetched from registries, and
  // crius_image_pull_duration_seconds observes `seconds`.
  void ObservePull(bool ok, uint64_t bytes_fetched, double seconds);

  // A pod's first container started: the time since RunPodSandbox began.
  void ObservePodReady(double seconds);
  // A container was recorded exited, with its reason (Completed, Error, ...).
  void ObserveContainerExit(const std::string& reason);

  // One CNI plugin execution: crius_cni_plugin_duration_seconds{operation,plugin}
  // observes `seconds`; a failure adds 1 to crius_cni_plugin_failures_total.
  void ObserveCniPlugin(absl::string_view operation, absl::string_view plugin, double seconds, bool ok);

  // A RunPodSandbox that made a pod, step by step (SandboxRunSteps(), in the
  // order they run): crius_pod_sandbox_run_step_seconds{step} observes each
  // step's time, and crius_pod_sandbox_run_less_cni_seconds the whole call
  // less the CNI ADD's own (its plugins' run, which
  // crius_cni_plugin_duration_seconds shows plugin by plugin).
  static const std::vector<std::string>& SandboxRunSteps();
  void ObserveSandboxRun(const std::vector<double>& step_seconds, double less_cni_seconds);

  // Unikernel tenders, by flavour ("spt", "hvt"): one started
  // (crius_tender_starts_total), one ended (crius_tender_exits_total by
  // reason: Completed, Error, GuestFault, OOMKilled, Shutdown), how a
  // shutdown went (crius_tender_shutdowns_total by outcome: cooperative,
  // halted, killed), and the guest's boot: StartContainer to its first
  // console output (crius_guest_boot_duration_seconds).
  void ObserveTenderStart(const std::string& flavour);
  void ObserveTenderExit(const std::string& flavour, const std::string& reason, const std::string& shutdown);
  void ObserveGuestBoot(const std::string& flavour, double seconds);

  // Counts of pods and containers by state, read at each scrape from the
  // runtime's tables (crius_pods{state}, crius_containers{state}).
  using StateCounts = std::map<std::string, int64_t>;
  void SetStateSource(std::function<void(StateCounts& pods, StateCounts& containers)> source);

  // For other folders' families.
  prometheus::Registry& registry() { return *registry_; }

  // The registry's families plus the process metrics, read from /proc now.
  std::vector<prometheus::MetricFamily> Collect() const override;

  // Collect() in the Prometheus text format, as /metrics serves it.
  std::string Text() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  prometheus::Family<prometheus::Counter>& pulls_;
  prometheus::Counter& pulls_ok_;
  prometheus::Counter& pulls_failed_;
  prometheus::Counter& pull_bytes_;
  prometheus::Histogram& pull_durations_;
  prometheus::Histogram& pod_ready_;
  prometheus::Family<prometheus::Counter>& exits_;
  prometheus::Family<prometheus::Histogram>& cni_durations_;
  prometheus::Family<prometheus::Counter>& cni_failures_;
  prometheus::Family<prometheus::Counter>& tender_starts_;
  prometheus::Family<prometheus::Counter>& tender_exits_;
  prometheus::Family<prometheus::Counter>& tender_shutdowns_;
  prometheus::Family<prometheus::Histogram>& guest_boot_;
  std::vector<prometheus::Histogram*> sandbox_run_steps_;  // by SandboxRunSteps()
  prometheus::Histogram& sandbox_run_less_cni_;
  ProcessCollector process_;
  std::function<void(StateCounts&, StateCounts&)> state_source_ ABSL_GUARDED_BY(mu_);

  // Family::Add builds a new metric (a histogram allocates its buckets) before
  // it finds the existing one, so children are looked up here first.
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, prometheus::Counter*> counters_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, prometheus::Histogram*> histograms_ ABSL_GUARDED_BY(mu_);
};

// The metrics of this process: set by criusd's start-up, nullptr before it
// and in unit tests that never set one (the RPC boundary then only logs).
Metrics* Current();

// Makes `metrics` Current() until destroyed. The caller keeps `metrics`
// alive longer than the guard, and stops everything that may still report
// (the gRPC server) before the guard dies.
class ScopedCurrent {
 public:
  explicit ScopedCurrent(Metrics* metrics);
  ~ScopedCurrent();
  ScopedCurrent(const ScopedCurrent&) = delete;
  ScopedCurrent& operator=(const ScopedCurrent&) = delete;

 private:
  Metrics* previous_;
};

}  // namespace crius::metrics
