// Process metrics of criusd itself, read from procfs on every scrape
// (prometheus-cpp has no process collector; reading on scrape needs no timer
// thread and is never stale).
#pragma once

#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

namespace crius::metrics {

// crius_process_resident_memory_bytes, crius_process_open_fds,
// crius_process_max_fds, crius_process_threads,
// crius_process_start_time_seconds, crius_process_cpu_seconds_total.
class ProcessCollector : public prometheus::Collectable {
 public:
  // `proc` is the procfs root: "<proc>/self/stat", "<proc>/self/fd",
  // "<proc>/self/limits" and "<proc>/stat" (boot time) are read.
  explicit ProcessCollector(std::string proc = "/proc");

  // A family whose source cannot be read is left out of this scrape (and
  // logged at debug level) rather than reported as a made-up value.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string proc_;
};

}  // namespace crius::metrics
