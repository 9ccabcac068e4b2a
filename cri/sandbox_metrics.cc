// ListMetricDescriptors, ListPodSandboxMetrics and StreamPodSandboxMetrics:
// the cAdvisor-named metrics kubelet 1.28+ exposes for each pod when it
// takes them from the runtime (PodAndContainerStatsFromCRI). They come from
// the same cgroup and netns reads as the stats RPCs (cri/stats.h): one read
// per container and pod, nothing forked.
#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "cri/container_ops.h"
#include "cri/handlers.h"
#include "cri/stats.h"

namespace crius::cri {
namespace {

using Labels = std::map<std::string, std::string>;

struct Descriptor {
  const char* name;
  const char* help;
  v1::MetricType type;
  std::vector<std::string> extra_keys;  // beside container, id, image, namespace, pod
};

// Every metric served; the label keys are sorted, values follow them.
const std::vector<Descriptor>& Descriptors() {
  static const std::vector<Descriptor> d = {
      {"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", v1::COUNTER, {}},
      {"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", v1::GAUGE, {}},
      {"container_memory_working_set_bytes", "Current working set in bytes.", v1::GAUGE, {}},
      {"container_memory_rss", "Size of RSS in bytes.", v1::GAUGE, {}},
      {"container_memory_failures_total", "Cumulative count of memory allocation failures.", v1::COUNTER,
       {"failure_type", "scope"}},
      {"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", v1::GAUGE, {}},
      {"container_fs_inodes_used", "Number of inodes used by the container's writable layer.", v1::GAUGE, {}},
      {"container_processes", "Number of processes running inside the container.", v1::GAUGE, {}},
      {"container_network_receive_bytes_total", "Cumulative count of bytes received.", v1::COUNTER, {"interface"}},
      {"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", v1::COUNTER, {"interface"}},
      {"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", v1::COUNTER, {"interface"}},
      {"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", v1::COUNTER, {"interface"}},
  };
  return d;
}

std::vector<std::string> Keys(const Descriptor& d) {
  std::vector<std::string> keys = {"container", "id", "image", "namespace", "pod"};
  keys.insert(keys.end(), d.extra_keys.begin(), d.extra_keys.end());
  std::sort(keys.begin(), keys.end());
  return keys;
}

const Descriptor& Find(absl::string_view name) {
  for (const Descriptor& d : Descriptors()) {
    if (name == d.name) return d;
  }
  static const Descriptor none{"", "", v1::GAUGE, {}};
  return none;
}

void Add(google::protobuf::RepeatedPtrField<v1::Metric>* out, const char* name, const Labels& labels,
         uint64_t value, int64_t timestamp) {
  const Descriptor& d = Find(name);
  v1::Metric* m = out->Add();
  m->set_name(name);
  m->set_timestamp(timestamp);
  m->set_metric_type(d.type);
  for (const std::string& k : Keys(d)) {
    auto it = labels.find(k);
    m->add_label_values(it == labels.end() ? "" : it->second);
  }
  m->mutable_value()->set_value(value);
}

// CPU, memory and writable-layer series of one container (or, with an
// empty "container" label, the pod's cgroup, as cAdvisor names it).
void AddUsage(google::protobuf::RepeatedPtrField<v1::Metric>* out, const Labels& labels, const v1::CpuUsage& cpu,
              const v1::MemoryUsage& mem, int64_t timestamp) {
  if (cpu.has_usage_core_nano_seconds()) {
    Add(out, "container_cpu_usage_seconds_total", labels, cpu.usage_core_nano_seconds().value() / 1000000000,
        timestamp);
  }
  if (mem.has_usage_bytes()) Add(out, "container_memory_usage_bytes", labels, mem.usage_bytes().value(), timestamp);
  if (mem.has_working_set_bytes()) {
    Add(out, "container_memory_working_set_bytes", labels, mem.working_set_bytes().value(), timestamp);
  }
  if (mem.has_rss_bytes()) Add(out, "container_memory_rss", labels, mem.rss_bytes().value(), timestamp);
  if (!mem.has_page_faults() && !mem.has_major_page_faults()) return;
  for (const auto& [kind, v] : {std::pair{"pgfault", &mem.page_faults()}, {"pgmajfault", &mem.major_page_faults()}}) {
    Labels l = labels;
    l["failure_type"] = kind;
    l["scope"] = labels.at("container").empty() ? "hierarchy" : "container";
    Add(out, "container_memory_failures_total", l, v->value(), timestamp);
  }
}

void FillPodMetrics(Runtime& rt, const Pod& pod, v1::PodSandboxMetrics* out) {
  out->set_pod_sandbox_id(pod.id);
  const std::string& ns = pod.config.metadata().namespace_();
  const std::string& pod_name = pod.config.metadata().name();
  v1::PodSandboxStats stats;
  FillPodStats(rt, pod, &stats);
  const v1::LinuxPodSandboxStats& l = stats.linux();
  Labels labels = {{"container", ""}, {"id", pod.id}, {"image", ""}, {"namespace", ns}, {"pod", pod_name}};
  int64_t ts = l.cpu().timestamp();
  AddUsage(out->mutable_metrics(), labels, l.cpu(), l.memory(), ts);
  if (l.has_process()) {
    Add(out->mutable_metrics(), "container_processes", labels, l.process().process_count().value(), ts);
  }
  for (const v1::NetworkInterfaceUsage& i : l.network().interfaces()) {
    Labels n = labels;
    n["interface"] = i.name();
    int64_t nts = l.network().timestamp();
    Add(out->mutable_metrics(), "container_network_receive_bytes_total", n, i.rx_bytes().value(), nts);
    Add(out->mutable_metrics(), "container_network_receive_errors_total", n, i.rx_errors().value(), nts);
    Add(out->mutable_metrics(), "container_network_transmit_bytes_total", n, i.tx_bytes().value(), nts);
    Add(out->mutable_metrics(), "container_network_transmit_errors_total", n, i.tx_errors().value(), nts);
  }
  for (const std::shared_ptr<Container>& c : rt.containers().All()) {
    if (c->pod_id != pod.id || c->state != kContainerRunning) continue;
    v1::ContainerStats cs;
    FillContainerStats(rt, *c, &cs);
    v1::ContainerMetrics* cm = out->add_container_metrics();
    cm->set_container_id(c->id);
    Labels cl = {{"container", c->config.metadata().name()}, {"id", c->id}, {"image", c->config.image().image()},
                 {"namespace", ns}, {"pod", pod_name}};
    int64_t cts = cs.cpu().timestamp();
    AddUsage(cm->mutable_metrics(), cl, cs.cpu(), cs.memory(), cts);
    if (cs.has_writable_layer()) {
      Add(cm->mutable_metrics(), "container_fs_usage_bytes", cl, cs.writable_layer().used_bytes().value(),
          cs.writable_layer().timestamp());
      Add(cm->mutable_metrics(), "container_fs_inodes_used", cl, cs.writable_layer().inodes_used().value(),
          cs.writable_layer().timestamp());
    }
  }
}

template <typename Emit>
void ForEachReadyPod(Runtime& rt, Emit&& emit) {
  for (const std::shared_ptr<Pod>& pod : rt.pods().All()) {
    if (pod->state != kPodReady) continue;
    RefreshContainers(rt, *pod);
    emit(*pod);
  }
}

}  // namespace

absl::Status MetricDescriptorsList(Runtime&, const v1::ListMetricDescriptorsRequest&,
                                   v1::ListMetricDescriptorsResponse* resp) {
  for (const Descriptor& d : Descriptors()) {
    v1::MetricDescriptor* m = resp->add_descriptors();
    m->set_name(d.name);
    m->set_help(d.help);
    for (const std::string& k : Keys(d)) m->add_label_keys(k);
  }
  return absl::OkStatus();
}

absl::Status SandboxMetricsList(Runtime& rt, const v1::ListPodSandboxMetricsRequest&,
                                v1::ListPodSandboxMetricsResponse* resp) {
  ForEachReadyPod(rt, [&](const Pod& pod) { FillPodMetrics(rt, pod, resp->add_pod_metrics()); });
  return absl::OkStatus();
}

absl::Status SandboxMetricsStream(Runtime& rt, const v1::StreamPodSandboxMetricsRequest&,
                                  const std::function<bool(const v1::StreamPodSandboxMetricsResponse&)>& send) {
  constexpr int kBatch = 64;  // pods per streamed message
  v1::StreamPodSandboxMetricsResponse batch;
  bool ok = true;
  ForEachReadyPod(rt, [&](const Pod& pod) {
    if (!ok) return;
    FillPodMetrics(rt, pod, batch.add_pod_sandbox_metrics());
    if (batch.pod_sandbox_metrics_size() == kBatch) {
      ok = send(batch);
      batch.Clear();
    }
  });
  if (ok && batch.pod_sandbox_metrics_size() > 0) ok = send(batch);
  return ok ? absl::OkStatus() : absl::CancelledError("StreamPodSandboxMetrics: the client went away");
}

}  // namespace crius::cri
