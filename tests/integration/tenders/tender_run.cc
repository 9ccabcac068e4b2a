#include "tests/integration/tenders/tender_run.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace crius::unikernel::testing {
namespace {

long NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

TenderProcess::TenderProcess(const std::vector<std::string>& argv) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
    perror("pipe2");
    abort();
  }
  pid_ = fork();
  if (pid_ < 0) {
    perror("fork");
    abort();
  }
  if (pid_ == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  out_fd_ = out[0];
  err_fd_ = err[0];
}

TenderProcess::~TenderProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (out_fd_ >= 0) close(out_fd_);
  if (err_fd_ >= 0) close(err_fd_);
}

bool TenderProcess::Pump(int timeout_ms) {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  if (out_fd_ < 0 && err_fd_ < 0) return false;
  int n = poll(fds, 2, timeout_ms);
  if (n <= 0) return true;
  int* owners[2] = {&out_fd_, &err_fd_};
  std::string* sinks[2] = {&result_.out, &result_.err};
  for (int i = 0; i < 2; i++) {
    if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    char buf[4096];
    ssize_t r = read(fds[i].fd, buf, sizeof buf);
    if (r > 0) {
      sinks[i]->append(buf, r);
    } else if (r == 0 || errno != EINTR) {
      close(*owners[i]);
      *owners[i] = -1;
    }
  }
  return out_fd_ >= 0 || err_fd_ >= 0;
}

bool TenderProcess::WaitForOutput(const std::string& text, int timeout_ms) {
  long deadline = NowMs() + timeout_ms;
  while (result_.out.find(text) == std::string::npos) {
    long left = deadline - NowMs();
    if (left <= 0 || !Pump(static_cast<int>(left))) return result_.out.find(text) != std::string::npos;
  }
  return true;
}

void TenderProcess::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

TenderResult TenderProcess::Finish(int timeout_ms) {
  long deadline = NowMs() + timeout_ms;
  while (true) {
    long left = deadline - NowMs();
    if (left <= 0) {
      result_.timed_out = true;
      kill(pid_, SIGKILL);
      break;
    }
    if (!Pump(static_cast<int>(left))) break;
  }
  int ws = 0;
  waitpid(pid_, &ws, 0);
  pid_ = -1;
  while (Pump(0)) {
  }
  result_.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  return result_;
}

TenderResult RunTender(const std::vector<std::string>& argv, int timeout_ms) {
  TenderProcess p(argv);
  return p.Finish(timeout_ms);
}

}  // namespace crius::unikernel::testing
