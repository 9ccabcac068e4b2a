#include "cri/pods.h"

#include <sys/random.h>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"

namespace crius::cri {

std::string NewId() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(bytes), sizeof bytes));
}

store::PodRecord Pod::ToRecord() const {
  nlohmann::json extra = {{"dir", dir}, {"monitorPid", monitor_pid}, {"namespaces", namespaces}, {"ips", ips},
                        {"cgroup", cgroup}, {"cgroupOwned", cgroup_owned}};
  if (!monitor_exit_reason.empty()) {
    extra["monitorExit"] = {{"reason", monitor_exit_reason}, {"message", monitor_exit_message}};
  }
  store::PodRecord r;
  r.id = id;
  r.name = reserved_name;
  r.state = state;
  r.runtime_handler = runtime_handler;
  r.created_at_ns = created_at_ns;
  r.config = config.SerializeAsString();
  r.extra = extra.dump();
  return r;
}

absl::StatusOr<std::vector<std::shared_ptr<Pod>>> PodTable::Load() {
  CRIUS_ASSIGN_OR_RETURN(std::vector<store::PodRecord> records, db_.ListPods());
  std::vector<std::shared_ptr<Pod>> out;
  for (const store::PodRecord& r : records) {
    auto pod = std::make_shared<Pod>();
    pod->id = r.id;
    pod->reserved_name = r.name;
    pod->runtime_handler = r.runtime_handler;
    pod->state = r.state;
    pod->created_at_ns = r.created_at_ns;
    if (!pod->config.ParseFromString(r.config)) {
      LOG_WARN("pod %s: recorded config does not parse; keeping the pod without it", r.id);
    }
    auto extra = nlohmann::json::parse(r.extra, nullptr, false);
    if (extra.is_object()) {
      pod->dir = extra.value("dir", "");
      pod->monitor_pid = extra.value("monitorPid", 0);
      pod->cgroup = extra.value("cgroup", "");
      pod->cgroup_owned = extra.value("cgroupOwned", false);
      if (extra.contains("monitorExit") && extra["monitorExit"].is_object()) {
        pod->monitor_exit_reason = extra["monitorExit"].value("reason", "");
        pod->monitor_exit_message = extra["monitorExit"].value("message", "");
      }
      if (extra.contains("namespaces") && extra["namespaces"].is_object()) {
        for (auto& [k, v] : extra["namespaces"].items()) {
          if (v.is_string()) pod->namespaces[k] = v.get<std::string>();
        }
      }
      if (extra.contains("ips") && extra["ips"].is_array()) {
        for (const auto& ip : extra["ips"]) {
          if (ip.is_string()) pod->ips.push_back(ip.get<std::string>());
        }
      }
    }
    table_.Insert(pod);
    out.push_back(pod);
  }
  return out;
}

absl::Status PodTable::Reserve(const std::shared_ptr<Pod>& pod) {
  return table_.Add(pod, "pod", [&] { return db_.PutPod(pod->ToRecord()); });
}

absl::Status PodTable::Save(const Pod& pod) { return db_.PutPod(pod.ToRecord()); }

absl::Status PodTable::Delete(const std::string& id) {
  CRIUS_RETURN_IF_ERROR(db_.DeletePod(id));
  table_.Remove(id);
  return absl::OkStatus();
}

}  // namespace crius::cri
