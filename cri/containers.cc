#include "cri/containers.h"

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"

namespace crius::cri {

store::ContainerRecord Container::ToRecord() const {
  store::ContainerRecord r;
  r.id = id;
  r.pod_id = pod_id;
  r.name = reserved_name;
  r.state = state;
  r.created_at_ns = created_at_ns;
  r.started_at_ns = started_at_ns;
  r.finished_at_ns = finished_at_ns;
  r.exit_code = exit_code;
  r.reason = reason;
  r.message = message;
  r.image_ref = image_ref;
  r.config = config.SerializeAsString();
  nlohmann::json extra{{"imageId", image_id}, {"logPath", log_path}, {"dir", dir},
                       {"stopSignal", stop_signal}, {"cgroup", cgroup}};
  for (const ImageVolumeUse& v : image_volumes) {
    extra["imageVolumes"].push_back({{"index", v.index}, {"imageId", v.image_id}, {"volume", v.volume}});
  }
  r.extra = extra.dump();
  return r;
}

absl::StatusOr<std::vector<std::shared_ptr<Container>>> ContainerTable::Load() {
  CRIUS_ASSIGN_OR_RETURN(std::vector<store::ContainerRecord> records, db_.ListContainers());
  std::vector<std::shared_ptr<Container>> out;
  for (const store::ContainerRecord& r : records) {
    auto c = std::make_shared<Container>();
    c->id = r.id;
    c->pod_id = r.pod_id;
    c->reserved_name = r.name;
    c->state = r.state;
    c->created_at_ns = r.created_at_ns;
    c->started_at_ns = r.started_at_ns;
    c->finished_at_ns = r.finished_at_ns;
    c->exit_code = r.exit_code;
    c->reason = r.reason;
    c->message = r.message;
    c->image_ref = r.image_ref;
    if (!c->config.ParseFromString(r.config)) LOG_WARN("container %s: recorded config does not parse", r.id);
    auto extra = nlohmann::json::parse(r.extra, nullptr, false);
    if (extra.is_object()) {
      c->image_id = extra.value("imageId", "");
      c->log_path = extra.value("logPath", "");
      c->dir = extra.value("dir", "");
      c->stop_signal = extra.value("stopSignal", 0);
      c->cgroup = extra.value("cgroup", "");
      for (const nlohmann::json& v : extra.value("imageVolumes", nlohmann::json::array())) {
        if (!v.is_object()) continue;
        c->image_volumes.push_back({v.value("index", 0), v.value("imageId", ""), v.value("volume", "")});
      }
    }
    table_.Insert(c);
    out.push_back(c);
  }
  return out;
}

std::vector<std::shared_ptr<Container>> ContainerTable::OfPod(const std::string& pod_id) const {
  std::vector<std::shared_ptr<Container>> out = table_.All();
  std::erase_if(out, [&](const auto& c) { return c->pod_id != pod_id; });
  return out;
}

absl::Status ContainerTable::Reserve(const std::shared_ptr<Container>& c) {
  return table_.Add(c, "container", [&] { return db_.PutContainer(c->ToRecord()); });
}

absl::Status ContainerTable::Save(const Container& c) { return db_.PutContainer(c.ToRecord()); }

absl::Status ContainerTable::Delete(const std::string& id) {
  CRIUS_RETURN_IF_ERROR(db_.DeleteContainer(id));
  table_.Remove(id);
  return absl::OkStatus();
}

}  // namespace crius::cri
