#include "common/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace crius {
namespace {

using ::testing::HasSubstr;

class SystemdNotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/crius-notify-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ::unsetenv("NOTIFY_SOCKET");
    InitSystemdNotify();  // forget the socket for later tests
    if (fd_ >= 0) ::close(fd_);
    std::filesystem::remove_all(dir_);
  }
  // A datagram socket at `path` ("@name": abstract), as systemd's.
  void Listen(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, path.size());
    if (path[0] == '@') a.sun_path[0] = '\0';
    ASSERT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a),
                     offsetof(sockaddr_un, sun_path) + path.size()), 0);
  }
  std::string Receive() {
    char buf[512];
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    return n < 0 ? "<nothing>" : std::string(buf, n);
  }
  std::string dir_;
  int fd_ = -1;
};

TEST_F(SystemdNotifyTest, SendsTheStateAndHidesTheSocketFromChildren) {
  std::string path = dir_ + "/notify";
  Listen(path);
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  InitSystemdNotify();
  EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr);
  ASSERT_TRUE(SystemdNotify("READY=1\nSTATUS=serving").ok());
  EXPECT_EQ(Receive(), "READY=1\nSTATUS=serving");
}

TEST_F(SystemdNotifyTest, ReachesAbstractSockets) {
  std::string name = "@crius-notify-test-" + std::to_string(::getpid());
  Listen(name);
  ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
  InitSystemdNotify();
  ASSERT_TRUE(SystemdNotify("STOPPING=1").ok());
  EXPECT_EQ(Receive(), "STOPPING=1");
}

TEST_F(SystemdNotifyTest, IsANoOpWithoutNotifySocket) {
  ::unsetenv("NOTIFY_SOCKET");
  InitSystemdNotify();
  EXPECT_TRUE(SystemdNotify("READY=1").ok());
}

TEST_F(SystemdNotifyTest, AMissingSocketIsAnErrorNamingIt) {
  std::string path = dir_ + "/nobody-listens";
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  InitSystemdNotify();
  absl::Status st = SystemdNotify("READY=1");
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr(path));
}

}  // namespace
}  // namespace crius
