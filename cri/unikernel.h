// Unikernel pods (RuntimeClass handlers crius-spt and crius-hvt): what an
// image says about its guest, the pod's guest network, and the tender spec
// a container of such a pod runs as.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "api.pb.h"
#include "cri/runtime.h"
#include "image/image_store.h"
#include "network/pod_network.h"
#include "monitor.pb.h"

namespace crius::cri {

namespace v1 = ::runtime::v1;

// The tender flavour a pod's handler names: "spt", "hvt", or "" for a
// namespace sandbox.
std::string PodFlavour(const Runtime& rt, const Pod& pod);

// The guest an image carries, from its manifest annotations or config
// labels (annotations win): crius's own keys (org.crius.unikernel.*) or
// urunc's (com.urunc.unikernel.*).
struct GuestImage {
  std::string flavour;  // "spt" or "hvt"
  std::string binary;   // the guest ELF, a path in the image
  std::string cmdline;  // the guest's default command line
  std::vector<std::pair<std::string, std::string>> blocks;  // device name -> path in the image
  // How the guest is told its address: "crius" (ip=A/P gw=G), "mirage"
  // (--ipv4=A/P --ipv4-gateway=G), "unikraft" (netdev.ip=A/P:G), "rumprun"
  // (its JSON configuration), "none".
  std::string net_args;
  std::string net_device;    // urunc's solo5NetDev: the manifest's net device
};

// nullopt: the image names no guest. An error: it names one, badly.
absl::StatusOr<std::optional<GuestImage>> ImageGuest(const image::ImageInfo& image);

// The pod's eth0 as its guest takes it, recorded in the pod directory at
// RunPodSandbox (guest-net.json).
struct GuestNetwork {
  std::string tap, mac;
  int mtu = 0;
  std::string cidr;     // "10.88.0.5/16", empty without IPv4
  std::string gateway;  // empty without one
};

// Appends to the guest's command line `args` what tells it its address, in
// the form its unikernel reads (GuestImage::net_args); rumprun's replaces
// the line with its JSON configuration, the line inside. `device` is the
// guest's net device.
absl::Status GuestNetArgs(const std::string& form, const GuestNetwork& net, const std::string& device,
                          std::vector<std::string>* args);

absl::Status SaveGuestNetwork(const Pod& pod, const GuestNetwork& net);
absl::StatusOr<GuestNetwork> LoadGuestNetwork(const Pod& pod);

// Connects a tap to the pod's interface and records it with the address
// CNI gave: RunPodSandbox of a unikernel pod, after CNI ADD.
absl::Status ConnectPodGuestNetwork(const Pod& pod, const network::PodNetworkStatus& attached);

// The most guest memory crius-hvt takes, as solo5-hvt: 2048 pages of 2 MiB.
inline constexpr int64_t kHvtMaxMemMib = 4096;

// Guest memory of a unikernel container: its memory limit (bytes; 0: none,
// then default_mib) less the tender's reserve and less the page tables that
// map the guest (the tender's own, and for hvt KVM's: up to 1/256 of guest
// memory, measured), in whole 2 MiB (hvt maps guest memory in 2 MiB pages),
// at most kHvtMaxMemMib under hvt. A guest that touches all of it is then
// still inside the limit.
struct GuestMemory {
  int64_t mib = 0;         // the tender's --mem; below 0 when the limit is too small
  int64_t tables_mib = 0;  // set aside from the limit for page tables
  bool capped = false;     // cut to the tender's most
};
GuestMemory SizeGuestMemory(const std::string& flavour, int64_t limit_bytes, int64_t default_mib,
                            int64_t reserve_mib);

// Fills spec->tender for a container of a unikernel pod: finds and checks
// the guest ELF in the image (flavour, ABI, manifest, size), sizes guest
// memory from the container's limit, and builds the tender's options and
// the guest's command line. Errors name the field or the image.
absl::Status TenderSpec(const Runtime& rt, const Pod& pod, const v1::ContainerConfig& config,
                        const image::ImageInfo& image, const std::vector<std::string>& layer_dirs,
                        crius::monitor::ContainerSpec* spec);

// FailedPrecondition naming the rule when another guest container of the
// pod is being created, created or running (one tender, one tap per pod).
// Called under the pod's lock, so two creates cannot both pass.
absl::Status CheckOneGuestAtATime(Runtime& rt, const Pod& pod);

// FailedPrecondition for exec, attach and port-forward into a guest.
absl::Status RefuseIntoGuest(const Runtime& rt, const Pod& pod, const std::string& what);

}  // namespace crius::cri
