// Runs a tender as a child process and collects what a monitor would see:
// stdout, stderr and the exit status as a shell reports it (128 + signal
// for a signalled process). The child is killed and reaped on every path.
#pragma once

#include <string>
#include <vector>

namespace crius::unikernel::testing {

struct TenderResult {
  int status = -1;  // 0-255 exit code, or 128 + signal
  std::string out;
  std::string err;
  bool timed_out = false;
};

class TenderProcess {
 public:
  // Starts argv[0] with argv; stdin is /dev/null.
  explicit TenderProcess(const std::vector<std::string>& argv);
  ~TenderProcess();  // SIGKILLs and reaps the child if still running
  TenderProcess(const TenderProcess&) = delete;
  TenderProcess& operator=(const TenderProcess&) = delete;

  int pid() const { return pid_; }
  // Reads output until stdout contains `text`; false on timeout or exit.
  bool WaitForOutput(const std::string& text, int timeout_ms);
  void Signal(int sig);
  // Waits for exit (killing the child after timeout_ms) and returns all output.
  TenderResult Finish(int timeout_ms);

 private:
  bool Pump(int timeout_ms);  // one poll round; false when both pipes closed
  int pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  TenderResult result_;
};

TenderResult RunTender(const std::vector<std::string>& argv, int timeout_ms = 10000);

}  // namespace crius::unikernel::testing
