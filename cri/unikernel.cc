#include "cri/unikernel.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "cri/containers.h"
#include "cri/pods.h"
#include "network/guest_link.h"
#include "unikernel/core/abi/hvt_abi.h"
#include "unikernel/core/abi/spt_abi.h"
#include "unikernel/core/elf_image.h"
#include "unikernel/core/mft.h"

namespace crius::cri {
namespace {

using json = nlohmann::json;

constexpr char kTap[] = "tap0";
// The largest guest ELF read: far beyond any unikernel, far below memory.
constexpr off_t kMaxGuestFile = 256 << 20;

// An image setting: its manifest annotation, else its config label.
std::string Setting(const image::ImageInfo& image, const std::string& key) {
  if (auto it = image.annotations.find(key); it != image.annotations.end()) return it->second;
  if (auto it = image.config.labels.find(key); it != image.config.labels.end()) return it->second;
  return "";
}

bool CleanAbsolute(const std::string& path) {
  if (path.empty() || path[0] != '/') return false;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

std::string ImageName(const image::ImageInfo& image) {
  return image.repo_tags.empty() ? image.id : image.repo_tags.front();
}

// The guest file as the container's overlay will show it: the topmost
// layer that has it, unless a layer above deletes it (an overlay whiteout,
// a character device 0:0) or hides the layers below its directory (an
// opaque directory). No symlink is followed.
absl::StatusOr<std::string> ReadFromLayers(const std::vector<std::string>& layers, const std::string& path,
                                           const std::string& what) {
  std::vector<std::string> parts = absl::StrSplit(path.substr(1), '/', absl::SkipEmpty());
  for (const std::string& layer : layers) {
    UniqueFd dir(::open(layer.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return ErrnoError(errno, absl::StrCat("open image layer ", layer));
    std::string rel;
    bool opaque = false;
    for (size_t i = 0; i < parts.size(); ++i) {
      rel = rel.empty() ? parts[i] : absl::StrCat(rel, "/", parts[i]);
      struct stat st;
      if (::fstatat(dir.get(), rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) break;  // not in this layer
      if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
        return absl::NotFoundError(absl::StrCat(what, " \"", path, "\" is not in the image (a layer deletes it)"));
      }
      if (S_ISLNK(st.st_mode)) {
        return absl::InvalidArgumentError(absl::StrCat(what, " \"", path, "\" is or passes through a symlink (",
                                                       "/", rel, "): name the file itself"));
      }
      if (i + 1 < parts.size()) {
        if (!S_ISDIR(st.st_mode)) break;
        char v = 0;
        std::string full = absl::StrCat(layer, "/", rel);
        if (::lgetxattr(full.c_str(), "trusted.overlay.opaque", &v, 1) == 1 && v == 'y') opaque = true;
        continue;
      }
      if (!S_ISREG(st.st_mode)) {
        return absl::InvalidArgumentError(absl::StrCat(what, " \"", path, "\" is not a regular file"));
      }
      if (st.st_size > kMaxGuestFile) {
        return absl::InvalidArgumentError(absl::StrCat(what, " \"", path, "\" is larger than 256 MiB"));
      }
      return ReadFile(absl::StrCat(layer, "/", rel));
    }
    if (opaque) break;
  }
  return absl::NotFoundError(absl::StrCat(what, " \"", path, "\" is not in the image"));
}

std::string FlavourOfTarget(uint32_t target) {
  return target == HVT_ABI_TARGET ? "hvt" : target == SPT_ABI_TARGET ? "spt" : absl::StrCat("target ", target);
}

std::vector<std::string> Words(const std::string& text) {
  return absl::StrSplit(text, ' ', absl::SkipEmpty());
}

}  // namespace

GuestMemory SizeGuestMemory(const std::string& flavour, int64_t limit_bytes, int64_t default_mib,
                            int64_t reserve_mib) {
  GuestMemory m{.mib = default_mib};
  if (limit_bytes > 0) {
    m.mib = (limit_bytes >> 20) - reserve_mib;
    m.tables_mib = std::max<int64_t>((m.mib + 255) / 256, 0);
    m.mib -= m.tables_mib;
  }
  m.mib &= ~int64_t{1};
  if (flavour == "hvt" && m.mib > kHvtMaxMemMib) {
    m.mib = kHvtMaxMemMib;
    m.capped = true;
  }
  return m;
}

std::string PodFlavour(const Runtime& rt, const Pod& pod) {
  const auto& h = rt.config().runtime_handlers;
  if (pod.runtime_handler == h.spt) return "spt";
  if (pod.runtime_handler == h.hvt) return "hvt";
  return "";
}

absl::StatusOr<std::optional<GuestImage>> ImageGuest(const image::ImageInfo& image) {
  GuestImage g;
  std::string name = ImageName(image);
  std::string crius_binary = Setting(image, "org.crius.unikernel.binary");
  std::string urunc_binary = Setting(image, "com.urunc.unikernel.binary");
  std::string crius_flavour = Setting(image, "org.crius.unikernel.flavour");
  std::string urunc_flavour = Setting(image, "com.urunc.unikernel.hypervisor");
  if (crius_binary.empty() && urunc_binary.empty() && crius_flavour.empty() && urunc_flavour.empty()) {
    return std::nullopt;
  }
  bool ours = !crius_binary.empty() || !crius_flavour.empty();
  const char* prefix = ours ? "org.crius.unikernel." : "com.urunc.unikernel.";
  g.binary = ours ? crius_binary : urunc_binary;
  g.flavour = ours ? crius_flavour : urunc_flavour;
  if (g.binary.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("image ", name, " names a unikernel but not its guest binary (",
                                                   prefix, "binary)"));
  }
  if (!CleanAbsolute(g.binary)) {
    return absl::InvalidArgumentError(absl::StrCat("image ", name, ": ", prefix, "binary \"", g.binary,
                                                   "\" is not a clean absolute path"));
  }
  if (g.flavour != "spt" && g.flavour != "hvt") {
    return absl::InvalidArgumentError(absl::StrCat("image ", name, ": ", prefix,
                                                   ours ? "flavour" : "hypervisor", " \"", g.flavour,
                                                   "\" is not a solo5 tender crius runs (spt or hvt)"));
  }
  g.cmdline = Setting(image, absl::StrCat(prefix, "cmdline"));
  if (ours) {
    g.net_args = Setting(image, "org.crius.unikernel.net-args");
    if (g.net_args.empty()) g.net_args = "crius";
    for (absl::string_view item : absl::StrSplit(Setting(image, "org.crius.unikernel.block"), ',', absl::SkipEmpty())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
      if (kv.first.empty() || kv.second.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("image ", name, ": org.crius.unikernel.block \"", item,
                                                       "\" is not NAME=PATH"));
      }
      g.blocks.push_back(kv);
    }
  } else {
    std::string type = Setting(image, "com.urunc.unikernel.unikernelType");
    g.net_args = type == "rumprun" || type == "mirage" || type == "unikraft" ? type : "none";
    g.net_device = Setting(image, "com.urunc.unikernel.solo5NetDev");
    std::string block = Setting(image, "com.urunc.unikernel.block");
    // The device's name: urunc's solo5BlkDev, else the guest's only one.
    if (!block.empty()) g.blocks.push_back({Setting(image, "com.urunc.unikernel.solo5BlkDev"), block});
  }
  for (const auto& [dev, path] : g.blocks) {
    if (!CleanAbsolute(path)) {
      return absl::InvalidArgumentError(absl::StrCat("image ", name, ": block image \"", path,
                                                     "\" is not a clean absolute path in the image"));
    }
  }
  return g;
}

absl::Status GuestNetArgs(const std::string& form, const GuestNetwork& net, const std::string& device,
                        std::vector<std::string>* args) {
  if (net.cidr.empty() || form == "none") return absl::OkStatus();
  std::string ip = net.cidr.substr(0, net.cidr.find('/'));
  std::string prefix = net.cidr.substr(net.cidr.find('/') + 1);
  if (form == "crius") {
    args->push_back(absl::StrCat("ip=", net.cidr));
    if (!net.gateway.empty()) args->push_back(absl::StrCat("gw=", net.gateway));
  } else if (form == "mirage") {
    args->push_back(absl::StrCat("--ipv4=", net.cidr));
    if (!net.gateway.empty()) args->push_back(absl::StrCat("--ipv4-gateway=", net.gateway));
  } else if (form == "unikraft") {
    args->push_back(absl::StrCat("netdev.ip=", net.cidr, net.gateway.empty() ? "" : ":", net.gateway));
  } else if (form == "rumprun") {
    // rumprun reads one JSON document: the program's command line inside it.
    json cfg = {{"cmdline", absl::StrJoin(*args, " ")},
                {"net", {{"if", device.empty() ? "ukvmif0" : device}, {"cloner", "True"}, {"type", "inet"},
                         {"method", "static"}, {"addr", ip}, {"mask", prefix}}}};
    if (!net.gateway.empty()) cfg["net"]["gw"] = net.gateway;
    *args = {cfg.dump()};
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown network argument form \"", form,
                                                   "\" (crius, mirage, unikraft, rumprun or none)"));
  }
  return absl::OkStatus();
}

// Crash points: at its callers
absl::Status SaveGuestNetwork(const Pod& pod, const GuestNetwork& net) {
  json j = {{"tap", net.tap}, {"mac", net.mac}, {"mtu", net.mtu}, {"cidr", net.cidr}, {"gateway", net.gateway}};
  return WriteFileAtomic(absl::StrCat(pod.dir, "/guest-net.json"), j.dump(), 0600);
}

absl::StatusOr<GuestNetwork> LoadGuestNetwork(const Pod& pod) {
  std::string path = absl::StrCat(pod.dir, "/guest-net.json");
  CRIUS_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  json j = json::parse(text, nullptr, false);
  GuestNetwork net;
  try {
    net.tap = j.at("tap").get<std::string>();
    net.mac = j.at("mac").get<std::string>();
    net.mtu = j.at("mtu").get<int>();
    net.cidr = j.at("cidr").get<std::string>();
    net.gateway = j.at("gateway").get<std::string>();
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat(path, ": ", e.what()));
  }
  return net;
}

// Crash points: at its callers
absl::Status ConnectPodGuestNetwork(const Pod& pod, const network::PodNetworkStatus& attached) {
  auto ns = pod.namespaces.find("net");
  if (ns == pod.namespaces.end()) return absl::FailedPreconditionError("the pod has no network namespace");
  CRIUS_ASSIGN_OR_RETURN(network::GuestLink link,
                         network::ConnectGuestLink(ns->second, attached.ifname.empty() ? "eth0" : attached.ifname, kTap));
  CRIUS_FAILPOINT("sandbox_run.after_tap");
  GuestNetwork net;
  net.tap = link.tap;
  net.mac = link.mac;
  net.mtu = link.mtu;
  for (const network::SandboxAddress& a : attached.addresses) {
    if (a.ip.find(':') != std::string::npos) continue;  // the guests here speak IPv4
    net.cidr = a.cidr.find('/') == std::string::npos ? a.cidr + "/32" : a.cidr;
    net.gateway = a.gateway;
    break;
  }
  return Annotate(SaveGuestNetwork(pod, net), "record the guest's network");
}

absl::Status TenderSpec(const Runtime& rt, const Pod& pod, const v1::ContainerConfig& config,
                        const image::ImageInfo& image, const std::vector<std::string>& layer_dirs,
                        crius::monitor::ContainerSpec* spec) {
  const std::string flavour = PodFlavour(rt, pod);
  const std::string name = ImageName(image);
  if (config.tty()) return InvalidField("config.tty", "a unikernel guest has no terminal");
  if (config.stdin()) return InvalidField("config.stdin", "a unikernel guest's console takes no input");
  CRIUS_ASSIGN_OR_RETURN(std::optional<GuestImage> guest, ImageGuest(image));
  if (!guest) {
    return InvalidField("config.image.image",
                        absl::StrCat("image ", name, " carries no unikernel guest (no org.crius.unikernel.binary or ",
                                     "com.urunc.unikernel.binary annotation or label), and pod ", pod.id,
                                     " runs guests (runtime handler \"", pod.runtime_handler, "\")"));
  }
  if (guest->flavour != flavour) {
    return InvalidField("config.image.image",
                        absl::StrCat("image ", name, " is a ", guest->flavour, " guest, but pod ", pod.id,
                                     "'s runtime handler \"", pod.runtime_handler, "\" runs ", flavour, " guests"));
  }
  absl::StatusOr<std::string> file = ReadFromLayers(layer_dirs, guest->binary, "guest binary");
  if (!file.ok()) {
    return absl::Status(absl::IsNotFound(file.status()) ? absl::StatusCode::kInvalidArgument : file.status().code(),
                        absl::StrCat("config.image.image: image ", name, ": ", file.status().message()));
  }
  struct elf_image img;
  struct terr e = {};
  auto bad = [&](const std::string& what) {
    return InvalidField("config.image.image", absl::StrCat("image ", name, ": guest \"", guest->binary, "\": ", what));
  };
  if (elf_parse(reinterpret_cast<const uint8_t*>(file->data()), file->size(), HVT_GUEST_MIN_BASE, &img, &e) != 0) {
    return bad(e.msg);
  }
  uint32_t target = flavour == "hvt" ? HVT_ABI_TARGET : SPT_ABI_TARGET;
  if (img.abi.abi_target != target) {
    return bad(absl::StrCat("its ABI note says it is built for ", FlavourOfTarget(img.abi.abi_target), ", not ", flavour,
                            " (pod handler \"", pod.runtime_handler, "\")"));
  }
  if (elf_check_abi(&img, target, flavour == "hvt" ? HVT_ABI_VERSION : SPT_ABI_VERSION, &e) != 0) return bad(e.msg);
  if (img.mft == nullptr || mft_validate(img.mft, img.mft_size, &e) != 0) {
    return bad(img.mft == nullptr ? std::string("it has no Solo5 manifest") : std::string(e.msg));
  }

  const int64_t reserve = rt.config().unikernel.tender_reserve_mib;
  int64_t limit = config.linux().resources().memory_limit_in_bytes();
  const GuestMemory mem = SizeGuestMemory(flavour, limit, rt.config().unikernel.default_memory_mib, reserve);
  const int64_t mem_mib = mem.mib;
  int64_t need_mib = static_cast<int64_t>((img.end + (2 << 20) - 1) >> 20) + 2;
  if (mem_mib < need_mib || elf_check_fits(&img, static_cast<uint64_t>(mem_mib) << 20, &e) != 0) {
    std::string field = limit > 0 ? "config.linux.resources.memory_limit_in_bytes" : "config.image.image";
    return InvalidField(field, absl::StrCat(limit > 0 ? absl::StrCat(limit >> 20, " MiB less the tender's reserve of ",
                                                                      reserve, " MiB and ", mem.tables_mib,
                                                                      " MiB of page tables leaves")
                                                      : "the default guest memory is",
                                            " ", std::max<int64_t>(mem_mib, 0), " MiB",
                                            mem.capped ? " (crius-hvt's most)" : "", ", and guest \"",
                                            guest->binary, "\" needs at least ", need_mib, " MiB"));
  }

  if (flavour == "hvt") {
    // The container's device policy lets its tender open /dev/kvm (taps'
    // /dev/net/tun is in every container's).
    struct stat kvm;
    if (::stat("/dev/kvm", &kvm) != 0 || !S_ISCHR(kvm.st_mode)) {
      return absl::FailedPreconditionError("this node has no /dev/kvm for crius-hvt");
    }
    crius::monitor::Device* d = spec->add_devices();
    d->set_path("/dev/kvm");
    d->set_dev_major(major(kvm.st_rdev));
    d->set_dev_minor(minor(kvm.st_rdev));
    d->set_permissions("rw");
    d->set_host_path("/dev/kvm");
  }
  crius::monitor::Tender* t = spec->mutable_tender();
  t->set_binary(rt.tender_binary(flavour));
  t->set_flavour(flavour);
  t->set_guest(guest->binary);
  t->add_options(absl::StrCat("--mem=", mem_mib));

  std::optional<GuestNetwork> net;
  std::string net_device;
  std::vector<std::pair<std::string, std::string>> blocks = guest->blocks;
  for (uint32_t i = 1; i < img.mft->entries; ++i) {
    const struct mft_entry& d = img.mft->e[i];
    if (d.type == MFT_DEV_NET_BASIC) {
      if (!net_device.empty()) {
        return bad(absl::StrCat("it declares net devices \"", net_device, "\" and \"", d.name,
                                "\"; a pod has one network interface"));
      }
      net_device = d.name;
      CRIUS_ASSIGN_OR_RETURN(GuestNetwork n, LoadGuestNetwork(pod));
      net = n;
      t->add_options(absl::StrCat("--net:", d.name, "=", n.tap));
      t->add_options(absl::StrCat("--net-mac:", d.name, "=", n.mac));
    } else if (d.type == MFT_DEV_BLOCK_BASIC) {
      auto it = std::find_if(blocks.begin(), blocks.end(), [&](const auto& b) { return b.first == d.name; });
      if (it == blocks.end()) {
        // urunc's one block image without a device name is the guest's one block device.
        it = std::find_if(blocks.begin(), blocks.end(), [](const auto& b) { return b.first.empty(); });
        if (it != blocks.end()) it->first = d.name;
      }
      if (it == blocks.end()) {
        return bad(absl::StrCat("it declares block device \"", d.name, "\", and the image names no file for it (",
                                "org.crius.unikernel.block: ", d.name, "=/PATH)"));
      }
      crius::monitor::Tender::Block* b = t->add_blocks();
      b->set_name(d.name);
      b->set_path(it->second);
      blocks.erase(it);
    }
  }
  if (!blocks.empty()) {
    return bad(absl::StrCat("the image names block image \"", blocks.front().second, "\" for device \"",
                            blocks.front().first, "\", which the guest does not declare"));
  }
  if (!guest->net_device.empty() && guest->net_device != net_device) {
    return bad(absl::StrCat("the image names net device \"", guest->net_device, "\", which the guest does not declare"));
  }

  // Kubernetes' rule: command and args replace the image's command line.
  std::vector<std::string> args;
  if (config.command_size() > 0 || config.args_size() > 0) {
    args.assign(config.command().begin(), config.command().end());
    args.insert(args.end(), config.args().begin(), config.args().end());
  } else {
    args = Words(guest->cmdline);
  }
  if (net) {
    CRIUS_RETURN_IF_ERROR(Annotate(GuestNetArgs(guest->net_args, *net, net_device, &args),
                                   absl::StrCat("image ", name)));
  }
  for (const std::string& a : args) t->add_guest_args(a);
  return absl::OkStatus();
}

absl::Status CheckOneGuestAtATime(Runtime& rt, const Pod& pod) {
  for (const std::shared_ptr<Container>& c : rt.containers().OfPod(pod.id)) {
    if (c->state == kContainerCreated || c->state == kContainerRunning || c->state == kContainerCreating) {
      return absl::FailedPreconditionError(absl::StrCat(
          "pod ", pod.id, " runs one unikernel guest at a time (one tender, one tap, one pod IP): container ",
          c->config.metadata().name(), " (", c->id, ") is ", c->state,
          "; init containers run one after another, and a second guest needs a pod of its own"));
    }
  }
  return absl::OkStatus();
}

absl::Status RefuseIntoGuest(const Runtime& rt, const Pod& pod, const std::string& what) {
  std::string flavour = PodFlavour(rt, pod);
  if (flavour.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      what, ": pod ", pod.id, " runs unikernel guests under crius-", flavour, " (runtime handler \"",
      pod.runtime_handler, "\"): a guest has no processes to enter; reach it over its pod IP"));
}

}  // namespace crius::cri
