#include "common/failpoint.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace crius {
namespace {

// Runs `hits` hits of point "p" in a child armed with `env`; returns how the
// child ended: the killing signal, or 0 for a normal exit.
int RunChild(const char* env, int hits) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("CRIUS_FAILPOINTS", env, 1);
    failpoint::InitFromEnvironment();
    for (int i = 0; i < hits; ++i) CRIUS_FAILPOINT("p");
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

TEST(FailpointTest, ArmedPointKillsWithSigkill) { EXPECT_EQ(RunChild("p", 1), SIGKILL); }

TEST(FailpointTest, OtherPointsDoNothing) { EXPECT_EQ(RunChild("q,r", 5), 0); }

TEST(FailpointTest, HitCountDelaysTheKill) {
  EXPECT_EQ(RunChild("p:3", 2), 0);
  EXPECT_EQ(RunChild("p:3", 3), SIGKILL);
}

TEST(FailpointTest, UnarmedByDefault) {
  unsetenv("CRIUS_FAILPOINTS");
  failpoint::InitFromEnvironment();
  EXPECT_FALSE(failpoint::Armed());
  CRIUS_FAILPOINT("p");  // survives
}

}  // namespace
}  // namespace crius
