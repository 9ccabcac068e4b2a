#include "network/guest_link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <net/if.h>
#include <netinet/if_ether.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace crius::network {
namespace {

// One rtnetlink request, built attribute by attribute.
class Request {
 public:
  Request(uint16_t type, uint16_t flags) {
    buf_.resize(NLMSG_HDRLEN);
    Header()->nlmsg_type = type;
    Header()->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
  }
  template <typename T>
  void Body(const T& body) { Append(&body, sizeof body); }
  void Attr(uint16_t type, const void* data, size_t len) {
    struct nlattr a = {static_cast<uint16_t>(NLA_HDRLEN + len), type};
    Append(&a, sizeof a);
    Append(data, len);
  }
  void Attr(uint16_t type, const char* text) { Attr(type, text, strlen(text) + 1); }
  // Nested attributes: Begin returns where its header is, End sizes it.
  size_t Begin(uint16_t type) {
    size_t at = buf_.size();
    Attr(type, nullptr, 0);
    return at;
  }
  void End(size_t at) {
    auto* a = reinterpret_cast<struct nlattr*>(buf_.data() + at);
    a->nla_len = static_cast<uint16_t>(buf_.size() - at);
  }
  absl::Status Send(int sock, const std::string& what) {
    Header()->nlmsg_len = static_cast<uint32_t>(buf_.size());
    Header()->nlmsg_seq = ++seq_;
    if (::send(sock, buf_.data(), buf_.size(), 0) < 0) return ErrnoError(errno, what);
    char reply[8192];
    for (;;) {
      ssize_t n = ::recv(sock, reply, sizeof reply, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError(errno, what);
      for (auto* h = reinterpret_cast<struct nlmsghdr*>(reply); NLMSG_OK(h, static_cast<unsigned>(n));
           h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type != NLMSG_ERROR) continue;
        int err = -reinterpret_cast<struct nlmsgerr*>(NLMSG_DATA(h))->error;
        return err == 0 ? absl::OkStatus() : ErrnoError(err, what);
      }
    }
  }

 private:
  struct nlmsghdr* Header() { return reinterpret_cast<struct nlmsghdr*>(buf_.data()); }
  void Append(const void* data, size_t len) {
    const auto* p = static_cast<const char*>(data);
    if (len > 0) buf_.insert(buf_.end(), p, p + len);
    buf_.resize(NLMSG_ALIGN(buf_.size()));
  }
  std::vector<char> buf_;
  static inline uint32_t seq_ = 0;
};

// Adds (RTM_NEWQDISC) or removes (RTM_DELQDISC) the ingress qdisc of a link.
absl::Status IngressQdisc(int sock, uint16_t type, int ifindex, const std::string& what) {
  Request r(type, type == RTM_NEWQDISC ? NLM_F_CREATE | NLM_F_EXCL : 0);
  struct tcmsg tc = {};
  tc.tcm_family = AF_UNSPEC;
  tc.tcm_ifindex = ifindex;
  tc.tcm_handle = TC_H_MAKE(TC_H_INGRESS, 0);
  tc.tcm_parent = TC_H_INGRESS;
  r.Body(tc);
  r.Attr(TCA_KIND, "ingress");
  return r.Send(sock, what);
}

// u32 with one key that matches every packet (mask 0), and one action:
// mirred egress redirect to `to`, stealing the packet.
absl::Status AddRedirect(int sock, int from, int to, const std::string& what) {
  Request r(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL);
  struct tcmsg tc = {};
  tc.tcm_family = AF_UNSPEC;
  tc.tcm_ifindex = from;
  tc.tcm_parent = TC_H_MAKE(TC_H_INGRESS, 0);
  tc.tcm_info = TC_H_MAKE(1u << 16, htons(ETH_P_ALL));  // priority 1, every protocol
  r.Body(tc);
  r.Attr(TCA_KIND, "u32");
  size_t options = r.Begin(TCA_OPTIONS);
  // The selector and its one key, all zero: mask 0 matches anything.
  alignas(struct tc_u32_sel) char sel[sizeof(struct tc_u32_sel) + sizeof(struct tc_u32_key)] = {};
  auto* head = reinterpret_cast<struct tc_u32_sel*>(sel);
  head->flags = TC_U32_TERMINAL;
  head->nkeys = 1;
  r.Attr(TCA_U32_SEL, sel, sizeof sel);
  size_t actions = r.Begin(TCA_U32_ACT);
  size_t first = r.Begin(1);
  r.Attr(TCA_ACT_KIND, "mirred");
  size_t act_options = r.Begin(TCA_ACT_OPTIONS);
  struct tc_mirred mirred = {};
  mirred.action = TC_ACT_STOLEN;
  mirred.eaction = TCA_EGRESS_REDIR;
  mirred.ifindex = static_cast<uint32_t>(to);
  r.Attr(TCA_MIRRED_PARMS, &mirred, sizeof mirred);
  r.End(act_options);
  r.End(first);
  r.End(actions);
  r.End(options);
  return r.Send(sock, what);
}

absl::Status DeleteLink(int sock, int ifindex) {
  Request r(RTM_DELLINK, 0);
  struct ifinfomsg info = {};
  info.ifi_family = AF_UNSPEC;
  info.ifi_index = ifindex;
  r.Body(info);
  return r.Send(sock, "delete the tap");
}

// Everything below runs on a thread of its own inside the pod's netns.
absl::StatusOr<GuestLink> Connect(const std::string& eth, const std::string& tap) {
  if (tap.empty() || tap.size() >= IFNAMSIZ || eth.size() >= IFNAMSIZ) {
    return absl::InvalidArgumentError(absl::StrCat("interface name \"", tap, "\" or \"", eth, "\" is not valid"));
  }
  UniqueFd ioc(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!ioc) return ErrnoError(errno, "socket");
  struct ifreq ifr = {};
  std::strncpy(ifr.ifr_name, eth.c_str(), IFNAMSIZ - 1);
  if (::ioctl(ioc.get(), SIOCGIFINDEX, &ifr) != 0) {
    return ErrnoError(errno, absl::StrCat("the pod has no ", eth, " (its CNI network made none)"));
  }
  int eth_index = ifr.ifr_ifindex;
  if (::ioctl(ioc.get(), SIOCGIFHWADDR, &ifr) != 0) return ErrnoError(errno, absl::StrCat("MAC of ", eth));
  GuestLink link;
  link.tap = tap;
  const auto* mac = reinterpret_cast<const unsigned char*>(ifr.ifr_hwaddr.sa_data);
  link.mac = absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  if (::ioctl(ioc.get(), SIOCGIFMTU, &ifr) != 0) return ErrnoError(errno, absl::StrCat("MTU of ", eth));
  link.mtu = ifr.ifr_mtu;

  UniqueFd tun(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!tun) return ErrnoError(errno, "open /dev/net/tun");
  struct ifreq req = {};
  std::strncpy(req.ifr_name, tap.c_str(), IFNAMSIZ - 1);
  req.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL;
  if (::ioctl(tun.get(), TUNSETIFF, &req) != 0) return ErrnoError(errno, absl::StrCat("create tap ", tap));
  if (::ioctl(tun.get(), TUNSETOWNER, 0) != 0 || ::ioctl(tun.get(), TUNSETPERSIST, 1) != 0) {
    return ErrnoError(errno, absl::StrCat("make tap ", tap, " persistent"));
  }
  tun.reset();
  UniqueFd nl(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!nl) return ErrnoError(errno, "netlink socket");
  struct ifreq t = {};
  std::strncpy(t.ifr_name, tap.c_str(), IFNAMSIZ - 1);
  if (::ioctl(ioc.get(), SIOCGIFINDEX, &t) != 0) return ErrnoError(errno, absl::StrCat("index of ", tap));
  int tap_index = t.ifr_ifindex;
  absl::Status st = [&]() -> absl::Status {
    t.ifr_mtu = link.mtu;
    if (::ioctl(ioc.get(), SIOCSIFMTU, &t) != 0) return ErrnoError(errno, absl::StrCat("set the MTU of ", tap));
    if (::ioctl(ioc.get(), SIOCGIFFLAGS, &t) != 0) return ErrnoError(errno, absl::StrCat("flags of ", tap));
    t.ifr_flags = static_cast<short>(t.ifr_flags | IFF_UP);
    if (::ioctl(ioc.get(), SIOCSIFFLAGS, &t) != 0) return ErrnoError(errno, absl::StrCat("bring ", tap, " up"));
    CRIUS_RETURN_IF_ERROR(IngressQdisc(nl.get(), RTM_NEWQDISC, eth_index, absl::StrCat("add an ingress qdisc to ", eth)));
    CRIUS_RETURN_IF_ERROR(IngressQdisc(nl.get(), RTM_NEWQDISC, tap_index, absl::StrCat("add an ingress qdisc to ", tap)));
    CRIUS_RETURN_IF_ERROR(AddRedirect(nl.get(), eth_index, tap_index,
                                      absl::StrCat("redirect ", eth, " to ", tap)));
    return AddRedirect(nl.get(), tap_index, eth_index, absl::StrCat("redirect ", tap, " to ", eth));
  }();
  if (!st.ok()) {
    (void)DeleteLink(nl.get(), tap_index);
    // eth's qdisc goes with the redirect it was made for.
    (void)IngressQdisc(nl.get(), RTM_DELQDISC, eth_index, "remove the ingress qdisc");
    return st;
  }
  return link;
}

}  // namespace

absl::StatusOr<GuestLink> ConnectGuestLink(const std::string& netns, const std::string& eth,
                                           const std::string& tap) {
  UniqueFd ns(::open(netns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) return ErrnoError(errno, absl::StrCat("open the pod's netns ", netns));
  absl::StatusOr<GuestLink> out = absl::InternalError("not run");
  // A thread of its own: setns changes only the calling thread's network
  // namespace, and this one ends with it.
  std::thread([&] {
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      out = ErrnoError(errno, absl::StrCat("enter the pod's netns ", netns));
      return;
    }
    out = Connect(eth, tap);
  }).join();
  if (!out.ok()) return Annotate(out.status(), absl::StrCat("connect ", tap, " to ", eth));
  return out;
}

}  // namespace crius::network
