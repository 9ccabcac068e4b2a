// One pull's watch over its registry transfers. Every byte a registry sends,
// and every transfer begun, is progress. Transfers stop at their next
// callback (libcurl calls at least once a second) when every caller of the
// pull gave up, or when the pull as a whole received nothing for the
// progress timeout (registry.pull_progress_timeout, as containerd's
// image_pull_progress_timeout).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace crius::image {

class PullProgress {
 public:
  // A zero timeout never stalls.
  explicit PullProgress(absl::Duration stall_timeout);

  // A transfer began, or bytes arrived.
  void Progressed();
  // Nobody waits for the pull any more: its transfers stop with
  // CancelledError(why).
  void Abandon(std::string why);

  // CancelledError once abandoned.
  absl::Status Abandoned() const;
  // UnavailableError when nothing arrived for the timeout.
  absl::Status Stalled() const;

 private:
  const absl::Duration stall_timeout_;
  std::atomic<int64_t> last_ns_;  // CLOCK_MONOTONIC of the last progress
  std::atomic<bool> abandoned_{false};
  mutable std::mutex mu_;
  std::string why_;
};

// What a caller of a pull brings: when it stops waiting for it.
struct PullCaller {
  absl::Time deadline = absl::InfiniteFuture();
  // True once the caller went away (a gRPC client that cancelled); may be empty.
  std::function<bool()> cancelled;

  bool Cancelled() const { return cancelled && cancelled(); }
};

}  // namespace crius::image
