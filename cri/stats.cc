#include "cri/stats.h"

#include <time.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cgroups/driver.h"
#include "common/clock.h"
#include "common/files.h"
#include "cri/containers.h"
#include "cri/pods.h"
#include "cri/runtime.h"

namespace crius::cri {
namespace {

constexpr int64_t kForgetAfterNs = int64_t{10} * 60 * 1000000000;  // a rate kubelet no longer asks for
constexpr int64_t kLayerUsageMaxAgeNs = int64_t{10} * 1000000000;

v1::UInt64Value* Set(v1::UInt64Value* field, uint64_t v) {
  field->set_value(v);
  return field;
}

void FillCpuMemory(const cgroups::Stats& s, const std::string& key, int64_t memory_limit, Runtime& rt,
                   v1::CpuUsage* cpu, v1::MemoryUsage* mem) {
  cpu->set_timestamp(s.timestamp_ns);
  Set(cpu->mutable_usage_core_nano_seconds(), s.cpu_usage_ns);
  if (std::optional<uint64_t> rate = rt.cpu_rates().Sample(key, s.timestamp_ns, s.cpu_usage_ns)) {
    Set(cpu->mutable_usage_nano_cores(), *rate);
  }
  mem->set_timestamp(s.timestamp_ns);
  Set(mem->mutable_working_set_bytes(), s.memory_working_set_bytes);
  Set(mem->mutable_usage_bytes(), s.memory_usage_bytes);
  Set(mem->mutable_rss_bytes(), s.memory_rss_bytes);
  Set(mem->mutable_page_faults(), s.page_faults);
  Set(mem->mutable_major_page_faults(), s.major_page_faults);
  if (memory_limit > 0) {
    uint64_t limit = static_cast<uint64_t>(memory_limit);
    Set(mem->mutable_available_bytes(), limit > s.memory_working_set_bytes ? limit - s.memory_working_set_bytes : 0);
  }
}

// Drops the samples of keys kubelet stopped asking for (removed containers).
template <typename Samples>
void ForgetOld(Samples& last, int64_t now_ns, int64_t* pruned_at_ns) {
  if (now_ns - *pruned_at_ns <= kForgetAfterNs) return;
  for (auto it = last.begin(); it != last.end();) {
    it = now_ns - it->second.timestamp_ns > kForgetAfterNs ? last.erase(it) : std::next(it);
  }
  *pruned_at_ns = now_ns;
}

}  // namespace

std::optional<uint64_t> CpuRates::Sample(const std::string& key, int64_t timestamp_ns, uint64_t usage_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  ForgetOld(last_, timestamp_ns, &pruned_at_ns_);
  std::optional<uint64_t> rate;
  auto it = last_.find(key);
  if (it != last_.end() && timestamp_ns > it->second.timestamp_ns && usage_ns >= it->second.usage_ns) {
    long double cores = static_cast<long double>(usage_ns - it->second.usage_ns) * 1e9L /
                        static_cast<long double>(timestamp_ns - it->second.timestamp_ns);
    rate = static_cast<uint64_t>(cores);
  }
  last_[key] = {timestamp_ns, usage_ns};
  return rate;
}

LayerUsages::Measure LayerUsages::Get(const std::string& id, const std::string& upper_dir) {
  int64_t now = NowNs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ForgetOld(last_, now, &pruned_at_ns_);
    auto it = last_.find(id);
    if (it != last_.end() && now - it->second.timestamp_ns < kLayerUsageMaxAgeNs) return it->second;
  }
  Measure m{now, UsageOf(upper_dir)};  // walked outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  last_[id] = m;
  return m;
}

std::vector<InterfaceCounters> ParseNetDev(const std::string& text) {
  std::vector<InterfaceCounters> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;  // the two header lines
    InterfaceCounters c;
    c.name = std::string(absl::StripAsciiWhitespace(line.substr(0, colon)));
    std::vector<absl::string_view> f = absl::StrSplit(line.substr(colon + 1), ' ', absl::SkipEmpty());
    // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs ...
    if (f.size() < 16 || !absl::SimpleAtoi(f[0], &c.rx_bytes) || !absl::SimpleAtoi(f[2], &c.rx_errors) ||
        !absl::SimpleAtoi(f[8], &c.tx_bytes) || !absl::SimpleAtoi(f[10], &c.tx_errors)) {
      continue;
    }
    out.push_back(std::move(c));
  }
  return out;
}

void FillContainerStats(Runtime& rt, const Container& c, v1::ContainerStats* out) {
  v1::ContainerAttributes* a = out->mutable_attributes();
  a->set_id(c.id);
  *a->mutable_metadata() = c.config.metadata();
  *a->mutable_labels() = c.config.labels();
  *a->mutable_annotations() = c.config.annotations();
  if (!c.cgroup.empty() && c.state == kContainerRunning) {
    absl::StatusOr<cgroups::Stats> s = rt.cgroups().ReadStats(c.cgroup);
    if (s.ok()) {
      FillCpuMemory(*s, c.id, c.config.linux().resources().memory_limit_in_bytes(), rt, out->mutable_cpu(),
                    out->mutable_memory());
    }
  }
  if (!c.dir.empty()) {
    LayerUsages::Measure m = rt.layer_usages().Get(c.id, c.dir + "/upper");
    v1::FilesystemUsage* fs = out->mutable_writable_layer();
    fs->set_timestamp(m.timestamp_ns);
    // Where the layer was made (containers_dir then), which kubelet looks up.
    fs->mutable_fs_id()->set_mountpoint(c.dir.substr(0, c.dir.rfind('/')));
    Set(fs->mutable_used_bytes(), m.usage.bytes);
    Set(fs->mutable_inodes_used(), m.usage.inodes);
  }
}

void FillPodStats(Runtime& rt, const Pod& pod, v1::PodSandboxStats* out) {
  v1::PodSandboxAttributes* a = out->mutable_attributes();
  a->set_id(pod.id);
  *a->mutable_metadata() = pod.config.metadata();
  *a->mutable_labels() = pod.config.labels();
  *a->mutable_annotations() = pod.config.annotations();
  v1::LinuxPodSandboxStats* linux = out->mutable_linux();
  if (!pod.cgroup.empty()) {
    absl::StatusOr<cgroups::Stats> s = rt.cgroups().ReadStats(pod.cgroup);
    if (s.ok()) {
      FillCpuMemory(*s, "pod:" + pod.id, 0, rt, linux->mutable_cpu(), linux->mutable_memory());
    }
    if (absl::StatusOr<uint64_t> n = rt.cgroups().ProcessCount(pod.cgroup); n.ok()) {
      linux->mutable_process()->set_timestamp(NowNs());
      Set(linux->mutable_process()->mutable_process_count(), *n);
    }
  }
  bool host_network = pod.config.linux().security_context().namespace_options().network() == v1::NODE;
  if (!host_network && pod.monitor_pid > 0 && pod.state == kPodReady) {
    std::ifstream in(absl::StrCat("/proc/", pod.monitor_pid, "/net/dev"));
    std::stringstream text;
    text << in.rdbuf();
    v1::NetworkUsage* net = linux->mutable_network();
    net->set_timestamp(NowNs());
    for (const InterfaceCounters& i : ParseNetDev(text.str())) {
      if (i.name == "lo") continue;
      v1::NetworkInterfaceUsage* u = net->add_interfaces();
      u->set_name(i.name);
      Set(u->mutable_rx_bytes(), i.rx_bytes);
      Set(u->mutable_rx_errors(), i.rx_errors);
      Set(u->mutable_tx_bytes(), i.tx_bytes);
      Set(u->mutable_tx_errors(), i.tx_errors);
      if (i.name == "eth0" || !net->has_default_interface()) *net->mutable_default_interface() = *u;
    }
  }
  for (const std::shared_ptr<Container>& c : rt.containers().OfPod(pod.id)) {
    if (c->state == kContainerRunning) FillContainerStats(rt, *c, linux->add_containers());
  }
}

}  // namespace crius::cri
