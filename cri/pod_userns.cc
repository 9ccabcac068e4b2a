#include "cri/pod_userns.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace crius::cri {
namespace {

std::vector<sandbox::IdRange> Ranges(const google::protobuf::RepeatedPtrField<v1::IDMapping>& list) {
  std::vector<sandbox::IdRange> out;
  for (const v1::IDMapping& m : list) out.push_back({m.container_id(), m.host_id(), m.length()});
  return out;
}

}  // namespace

absl::StatusOr<sandbox::IdMappings> PodIdMappings(const v1::NamespaceOption& ns, absl::string_view field) {
  if (!ns.has_userns_options()) return sandbox::IdMappings{};
  const v1::UserNamespace& u = ns.userns_options();
  std::string base = absl::StrCat(field, ".userns_options");
  if (u.mode() == v1::NODE) {
    if (u.uids_size() > 0 || u.gids_size() > 0) {
      return InvalidField(absl::StrCat(base, ".uids"), "must be empty: mode NODE uses the node's user namespace");
    }
    return sandbox::IdMappings{};
  }
  if (u.mode() != v1::POD) {
    return InvalidField(absl::StrCat(base, ".mode"),
                        absl::StrCat("namespace mode ", u.mode(), ": a user namespace is POD or NODE"));
  }
  if (ns.network() == v1::NODE) {
    return InvalidField(base, "a pod on the node's network cannot have its own user namespace");
  }
  sandbox::IdMappings m{Ranges(u.uids()), Ranges(u.gids())};
  for (const auto& [name, ranges] : {std::pair{"uids", &m.uids}, {"gids", &m.gids}}) {
    std::string problem = sandbox::CheckIdRanges(*ranges);
    if (problem.empty() && !sandbox::HostId(*ranges, 0)) problem = "does not map container ID 0";
    if (!problem.empty()) return InvalidField(absl::StrCat(base, ".", name), problem);
  }
  return m;
}

absl::Status CheckContainerUserns(const v1::NamespaceOption& container, const v1::NamespaceOption& pod,
                                  absl::string_view field) {
  if (!container.has_userns_options()) return absl::OkStatus();
  const v1::UserNamespace& c = container.userns_options();
  v1::UserNamespace p = pod.userns_options();  // defaults: mode POD, no mappings
  bool same = c.mode() == p.mode() && Ranges(c.uids()) == Ranges(p.uids()) && Ranges(c.gids()) == Ranges(p.gids());
  if (!pod.has_userns_options()) same = c.mode() == v1::NODE && c.uids_size() == 0 && c.gids_size() == 0;
  if (!same) return InvalidField(absl::StrCat(field, ".userns_options"), "differs from the pod sandbox's");
  return absl::OkStatus();
}

absl::StatusOr<bool> MountIsIdmapped(const v1::Mount& m, const sandbox::IdMappings& pod, absl::string_view field) {
  if (m.uidmappings_size() == 0 && m.gidmappings_size() == 0) return false;
  if (pod.uids.empty()) {
    return InvalidField(absl::StrCat(field, ".uidMappings"), "an idmapped mount needs a pod with a user namespace");
  }
  if (Ranges(m.uidmappings()) != pod.uids) {
    return InvalidField(absl::StrCat(field, ".uidMappings"), "must be the pod's user namespace mappings");
  }
  if (Ranges(m.gidmappings()) != pod.gids) {
    return InvalidField(absl::StrCat(field, ".gidMappings"), "must be the pod's user namespace mappings");
  }
  return true;
}

}  // namespace crius::cri
