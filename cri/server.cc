#include "cri/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "common/undo.h"
#include "cri/version.h"

namespace crius::cri {
namespace {

// kubelet sends at most 16 MiB (its own limit); answers of that size too.
constexpr int kMaxMessageBytes = 16 * 1024 * 1024;

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

// A socket file left by a criusd that died is replaced; one that something
// still answers on, or a file that is no socket, is not ours to remove.
// Crash points: none, the socket is made anew at every start
absl::Status ClearStaleSocket(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoError(errno, absl::StrCat("stat ", path));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a socket; refusing to replace it"));
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoError(errno, "socket");
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("another process is serving on ", path, "; refusing to replace it"));
  }
  LOG_INFO("removing stale socket %s", path);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, absl::StrCat("remove stale socket ", path));
  }
  return absl::OkStatus();
}

}  // namespace

std::string Server::streaming_url() const {
  return runtime_ && runtime_->streaming() ? runtime_->streaming()->base_url() : "";
}

// Crash points: none, the directories it makes are made again at the next start
absl::StatusOr<std::unique_ptr<Server>> Server::Start(const Config& config) {
  std::unique_ptr<Server> s(new Server());
  UndoStack undo;
  CRIUS_ASSIGN_OR_RETURN(s->socket_path_, UnixSocketPath(config.listen));
  if (!config.metrics.address.empty()) {
    // A typo is reported before anything is made.
    CRIUS_RETURN_IF_ERROR(metrics::ParseListenAddress(config.metrics.address).status());
  }

  for (const auto& [dir, what] : {std::pair{config.root, "root directory"},
                                  std::pair{config.state, "state directory"},
                                  std::pair{Dirname(s->socket_path_), "socket directory"}}) {
    absl::StatusOr<std::vector<std::string>> created = MakeDirs(dir, 0711);
    if (!created.ok()) return Annotate(created.status(), absl::StrCat("create ", what, " ", dir));
    undo.Push(absl::StrCat("remove ", dir), [created = *created] { RemoveCreatedDirs(created); });
  }

  std::string socket_lock_path = absl::StrCat(s->socket_path_, ".lock");
  CRIUS_ASSIGN_OR_RETURN(s->socket_lock_, LockFile(socket_lock_path, config.listen));
  undo.Push("remove socket lock", [socket_lock_path] { ::unlink(socket_lock_path.c_str()); });
  std::string root_lock_path = absl::StrCat(config.root, "/criusd.lock");
  CRIUS_ASSIGN_OR_RETURN(s->root_lock_,
                         LockFile(root_lock_path, absl::StrCat("root directory ", config.root)));
  undo.Push("remove root lock", [root_lock_path] { ::unlink(root_lock_path.c_str()); });

  s->metrics_ = std::make_shared<metrics::Metrics>(
      metrics::BuildInfo{.version = CRIUS_VERSION, .api_version = "v1"});
  s->metrics_current_ = std::make_unique<metrics::ScopedCurrent>(s->metrics_.get());
  if (!config.metrics.address.empty()) {
    // Before the state database, so that a port in use leaves nothing behind
    // (the undos above remove the locks and directories; s owns the exposer).
    CRIUS_ASSIGN_OR_RETURN(s->exposer_,
                           metrics::Exposer::Start(config.metrics.address, s->metrics_));
  }

  store::Synchronous sync = config.state_db.synchronous == "normal" ? store::Synchronous::kNormal
                                                                    : store::Synchronous::kFull;
  CRIUS_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> db,
                         store::Store::Open(absl::StrCat(config.root, "/state.db"), sync));
  s->runtime_ = std::make_unique<Runtime>(config, std::move(db));
  CRIUS_RETURN_IF_ERROR(Annotate(s->runtime_->Recover(), "recover state"));
  CRIUS_RETURN_IF_ERROR(Annotate(s->runtime_->StartStreaming(), "start the streaming server"));
  s->metrics_->SetStateSource([rt = s->runtime_.get()](metrics::Metrics::StateCounts& pods,
                                                       metrics::Metrics::StateCounts& containers) {
    for (const auto& p : rt->pods().All()) ++pods[p->state];
    for (const auto& c : rt->containers().All()) ++containers[c->state];
  });

  CRIUS_RETURN_IF_ERROR(ClearStaleSocket(s->socket_path_));
  s->runtime_service_ = std::make_unique<RuntimeServiceImpl>(*s->runtime_);
  s->image_service_ = std::make_unique<ImageServiceImpl>(*s->runtime_);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("unix:", s->socket_path_),
                           grpc::InsecureServerCredentials());
  builder.RegisterService(s->runtime_service_.get());
  builder.RegisterService(s->image_service_.get());
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  // The socket is born 0660 (no window in which others may connect).
  mode_t old_umask = ::umask(0117);
  s->grpc_ = builder.BuildAndStart();
  ::umask(old_umask);
  if (s->grpc_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("listen on ", config.listen,
                                               ": gRPC could not bind the socket"));
  }
  std::string sock = s->socket_path_;
  undo.Push("remove socket", [sock] { ::unlink(sock.c_str()); });
  if (::chown(sock.c_str(), 0, 0) != 0 || ::chmod(sock.c_str(), 0660) != 0) {
    absl::Status st = ErrnoError(errno, absl::StrCat("set owner and mode of ", sock));
    s->grpc_->Shutdown();
    return st;
  }
  undo.Commit();
  return s;
}

void Server::Wait() { grpc_->Wait(); }

void Server::Shutdown() {
  // In-flight RPCs get a moment to finish; then they are cancelled.
  grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

// Crash points: none, the socket is made anew at every start
Server::~Server() {
  // Scrapes may still come while the members go: stop reading the runtime.
  if (metrics_ != nullptr) metrics_->SetStateSource(nullptr);
  // The lock files stay: unlinking a lock another process may be opening
  // would let two holders in.
  if (grpc_ != nullptr) ::unlink(socket_path_.c_str());
}

}  // namespace crius::cri
