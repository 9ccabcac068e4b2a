// The /metrics HTTP endpoint (prometheus-cpp's Exposer on civetweb).
#pragma once

#include <memory>
#include <string>

#include <prometheus/collectable.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace prometheus {
class Exposer;
}

namespace crius::metrics {

struct ListenAddress {
  std::string ip;  // dotted IPv4, "127.0.0.1"
  int port = 0;    // 1..65535
};

// Parses "IPv4:port" ("127.0.0.1:9654", "0.0.0.0:9654"). civetweb itself
// accepts more (a bare port, hostnames) and some nonsense (999.1.1.1), so
// criusd takes only what it can state exactly. (Debian's civetweb is built
// without IPv6.)
absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view address);

class Exposer {
 public:
  // Binds `address` and serves `metrics` in the text format on /metrics.
  // An address that does not parse or cannot be bound is an error naming it.
  static absl::StatusOr<std::unique_ptr<Exposer>> Start(
      absl::string_view address, std::shared_ptr<prometheus::Collectable> metrics);
  ~Exposer();

  // The bound port.
  int port() const { return port_; }

 private:
  Exposer() = default;

  std::shared_ptr<prometheus::Collectable> metrics_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
  std::string wake_ip_;  // where ~Exposer connects to end civetweb's poll
};

}  // namespace crius::metrics
