// crius-monitor: see monitor.h.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "sandbox/monitor/exec.h"
#include "sandbox/monitor/monitor.h"

namespace {

// Tells criusd how set-up went, then closes the pipe.
void Report(int fd, const std::string& text) {
  if (fd < 0) return;
  ssize_t ignored = ::write(fd, text.data(), text.size());
  (void)ignored;
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "exec") return crius::monitor::ExecMain(argc, argv);
  absl::StatusOr<crius::monitor::Options> options = crius::monitor::ParseArgs(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "crius-monitor: %s\n", std::string(options.status().message()).c_str());
    return 2;
  }
  // Our log is the pod's monitor.log: stdout and stderr go there.
  std::string log = absl::StrCat(options->dir, "/monitor.log");
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  int ready = options->ready_fd;
  crius::monitor::Monitor monitor(*std::move(options));
  if (absl::Status st = monitor.Setup(); !st.ok()) {
    LOG_ERROR("set-up failed: %s", std::string(st.message()));
    Report(ready, absl::StrCat("error ", static_cast<int>(st.code()), " ", st.message(), "\n"));
    return 1;
  }
  Report(ready, absl::StrCat("ok ", ::getpid(), "\n"));
  return monitor.Run();
}
