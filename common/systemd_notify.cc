#include "common/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace crius {
namespace {

std::string& NotifySocket() {
  static std::string path;
  return path;
}

}  // namespace

void InitSystemdNotify() {
  const char* env = std::getenv("NOTIFY_SOCKET");
  NotifySocket() = env != nullptr ? env : "";
  ::unsetenv("NOTIFY_SOCKET");
}

absl::Status SystemdNotify(absl::string_view state) {
  const std::string& path = NotifySocket();
  if (path.empty()) return absl::OkStatus();
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  // "@name" is an abstract socket: a leading NUL in sun_path.
  if (path.size() >= sizeof addr.sun_path || (path[0] != '/' && path[0] != '@')) {
    return absl::InvalidArgumentError(
        absl::StrCat("NOTIFY_SOCKET \"", path, "\" is not an absolute or abstract socket path"));
  }
  path.copy(addr.sun_path, path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';
  socklen_t len = offsetof(struct sockaddr_un, sun_path) + path.size();
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoError(errno, "notify systemd: socket");
  if (::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
               reinterpret_cast<sockaddr*>(&addr), len) < 0) {
    return ErrnoError(errno, absl::StrCat("notify systemd on ", path));
  }
  return absl::OkStatus();
}

}  // namespace crius
