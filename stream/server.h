// crius's streaming server: the URLs Exec, Attach and PortForward answer
// with. kubelet (which proxies the API server's streams) and crictl connect
// to them and speak the Kubernetes streaming protocols:
//   - remotecommand (exec, attach) over SPDY/3.1: channel.k8s.io and
//     v2-v4.channel.k8s.io; over WebSocket: v5.channel.k8s.io,
//     v4.channel.k8s.io, channel.k8s.io and their base64 forms;
//   - portforward.k8s.io over SPDY/3.1 and over WebSocket.
// HTTP and WebSocket are Boost.Beast's; SPDY is ours (stream/spdy.h).
// One thread runs every connection; nothing it does blocks for long.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "stream/requests.h"

namespace crius::stream {

// What an exec or attach session talks to. Every fd is optional.
class Io {
 public:
  virtual ~Io() = default;  // ends what still runs (the exec's process)
  UniqueFd stdin_w;
  UniqueFd stdout_r;
  UniqueFd stderr_r;
  // Attach: the container's output as packets of one byte (1 stdout,
  // 2 stderr) then the bytes; EOF when the container has exited.
  UniqueFd tagged_r;
  int tty_fd = -1;   // the terminal's master (window size), or -1
  UniqueFd exited;   // exec: readable once the process has exited
  // After `exited` (or the end of the output): the exit code, or why the
  // command could not run.
  virtual absl::StatusOr<int> Finish() = 0;
  // The client closed stdin; the write end is already closed.
  virtual void StdinClosed() {}
};

// What the server needs from the runtime. Called on the server's thread,
// when a client connects (the container may have stopped since the RPC).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual absl::StatusOr<std::unique_ptr<Io>> Exec(const Request& req) = 0;
  virtual absl::StatusOr<std::unique_ptr<Io>> Attach(const Request& req) = 0;
  // A TCP connection to `port` on localhost in the pod's network namespace.
  virtual absl::StatusOr<UniqueFd> Dial(const std::string& pod_id, int port) = 0;
};

struct ServerOptions {
  std::string address = "127.0.0.1:0";  // host:port; port 0 picks one
  absl::Duration idle_timeout = absl::Hours(4);
  absl::Duration token_ttl = absl::Minutes(1);
  // How long a client may take to open the streams of a session.
  absl::Duration stream_creation_timeout = absl::Seconds(30);
};

class Server {
 public:
  // Listens and starts serving on a thread of its own.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options, Backend* backend);
  ~Server();  // closes every connection and joins the thread

  // "http://127.0.0.1:PORT/<kind>/<token>" for a new one-time token.
  absl::StatusOr<std::string> Url(Request req);
  // Serves a connected stream socket that did not come through the
  // listening one (the fuzz target's end of a socketpair) as if it had.
  void Serve(UniqueFd connection);
  int port() const { return port_; }
  const std::string& base_url() const { return base_url_; }

  struct Impl;

 private:
  Server() = default;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  int port_ = 0;
  std::string base_url_;
};

}  // namespace crius::stream
