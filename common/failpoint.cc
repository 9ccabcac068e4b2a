#include "common/failpoint.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/log.h"

namespace crius::failpoint {
namespace {

struct Point {
  int fire_on = 1;  // the hit that kills
  int hits = 0;
};

std::atomic<bool> g_armed{false};
std::mutex g_mu;
std::map<std::string, Point, std::less<>>* g_points = nullptr;

}  // namespace

void InitFromEnvironment() {
  const char* env = std::getenv("CRIUS_FAILPOINTS");
  if (env == nullptr || *env == '\0') return;
  auto* points = new std::map<std::string, Point, std::less<>>();
  for (absl::string_view item : absl::StrSplit(env, ',', absl::SkipWhitespace())) {
    Point p;
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(item, ':');
    if (!kv.second.empty() && (!absl::SimpleAtoi(kv.second, &p.fire_on) || p.fire_on < 1)) {
      LOG_ERROR("CRIUS_FAILPOINTS: bad hit count in '%s'; ignoring it", std::string(item));
      continue;
    }
    (*points)[std::string(kv.first)] = p;
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_points = points;
  g_armed.store(!points->empty());
  for (const auto& [name, p] : *points) LOG_WARN("failpoint armed: %s (hit %d)", name, p.fire_on);
}

bool Armed() { return g_armed.load(std::memory_order_relaxed); }

void Hit(absl::string_view name) {
  if (!g_armed.load(std::memory_order_relaxed)) return;
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_points->find(name);
  if (it == g_points->end()) return;
  if (++it->second.hits < it->second.fire_on) return;
  LOG_WARN("failpoint %s reached: killing criusd with SIGKILL", std::string(name));
  ::kill(::getpid(), SIGKILL);
  ::pause();
}

}  // namespace crius::failpoint
