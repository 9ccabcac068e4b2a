// The net guest on a real tap, under both tenders. The test process moves
// itself into a network namespace of its own first, so taps, addresses and
// traffic never touch the host's interfaces; the namespace goes away with
// the process, and each test deletes its tap anyway.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/ip_icmp.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "tests/integration/tenders/guest_files.h"
#include "tests/integration/tenders/tender_run.h"

namespace crius::unikernel::testing {
namespace {

constexpr char kHostIp[] = "10.0.0.1";
constexpr char kGuestIp[] = "10.0.0.2";

bool Sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

// A tap device with the host end addressed kHostIp/24, deleted on scope exit.
class Tap {
 public:
  explicit Tap(const std::string& name) : name_(name) {
    ok_ = Sh("ip tuntap add " + name + " mode tap") &&
          Sh("ip addr add " + std::string(kHostIp) + "/24 dev " + name) &&
          Sh("ip link set " + name + " up");
  }
  ~Tap() { Sh("ip link del " + name_ + " 2>/dev/null"); }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

void SetTimeout(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

sockaddr_in Addr(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

uint16_t Checksum(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += (p[i] << 8) | p[i + 1];
  if (n & 1) s += p[n - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

// Sends one ICMP echo request and waits for the matching reply.
bool Ping(uint16_t seq) {
  UniqueFd fd(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
  if (fd.get() < 0) return false;
  SetTimeout(fd.get(), 2000);
  uint8_t req[64] = {ICMP_ECHO, 0, 0, 0, 0x12, 0x34, static_cast<uint8_t>(seq >> 8),
                     static_cast<uint8_t>(seq)};
  std::memcpy(req + 8, "crius-ping-payload", 18);
  uint16_t sum = Checksum(req, sizeof req);
  req[2] = static_cast<uint8_t>(sum >> 8);
  req[3] = static_cast<uint8_t>(sum);
  sockaddr_in to = Addr(kGuestIp, 0);
  if (sendto(fd.get(), req, sizeof req, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0)
    return false;
  for (int tries = 0; tries < 10; tries++) {
    uint8_t buf[256];
    ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0) return false;
    size_t hl = (buf[0] & 15) * 4;
    if (n >= static_cast<ssize_t>(hl + sizeof req) && buf[hl] == ICMP_ECHOREPLY &&
        buf[hl + 6] == req[6] && buf[hl + 7] == req[7] &&
        std::memcmp(buf + hl + 8, req + 8, sizeof req - 8) == 0)
      return true;
  }
  return false;
}

std::string UdpAsk(const std::string& query) {
  UniqueFd fd(socket(AF_INET, SOCK_DGRAM, 0));
  SetTimeout(fd.get(), 2000);
  sockaddr_in to = Addr(kGuestIp, 7000);
  sendto(fd.get(), query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  char buf[256];
  ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
  return n < 0 ? "<no answer>" : std::string(buf, n);
}

std::string HttpGet() {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM, 0));
  SetTimeout(fd.get(), 3000);
  sockaddr_in to = Addr(kGuestIp, 80);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) return "<no connect>";
  const char req[] = "GET / HTTP/1.0\r\nHost: guest\r\n\r\n";
  if (send(fd.get(), req, sizeof req - 1, 0) < 0) return "<send failed>";
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = recv(fd.get(), buf, sizeof buf, 0)) > 0) out.append(buf, n);
  return out;
}

class Net : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "network namespace: " << strerror(errno);
    ASSERT_TRUE(Sh("ip link set lo up"));
  }
  std::string flavour() const { return GetParam(); }
  std::vector<std::string> Command(const std::string& tap) const {
    return {TenderPath(flavour()), "--mem=32", "--net:service0=" + tap,
            GuestPath("net", flavour()), std::string("ip=") + kGuestIp};
  }
};

TEST_P(Net, AnswersPingUdpAndHttpOnItsOwnAddress) {
  Tap tap("crtap" + flavour());
  ASSERT_TRUE(tap.ok());
  TenderProcess p(Command(tap.name()));
  ASSERT_TRUE(p.WaitForOutput("net: serving on 10.0.0.2", 5000));
  EXPECT_TRUE(Ping(1));
  EXPECT_TRUE(Ping(2));
  EXPECT_EQ(UdpAsk("get color"), "missing\n");
  EXPECT_EQ(UdpAsk("put color blue"), "ok\n");
  EXPECT_EQ(UdpAsk("get color"), "blue\n");
  EXPECT_EQ(UdpAsk("frobnicate"), "error\n");
  EXPECT_EQ(HttpGet(),
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n");
  EXPECT_EQ(HttpGet().substr(0, 15), "HTTP/1.0 200 OK");
  p.Signal(SIGTERM);
  TenderResult r = p.Finish(5000);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("net: shutdown requested, exiting"), std::string::npos) << r.out;
}

TEST_P(Net, RefusesATapThatDoesNotExist) {
  TenderResult r = RunTender(Command("crnotap0"));
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("tap 'crnotap0': no such interface"), std::string::npos) << r.err;
  struct stat st;
  EXPECT_NE(stat("/sys/class/net/crnotap0", &st), 0) << "the tender created the tap";
}

INSTANTIATE_TEST_SUITE_P(Flavours, Net, ::testing::Values("hvt", "spt"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace crius::unikernel::testing
