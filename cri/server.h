// criusd's life: take the root and socket, open the state, serve CRI until
// SIGTERM or SIGINT, then stop cleanly.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/unique_fd.h"
#include "cri/runtime.h"
#include "cri/services.h"
#include "metrics/exposer.h"
#include "metrics/metrics.h"

namespace crius::cri {

class Server {
 public:
  // Every step of start-up, each undone if a later one fails: the root, state
  // and socket directories, the locks, the state database, the metrics
  // endpoint, the socket.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const Config& config);
  ~Server();

  // Serves until Shutdown() (called from the signal thread).
  void Wait();
  void Shutdown();

  const std::string& socket_path() const { return socket_path_; }
  // The streaming server's http://host:port.
  std::string streaming_url() const;

 private:
  Server() = default;

  std::string socket_path_;
  UniqueFd socket_lock_;
  UniqueFd root_lock_;
  // Declared before the gRPC server so that they outlive every RPC.
  std::shared_ptr<metrics::Metrics> metrics_;
  std::unique_ptr<metrics::ScopedCurrent> metrics_current_;
  std::unique_ptr<metrics::Exposer> exposer_;
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<RuntimeServiceImpl> runtime_service_;
  std::unique_ptr<ImageServiceImpl> image_service_;
  std::unique_ptr<grpc::Server> grpc_;
};

}  // namespace crius::cri
