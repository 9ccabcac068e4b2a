// ConnectGuestLink in a real network namespace: one of a child process's
// own, so nothing is named on the node and everything goes with the child.
#include "network/guest_link.h"

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

namespace crius::network {
namespace {

std::string Run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) out.append(buf.data(), n);
  ::pclose(p);
  return out;
}

// A child in a netns of its own holding `setup`'s links until destroyed.
class Netns {
 public:
  explicit Netns(const std::string& setup) {
    int ready[2], hold[2];
    if (::pipe(ready) != 0 || ::pipe(hold) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(ready[0]);
      ::close(hold[1]);
      if (::unshare(CLONE_NEWNET) != 0 || std::system(setup.c_str()) != 0) ::_exit(1);
      if (::write(ready[1], "r", 1) != 1) ::_exit(1);
      char c;
      (void)::read(hold[0], &c, 1);
      ::_exit(0);
    }
    ::close(ready[1]);
    ::close(hold[0]);
    hold_ = hold[1];
    char c;
    ok_ = ::read(ready[0], &c, 1) == 1;
    ::close(ready[0]);
  }
  ~Netns() {
    if (hold_ >= 0) ::close(hold_);
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
  }
  bool ok() const { return ok_; }
  std::string path() const { return "/proc/" + std::to_string(pid_) + "/ns/net"; }
  std::string In(const std::string& cmd) const { return Run("nsenter --net=" + path() + " " + cmd + " 2>&1"); }

 private:
  pid_t pid_ = -1;
  int hold_ = -1;
  bool ok_ = false;
};

TEST(GuestLink, JoinsTheTapAndEthBothWays) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  Netns ns("ip link add eth0 mtu 1400 type veth peer name peer0 && ip link set eth0 up");
  ASSERT_TRUE(ns.ok());
  absl::StatusOr<GuestLink> link = ConnectGuestLink(ns.path(), "eth0", "tap0");
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_EQ(link->tap, "tap0");
  EXPECT_EQ(link->mtu, 1400);
  std::string eth = ns.In("ip -o link show eth0");
  EXPECT_NE(eth.find(link->mac), std::string::npos) << eth << " vs " << link->mac;
  std::string tap = ns.In("ip -d -o link show tap0");
  EXPECT_NE(tap.find("mtu 1400"), std::string::npos) << tap;
  EXPECT_NE(tap.find(",UP>"), std::string::npos) << tap;
  EXPECT_NE(tap.find("tun type tap"), std::string::npos) << tap;
  EXPECT_NE(tap.find("persist on"), std::string::npos) << tap;
  EXPECT_NE(tap.find("user root"), std::string::npos) << tap;
  std::string to_tap = ns.In("tc filter show dev eth0 ingress");
  EXPECT_NE(to_tap.find("Egress Redirect to device tap0"), std::string::npos) << to_tap;
  std::string to_eth = ns.In("tc filter show dev tap0 ingress");
  EXPECT_NE(to_eth.find("Egress Redirect to device eth0"), std::string::npos) << to_eth;
}

TEST(GuestLink, WithoutEthNothingIsMade) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  Netns ns("true");
  ASSERT_TRUE(ns.ok());
  absl::StatusOr<GuestLink> link = ConnectGuestLink(ns.path(), "eth0", "tap0");
  ASSERT_FALSE(link.ok());
  EXPECT_NE(link.status().message().find("no eth0"), std::string::npos) << link.status();
  EXPECT_EQ(ns.In("ip -o link show tap0").find("tap0:"), std::string::npos);
}

TEST(GuestLink, AnExistingTapIsNotTakenOver) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  Netns ns("ip link add eth0 type veth peer name peer0 && ip tuntap add tap0 mode tap");
  ASSERT_TRUE(ns.ok());
  absl::StatusOr<GuestLink> link = ConnectGuestLink(ns.path(), "eth0", "tap0");
  ASSERT_FALSE(link.ok());
  EXPECT_NE(link.status().message().find("create tap tap0"), std::string::npos) << link.status();
  EXPECT_EQ(ns.In("tc qdisc show dev eth0 ingress").find("ingress"), std::string::npos);
}

TEST(GuestLink, AMissingNetnsIsAnError) {
  absl::StatusOr<GuestLink> link = ConnectGuestLink("/nonexistent/netns", "eth0", "tap0");
  ASSERT_FALSE(link.ok());
  EXPECT_NE(link.status().message().find("/nonexistent/netns"), std::string::npos) << link.status();
}

}  // namespace
}  // namespace crius::network
