#include "common/in_root.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace crius {

bool EscapesRoot(int root, const std::string& path, std::string* via) {
  std::vector<std::string> todo = absl::StrSplit(path, '/', absl::SkipEmpty());
  std::reverse(todo.begin(), todo.end());
  std::vector<std::string> at;  // resolved components below the root
  for (int links = 0; !todo.empty();) {
    std::string part = todo.back();
    todo.pop_back();
    if (part == ".") continue;
    if (part == "..") {
      if (at.empty()) return true;
      at.pop_back();
      continue;
    }
    std::string here = absl::StrJoin(at, "/");
    std::string next = here.empty() ? part : absl::StrCat(here, "/", part);
    char target[PATH_MAX];
    ssize_t n = ::readlinkat(root, next.c_str(), target, sizeof target - 1);
    if (n < 0) {  // not a symlink, or not there (made later): a plain component
      at.push_back(part);
      continue;
    }
    if (++links > 40) return false;  // a loop: openat2 will refuse it
    target[n] = '\0';
    std::vector<std::string> more = absl::StrSplit(target, '/', absl::SkipEmpty());
    if (target[0] == '/') at.clear();
    for (auto it = more.rbegin(); it != more.rend(); ++it) todo.push_back(*it);
    for (const std::string& m : more) {
      if (m == "..") *via = absl::StrCat("/", next, " -> ", target);
    }
  }
  return false;
}


}  // namespace crius
