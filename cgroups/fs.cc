#include "cgroups/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "cgroups/device_program.h"
#include "common/status.h"

namespace crius::cgroups {
namespace {

class HostFsImpl final : public Fs {
 public:
  absl::StatusOr<std::string> ReadFile(const std::string& path) override {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return ErrnoError(errno, absl::StrCat("open ", path));
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof(buf));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError(errno, absl::StrCat("read ", path));
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  absl::Status WriteFile(const std::string& path, absl::string_view data) override {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    if (!fd) return ErrnoError(errno, absl::StrCat("open ", path));
    ssize_t n;
    do {
      n = ::write(fd.get(), data.data(), data.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) return ErrnoError(errno, absl::StrCat("write ", path));
    if (static_cast<size_t>(n) != data.size()) {
      return absl::InternalError(
          absl::StrCat("write ", path, ": short write (", n, " of ", data.size(), " bytes)"));
    }
    return absl::OkStatus();
  }

  absl::Status MakeDir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) != 0) return ErrnoError(errno, absl::StrCat("mkdir ", path));
    return absl::OkStatus();
  }

  absl::Status RemoveDir(const std::string& path) override {
    if (::rmdir(path.c_str()) != 0) return ErrnoError(errno, absl::StrCat("rmdir ", path));
    return absl::OkStatus();
  }

  bool Exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  absl::StatusOr<std::vector<DirEntry>> ListDir(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return ErrnoError(errno, absl::StrCat("opendir ", path));
    std::vector<DirEntry> out;
    errno = 0;
    while (struct dirent* ent = ::readdir(dir)) {
      std::string name = ent->d_name;
      if (name == "." || name == "..") continue;
      unsigned char type = ent->d_type;
      if (type == DT_UNKNOWN) {
        struct stat st;
        if (::fstatat(::dirfd(dir), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
          type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK
                                              : S_ISREG(st.st_mode) ? DT_REG
                                                                    : DT_UNKNOWN;
        }
      }
      DirEntry::Type t = type == DT_DIR   ? DirEntry::Type::kDir
                         : type == DT_LNK ? DirEntry::Type::kSymlink
                         : type == DT_REG ? DirEntry::Type::kFile
                                          : DirEntry::Type::kOther;
      out.push_back({std::move(name), t});
    }
    int err = errno;
    ::closedir(dir);
    if (err != 0) return ErrnoError(err, absl::StrCat("readdir ", path));
    return out;
  }

  absl::StatusOr<UniqueFd> OpenDir(const std::string& path) override {
    UniqueFd fd(::open(path.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    if (!fd) return ErrnoError(errno, absl::StrCat("open ", path));
    return fd;
  }

  absl::Status Kill(pid_t pid, int sig) override {
    // kill(0) and kill(-n) signal whole groups: never what a cgroup walk means.
    if (pid <= 0) return absl::InvalidArgumentError(absl::StrCat("kill ", pid, ": not a process id"));
    if (::kill(pid, sig) != 0) return ErrnoError(errno, absl::StrCat("kill ", pid));
    return absl::OkStatus();
  }

  void Sleep(absl::Duration d) override { absl::SleepFor(d); }

  absl::Status AttachDeviceProgram(const std::string& dir, const DeviceProgram& program) override {
    CRIUS_ASSIGN_OR_RETURN(UniqueFd fd, OpenDir(dir));
    return cgroups::AttachDeviceProgram(fd.get(), program, dir);
  }
};

}  // namespace

std::shared_ptr<Fs> HostFs() { return std::make_shared<HostFsImpl>(); }

}  // namespace crius::cgroups
