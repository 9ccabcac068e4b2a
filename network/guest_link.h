// The network of a unikernel pod: CNI gives the pod its eth0 as for any
// pod; the tender gets a tap beside it, and tc joins the two (everything
// that arrives on one leaves by the other), so the guest, speaking with
// eth0's MAC, is the pod IP.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace crius::network {

struct GuestLink {
  std::string tap;  // the tap the tender attaches to
  std::string mac;  // eth0's, "xx:xx:xx:xx:xx:xx": the guest's own
  int mtu = 0;      // eth0's, given to the tap too
};

// In the network namespace pinned at `netns`: makes `tap` (persistent,
// owned by root, so the tender attaches without CAP_NET_ADMIN), up, with
// `eth`'s MTU, and redirects each one's ingress to the other's egress
// (an ingress qdisc and a u32 match-all filter with a mirred action on
// each). The namespace's own stack no longer sees eth's traffic. Nothing is
// left in the namespace on error.
absl::StatusOr<GuestLink> ConnectGuestLink(const std::string& netns, const std::string& eth,
                                           const std::string& tap);

}  // namespace crius::network
