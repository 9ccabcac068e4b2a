#include "image/pull_progress.h"

#include "absl/strings/str_cat.h"
#include "common/clock.h"

namespace crius::image {

PullProgress::PullProgress(absl::Duration stall_timeout)
    : stall_timeout_(stall_timeout), last_ns_(MonotonicNs()) {}

void PullProgress::Progressed() { last_ns_.store(MonotonicNs(), std::memory_order_relaxed); }

void PullProgress::Abandon(std::string why) {
  std::lock_guard<std::mutex> lock(mu_);
  why_ = std::move(why);
  abandoned_.store(true);
}

absl::Status PullProgress::Abandoned() const {
  if (!abandoned_.load()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  return absl::CancelledError(why_);
}

absl::Status PullProgress::Stalled() const {
  if (stall_timeout_ <= absl::ZeroDuration()) return absl::OkStatus();
  absl::Duration quiet = absl::Nanoseconds(MonotonicNs() - last_ns_.load(std::memory_order_relaxed));
  if (quiet < stall_timeout_) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(
      "the registry sent no bytes for ", absl::FormatDuration(stall_timeout_),
      " (registry.pull_progress_timeout): the pull was cancelled"));
}

}  // namespace crius::image
