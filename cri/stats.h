// Container and pod stats for kubelet's eviction manager and summary API:
// read from cgroup files, the writable layer's directory and the pod's
// /proc/<pid>/net/dev, never by running a process.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "api.pb.h"
#include "common/files.h"

namespace crius::cri {

namespace v1 = ::runtime::v1;

class Runtime;
struct Container;
struct Pod;

// usage_nano_cores is a rate: CPU time between two samples of the same
// cgroup over the wall time between them, as containerd computes it.
class CpuRates {
 public:
  // The rate since the previous sample of `key`; none for the first, or when
  // the counter went backwards (a new cgroup under the same key).
  std::optional<uint64_t> Sample(const std::string& key, int64_t timestamp_ns, uint64_t usage_ns);

 private:
  struct Last {
    int64_t timestamp_ns;
    uint64_t usage_ns;
  };
  std::mutex mu_;
  std::map<std::string, Last> last_;
  int64_t pruned_at_ns_ = 0;
};

// The writable layer's usage is a walk of its directory, far dearer than a
// cgroup's few files: a measure is reused for up to 10 s (its timestamp in
// the answer says when it was taken), as cAdvisor measures disks on a slower
// clock than CPU and memory.
class LayerUsages {
 public:
  struct Measure {
    int64_t timestamp_ns;
    DirUsage usage;
  };
  // The usage of `upper_dir`, the writable layer of container `id`.
  Measure Get(const std::string& id, const std::string& upper_dir);

 private:
  std::mutex mu_;
  std::map<std::string, Measure> last_;
  int64_t pruned_at_ns_ = 0;
};

// One line per interface of a /proc/<pid>/net/dev text.
struct InterfaceCounters {
  std::string name;
  uint64_t rx_bytes = 0, rx_errors = 0, tx_bytes = 0, tx_errors = 0;
};
std::vector<InterfaceCounters> ParseNetDev(const std::string& text);

void FillContainerStats(Runtime& rt, const Container& c, v1::ContainerStats* out);
void FillPodStats(Runtime& rt, const Pod& pod, v1::PodSandboxStats* out);

}  // namespace crius::cri
