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
  nlohmann::json extra = {{"dir", dir}, {"monitorPid", monitor_pid}, {"namespaces", namespaces}};
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
  std::lock_guard<std::mutex> lock(mu_);
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
      if (extra.contains("namespaces") && extra["namespaces"].is_object()) {
        for (auto& [k, v] : extra["namespaces"].items()) {
          if (v.is_string()) pod->namespaces[k] = v.get<std::string>();
        }
      }
    }
    by_id_[pod->id] = pod;
    by_name_[pod->reserved_name] = pod->id;
    out.push_back(pod);
  }
  return out;
}

std::shared_ptr<Pod> PodTable::Get(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

std::shared_ptr<Pod> PodTable::Find(const std::string& id_or_prefix) const {
  if (id_or_prefix.empty()) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = by_id_.find(id_or_prefix); it != by_id_.end()) return it->second;
  std::shared_ptr<Pod> match;
  for (auto it = by_id_.lower_bound(id_or_prefix);
       it != by_id_.end() && absl::StartsWith(it->first, id_or_prefix); ++it) {
    if (match) return nullptr;  // ambiguous
    match = it->second;
  }
  return match;
}

std::shared_ptr<Pod> PodTable::ByName(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return nullptr;
  return by_id_.at(it->second);
}

std::vector<std::shared_ptr<Pod>> PodTable::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<Pod>> out;
  out.reserve(by_id_.size());
  for (const auto& [id, pod] : by_id_) out.push_back(pod);
  return out;
}

absl::Status PodTable::Reserve(const std::shared_ptr<Pod>& pod) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = by_name_.find(pod->reserved_name); it != by_name_.end()) {
    return absl::AlreadyExistsError(absl::StrCat("pod name ", pod->reserved_name,
                                                 " is reserved for pod ", it->second));
  }
  CRIUS_RETURN_IF_ERROR(db_.PutPod(pod->ToRecord()));
  by_id_[pod->id] = pod;
  by_name_[pod->reserved_name] = pod->id;
  return absl::OkStatus();
}

absl::Status PodTable::Save(const Pod& pod) { return db_.PutPod(pod.ToRecord()); }

absl::Status PodTable::Delete(const std::string& id) {
  CRIUS_RETURN_IF_ERROR(db_.DeletePod(id));
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = by_id_.find(id); it != by_id_.end()) {
    by_name_.erase(it->second->reserved_name);
    by_id_.erase(it);
  }
  return absl::OkStatus();
}

}  // namespace crius::cri
