#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <set>

#include "absl/strings/str_split.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "common/undo.h"
#include "cri/container_cgroups.h"
#include "cri/container_ops.h"
#include "cri/container_security.h"
#include "cri/handlers.h"
#include "cri/image_volumes.h"
#include "cri/pod_userns.h"
#include "cri/sandbox_ops.h"
#include "cri/unikernel.h"
#include "sandbox/monitor_client.h"

namespace crius::cri {
namespace {

// The propagation a mount asks for needs the host side to propagate too:
// bidirectional needs the host path on a shared mount, host-to-container on
// a shared or slave one. The mount holding the path is the one with the
// longest mount point that prefixes it.
absl::Status CheckPropagationSource(const std::string& field, const std::string& host_path, int propagation) {
  char real[PATH_MAX];
  if (::realpath(host_path.c_str(), real) == nullptr) return ErrnoError(errno, absl::StrCat("resolve ", host_path));
  std::string path = real;
  std::ifstream in("/proc/self/mountinfo");
  std::string best, best_fields;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() < 7) continue;
    std::string mp = f[4];
    bool under = mp == "/" || path == mp || absl::StartsWith(path, mp + "/");
    if (under && mp.size() >= best.size()) {
      best = mp;
      best_fields.clear();
      for (size_t i = 6; i < f.size() && f[i] != "-"; ++i) absl::StrAppend(&best_fields, f[i], " ");
    }
  }
  bool shared = absl::StrContains(best_fields, "shared:");
  bool slave = absl::StrContains(best_fields, "master:");
  if (propagation == v1::PROPAGATION_BIDIRECTIONAL && !shared) {
    return InvalidField(field, absl::StrCat("bidirectional propagation needs host_path \"", host_path,
                                       "\" on a shared mount, but the mount at ", best,
                                       " is not shared (make it so: mount --make-rshared ", best, ")"));
  }
  if (propagation == v1::PROPAGATION_HOST_TO_CONTAINER && !shared && !slave) {
    return InvalidField(field, absl::StrCat("host-to-container propagation needs host_path \"", host_path,
                                       "\" on a shared or slave mount, but the mount at ", best,
                                       " is private (make it shared: mount --make-rshared ", best, ")"));
  }
  return absl::OkStatus();
}

bool CleanRelative(const std::string& p) {
  if (p.empty() || p[0] == '/') return false;
  for (absl::string_view part : absl::StrSplit(p, '/')) {
    if (part == "..") return false;
  }
  return true;
}

// Kubernetes' rule: a command replaces the image's Entrypoint and Cmd;
// args alone replace only Cmd.
std::vector<std::string> Argv(const v1::ContainerConfig& c, const image::ImageConfig& img) {
  std::vector<std::string> argv;
  if (c.command_size() > 0) {
    argv.assign(c.command().begin(), c.command().end());
    argv.insert(argv.end(), c.args().begin(), c.args().end());
    return argv;
  }
  argv = img.entrypoint;
  if (c.args_size() > 0) {
    argv.insert(argv.end(), c.args().begin(), c.args().end());
  } else {
    argv.insert(argv.end(), img.cmd.begin(), img.cmd.end());
  }
  return argv;
}

// The image's environment, then the container's: a later key wins.
std::vector<std::string> Env(const v1::ContainerConfig& c, const image::ImageConfig& img) {
  std::vector<std::string> env = img.env;
  for (const v1::KeyValue& kv : c.envs()) {
    std::string prefix = absl::StrCat(kv.key(), "=");
    std::erase_if(env, [&](const std::string& e) { return absl::StartsWith(e, prefix); });
    env.push_back(absl::StrCat(prefix, kv.value()));
  }
  return env;
}

std::string User(const v1::ContainerConfig& c, const image::ImageConfig& img) {
  const auto& sc = c.linux().security_context();
  std::string user;
  if (sc.has_run_as_user()) {
    user = absl::StrCat(sc.run_as_user().value());
  } else if (!sc.run_as_username().empty()) {
    user = sc.run_as_username();
  } else {
    return sc.has_run_as_group() ? absl::StrCat(img.user.empty() ? "0" : img.user.substr(0, img.user.find(':')),
                                                ":", sc.run_as_group().value())
                                 : img.user;
  }
  if (sc.has_run_as_group()) absl::StrAppend(&user, ":", sc.run_as_group().value());
  return user;
}

// The container's pid mode: POD and CONTAINER need nothing here; NODE needs
// a pod on the node's pid namespace; TARGET names a running container of
// the same pod with its own pid namespace, whose id this returns.
absl::StatusOr<std::string> TargetPidNamespace(Runtime& rt, const Pod& pod, const v1::ContainerConfig& config) {
  const v1::NamespaceOption& ns = config.linux().security_context().namespace_options();
  const std::string field = "config.linux.security_context.namespace_options";
  if (!v1::NamespaceMode_IsValid(ns.pid())) {
    return InvalidField(absl::StrCat(field, ".pid"), absl::StrCat("namespace mode ", ns.pid(), " is not valid"));
  }
  if (ns.pid() == v1::NODE && pod.config.linux().security_context().namespace_options().pid() != v1::NODE) {
    return InvalidField(absl::StrCat(field, ".pid"), "the node's pid namespace needs a pod on it (pid NODE)");
  }
  if (ns.pid() != v1::TARGET) return std::string();
  if (ns.target_id().empty()) {
    return InvalidField(absl::StrCat(field, ".target_id"),
                        "is empty: pid mode TARGET names the container whose pid namespace to join");
  }
  std::shared_ptr<Container> target = rt.containers().Find(ns.target_id());
  if (target == nullptr || target->pod_id != pod.id) {
    return InvalidField(absl::StrCat(field, ".target_id"),
                        absl::StrCat("no container \"", ns.target_id(), "\" in pod ", pod.id));
  }
  if (target->config.linux().security_context().namespace_options().pid() != v1::CONTAINER) {
    return InvalidField(absl::StrCat(field, ".target_id"),
                        absl::StrCat("container ", target->id, " has no pid namespace of its own (pid mode CONTAINER)"));
  }
  if (target->state != kContainerRunning) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ".target_id: container ", target->id, " is not running"));
  }
  return target->id;
}

// The checks of a CRI mount whose `image` is set (an image volume); the
// image it names.
absl::StatusOr<image::ImageInfo> CheckImageMount(Runtime& rt, const v1::Mount& m, const std::string& field) {
  if (!m.host_path().empty()) {
    return InvalidField(field, "host_path and image are both set: a mount is of one or the other");
  }
  if (!m.readonly()) return InvalidField(field, "an image mount is read-only: set readonly");
  if (m.propagation() == v1::PROPAGATION_BIDIRECTIONAL) {
    return InvalidField(field, "an image mount is read-only: its propagation cannot be bidirectional");
  }
  CRIUS_ASSIGN_OR_RETURN(std::optional<image::ImageInfo> image, rt.images().Find(m.image().image()));
  if (!image) {
    return absl::NotFoundError(absl::StrCat(field, ".image: image \"", m.image().image(),
                                            "\" is not present on this node: pull it first"));
  }
  return *image;
}

}  // namespace

absl::Status ContainerCreate(Runtime& rt, const v1::CreateContainerRequest& req,
                             v1::CreateContainerResponse* resp) {
  if (req.pod_sandbox_id().empty()) return InvalidField("pod_sandbox_id", "is empty");
  if (!req.has_config()) return InvalidField("config", "is missing");
  const v1::ContainerConfig& config = req.config();
  const std::string& name = config.metadata().name();
  if (name.empty()) return InvalidField("config.metadata.name", "is empty");
  if (absl::StrContains(name, '/')) return InvalidField("config.metadata.name", absl::StrCat("\"", name, "\" contains '/'"));
  if (config.image().image().empty()) return InvalidField("config.image.image", "is empty");

  std::shared_ptr<Pod> pod = rt.pods().Find(req.pod_sandbox_id());
  if (pod == nullptr) {
    return absl::NotFoundError(absl::StrCat("pod sandbox ", req.pod_sandbox_id(), " not found"));
  }
  RefreshPod(rt, *pod);
  // Held to the end: a StopPodSandbox or RemovePodSandbox waits for this
  // container to be made (or undone) instead of removing the pod beneath it.
  std::lock_guard<std::mutex> pod_lock(pod->op);
  if (pod->state != kPodReady || rt.pods().Get(pod->id) == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod sandbox ", pod->id, " is not ready: containers cannot be created in it"));
  }
  // A unikernel pod's containers are guests: one at a time, run by a
  // tender; the CRI mounts, devices and security context (a process's)
  // do not reach a guest.
  const std::string flavour = PodFlavour(rt, *pod);
  if (!flavour.empty()) CRIUS_RETURN_IF_ERROR(CheckOneGuestAtATime(rt, *pod));
  CRIUS_ASSIGN_OR_RETURN(std::optional<image::ImageInfo> image, rt.images().Find(config.image().image()));
  if (!image) {
    return absl::NotFoundError(absl::StrCat("image \"", config.image().image(),
                                            "\" is not present on this node: pull it first"));
  }
  std::string log_path;
  if (!config.log_path().empty()) {
    if (!CleanRelative(config.log_path())) {
      return InvalidField("config.log_path", absl::StrCat("\"", config.log_path(),
                                                     "\" leads outside the pod's log directory"));
    }
    if (!pod->config.log_directory().empty()) {
      log_path = absl::StrCat(pod->config.log_directory(), "/", config.log_path());
    }
  }
  const v1::NamespaceOption& pod_ns = pod->config.linux().security_context().namespace_options();
  CRIUS_ASSIGN_OR_RETURN(sandbox::IdMappings userns, PodIdMappings(pod_ns, "sandbox_config.namespace_options"));
  CRIUS_RETURN_IF_ERROR(CheckContainerUserns(config.linux().security_context().namespace_options(), pod_ns,
                                             "config.linux.security_context.namespace_options"));
  CRIUS_ASSIGN_OR_RETURN(std::string target_pid, TargetPidNamespace(rt, *pod, config));
  for (int i = 0; !flavour.empty() && i < config.mounts_size(); ++i) {
    if (!config.mounts(i).image().image().empty()) {
      return InvalidField(absl::StrCat("config.mounts[", i, "].image"),
                          absl::StrCat("an image volume needs a namespace container: a crius-", flavour,
                                       " guest has no filesystem to mount it on"));
    }
  }
  std::set<std::string> destinations;
  std::vector<bool> idmapped;
  std::vector<ImageVolumeUse> volumes;
  std::vector<image::ImageInfo> volume_images;
  for (int i = 0; flavour.empty() && i < config.mounts_size(); ++i) {
    const v1::Mount& m = config.mounts(i);
    std::string field = absl::StrCat("config.mounts[", i, "]");
    const bool from_image = !m.image().image().empty();
    CRIUS_ASSIGN_OR_RETURN(bool idmap, MountIsIdmapped(m, userns, field));
    idmapped.push_back(idmap);
    if (m.container_path().empty() || m.container_path()[0] != '/') {
      return InvalidField(field, absl::StrCat("container_path \"", m.container_path(), "\" is not absolute"));
    }
    std::vector<absl::string_view> parts = absl::StrSplit(m.container_path(), '/');
    if (std::find(parts.begin(), parts.end(), "..") != parts.end()) {
      return InvalidField(field, absl::StrCat("container_path \"", m.container_path(), "\" has a \"..\" part"));
    }
    struct stat st;
    if (from_image) {
      CRIUS_ASSIGN_OR_RETURN(image::ImageInfo volume, CheckImageMount(rt, m, field));
      volumes.push_back({i, volume.id, ImageVolumes::Name(volume.id, idmap ? pod->id : "")});
      volume_images.push_back(std::move(volume));
    } else if (!m.image_sub_path().empty()) {
      return InvalidField(field, "image_sub_path is set without image: it names a path inside an image mount");
    } else if (m.host_path().empty() || ::stat(m.host_path().c_str(), &st) != 0) {
      return InvalidField(field, absl::StrCat("host_path \"", m.host_path(), "\" does not exist"));
    }
    if (!v1::MountPropagation_IsValid(m.propagation())) {
      return InvalidField(field, absl::StrCat("propagation ", m.propagation(), " is not private, host-to-container or bidirectional"));
    }
    if (m.recursive_read_only() && !m.readonly()) {
      return InvalidField(field, "recursive_read_only needs readonly");
    }
    if (m.recursive_read_only() && m.propagation() != v1::PROPAGATION_PRIVATE) {
      return InvalidField(field, "recursive_read_only needs private propagation");
    }
    if (m.propagation() != v1::PROPAGATION_PRIVATE && !from_image) {
      CRIUS_RETURN_IF_ERROR(CheckPropagationSource(field, m.host_path(), m.propagation()));
    }
    destinations.insert(m.container_path());
  }

  crius::monitor::ContainerSpec security;
  if (flavour.empty()) {
    CRIUS_RETURN_IF_ERROR(ApplySecurityContext(config, pod->config, &security));
    CRIUS_RETURN_IF_ERROR(ApplySeccomp(config, &security));
    CRIUS_RETURN_IF_ERROR(ApplyDevices(config, &security));
  }
  CRIUS_RETURN_IF_ERROR(CheckResources(rt, config.linux().resources(), "config."));

  const v1::PodSandboxMetadata& pm = pod->config.metadata();
  auto c = std::make_shared<Container>();
  c->id = NewId();
  c->pod_id = pod->id;
  c->reserved_name = absl::StrCat(name, "_", pm.name(), "_", pm.namespace_(), "_", pm.uid(), "_",
                                  config.metadata().attempt());
  c->config = config;
  c->state = kContainerCreating;
  c->created_at_ns = NowNs();
  c->image_id = image->id;
  c->image_ref = image->repo_digests.empty() ? image->id : image->repo_digests.front();
  c->log_path = log_path;
  c->dir = absl::StrCat(rt.containers_dir(), "/", c->id);
  c->stop_signal = SignalNumber(image->config.stop_signal);
  if (!pod->cgroup.empty()) c->cgroup = absl::StrCat(pod->cgroup, "/", c->id);
  c->image_volumes = volumes;
  std::lock_guard<std::mutex> lock(c->op);
  UndoStack undo;

  CRIUS_RETURN_IF_ERROR(rt.containers().Reserve(c));
  undo.Push("release the name", [&rt, id = c->id] {
    (void)rt.containers().Delete(id);
    rt.image_volumes().Sweep();  // the volumes only it mounted
  });
  CRIUS_FAILPOINT("container_create.after_reserve");
  // Recorded first (above), each volume is mounted on the node, then bound
  // into the container by its monitor.
  std::vector<std::string> sources(static_cast<size_t>(config.mounts_size()));
  for (size_t k = 0; k < volumes.size(); ++k) {
    const v1::Mount& m = config.mounts(volumes[k].index);
    std::string field = absl::StrCat("config.mounts[", volumes[k].index, "]");
    std::string userns;
    if (idmapped[static_cast<size_t>(volumes[k].index)]) {
      auto user = pod->namespaces.find("user");
      if (user == pod->namespaces.end()) {
        return absl::FailedPreconditionError(absl::StrCat("pod ", pod->id, " has no user namespace pinned"));
      }
      userns = user->second;
    }
    absl::StatusOr<std::string> at =
        rt.image_volumes().Mount(volumes[k].volume, rt.images().LayerDirs(volume_images[k]), userns);
    if (!at.ok()) return Annotate(at.status(), absl::StrCat(field, ": mount image ", m.image().image()));
    if (!m.image_sub_path().empty()) {
      at = ImageSubPath(*at, m.image_sub_path(), field + ".image_sub_path");
      if (!at.ok()) return at.status();
    }
    sources[static_cast<size_t>(volumes[k].index)] = *at;
  }
  if (!volumes.empty()) CRIUS_FAILPOINT("container_create.after_image_volumes");

  // The container directory (made first, with work/) is root's alone; the
  // upper dir's mode becomes the mode of the container's "/", which every
  // user in the container must be able to traverse.
  for (auto [sub, mode] : {std::pair{"/work", 0700}, {"/upper", 0755}, {"/rootfs", 0755}, {"/empty", 0755}}) {
    absl::StatusOr<std::vector<std::string>> made = MakeDirs(c->dir + sub, static_cast<mode_t>(mode));
    if (!made.ok()) return Annotate(made.status(), "create container directories");
  }
  undo.Push("remove container directories", [dir = c->dir] { (void)RemoveTree(dir); });
  CRIUS_FAILPOINT("container_create.after_dirs");
  if (!log_path.empty()) {
    absl::StatusOr<std::vector<std::string>> made = MakeDirs(log_path.substr(0, log_path.rfind('/')), 0755);
    if (!made.ok()) return Annotate(made.status(), "create the container's log directory");
    CRIUS_FAILPOINT("container_create.after_log_dir");
  }

  crius::monitor::Request req_create;
  crius::monitor::ContainerSpec* spec = req_create.mutable_create()->mutable_spec();
  spec->set_id(c->id);
  for (const std::string& dir : rt.images().LayerDirs(*image)) spec->add_lower_dirs(dir);
  if (spec->lower_dirs_size() == 0) spec->add_lower_dirs(c->dir + "/empty");  // an image of no layers
  spec->set_upper_dir(c->dir + "/upper");
  spec->set_work_dir(c->dir + "/work");
  spec->set_rootfs(c->dir + "/rootfs");
  if (!flavour.empty()) {
    std::vector<std::string> layers(spec->lower_dirs().begin(), spec->lower_dirs().end());
    CRIUS_RETURN_IF_ERROR(TenderSpec(rt, *pod, config, *image, layers, spec));
  }
  for (const std::string& a : Argv(config, image->config)) spec->add_args(a);
  if (spec->args_size() == 0 && flavour.empty()) {
    return InvalidField("config.command", absl::StrCat("neither the container nor the image \"",
                                                  config.image().image(), "\" names a command"));
  }
  for (const std::string& e : Env(config, image->config)) spec->add_env(e);
  spec->set_cwd(!config.working_dir().empty() ? config.working_dir() : image->config.working_dir);
  spec->set_user(User(config, image->config));
  for (int64_t g : config.linux().security_context().supplemental_groups()) {
    spec->add_additional_gids(static_cast<uint32_t>(g));
  }
  for (const char* file : {"hosts", "resolv.conf", "hostname"}) {
    std::string dest = absl::StrCat("/etc/", file);
    if (destinations.count(dest)) continue;
    crius::monitor::Mount* m = spec->add_mounts();
    m->set_source(absl::StrCat(pod->dir, "/", file));
    m->set_destination(dest);
  }
  for (int i = 0; flavour.empty() && i < config.mounts_size(); ++i) {
    const v1::Mount& cm = config.mounts(i);
    crius::monitor::Mount* m = spec->add_mounts();
    const bool from_image = !cm.image().image().empty();
    m->set_source(from_image ? sources[static_cast<size_t>(i)] : cm.host_path());
    m->set_destination(cm.container_path());
    m->set_readonly(cm.readonly());
    m->set_nodev(from_image);
    m->set_nosuid(from_image);
    m->set_recursive_readonly(cm.recursive_read_only());
    m->set_propagation(static_cast<uint32_t>(cm.propagation()));
    m->set_from_request(true);
    m->set_index(static_cast<uint32_t>(i));
    m->set_idmap(idmapped[i] && !from_image);  // an idmapped image volume is mapped already
  }
  if (!userns.uids.empty()) {
    auto user = pod->namespaces.find("user");
    if (user == pod->namespaces.end()) {
      return absl::FailedPreconditionError(absl::StrCat("pod ", pod->id, " has no user namespace pinned"));
    }
    spec->set_user_namespace(user->second);
    spec->set_userns_root_uid(*sandbox::HostId(userns.uids, 0));
    spec->set_userns_root_gid(*sandbox::HostId(userns.gids, 0));
    std::optional<uint32_t> tty = sandbox::HostId(userns.gids, 5);
    spec->set_userns_tty_gid(tty ? int64_t{*tty} : -1);
  }
  spec->set_log_path(log_path);
  spec->set_new_pid_namespace(config.linux().security_context().namespace_options().pid() == v1::CONTAINER);
  spec->set_target_pid_namespace(target_pid);
  spec->set_readonly_rootfs(config.linux().security_context().readonly_rootfs());
  spec->MergeFrom(security);
  CRIUS_RETURN_IF_ERROR(Annotate(CreateContainerCgroup(rt, *pod, *c, config.linux().resources(), spec),
                                 "create the container's cgroup"));
  undo.Push("remove the container's cgroup", [&rt, c] { (void)RemoveContainerCgroup(rt, *c); });
  CRIUS_FAILPOINT("container_create.after_cgroup");
  spec->set_tty(config.tty());
  spec->set_stdin(config.stdin());
  if (pod->config.linux().security_context().namespace_options().ipc() != v1::NODE) {
    spec->set_shm(absl::StrCat(pod->dir, "/shm"));
  }

  // Exec (ExecSync, Exec) runs its processes as this spec says, in the
  // container's namespaces: it is kept beside the container's layers.
  CRIUS_RETURN_IF_ERROR(Annotate(WriteFileAtomic(ContainerSpecPath(*c), spec->SerializeAsString(), 0600),
                                 "record the container's spec"));
  CRIUS_FAILPOINT("container_create.after_spec");
  absl::StatusOr<crius::monitor::Response> created = sandbox::CallMonitor(pod->dir, req_create, 60000);
  if (!created.ok()) return Annotate(created.status(), absl::StrCat("create container ", name));
  undo.Push("remove the container from the monitor", [pod, id = c->id] {
    crius::monitor::Request remove;
    remove.mutable_remove()->set_id(id);
    (void)sandbox::CallMonitor(pod->dir, remove);
  });
  CRIUS_FAILPOINT("container_create.after_monitor");
  c->state = kContainerCreated;
  CRIUS_RETURN_IF_ERROR(Annotate(rt.containers().Save(*c), "record container created"));
  CRIUS_FAILPOINT("container_create.after_record");
  rt.events().Publish(v1::CONTAINER_CREATED_EVENT, c->id, pod->id);
  undo.Commit();
  resp->set_container_id(c->id);
  return absl::OkStatus();
}

}  // namespace crius::cri
