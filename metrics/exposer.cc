#include "metrics/exposer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <thread>

#include <CivetServer.h>
#include <prometheus/exposer.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/unique_fd.h"

namespace crius::metrics {
namespace {

// civetweb reports why it could not start only through its log callback
// (CivetServer's exception just says "null context"), and from the thread
// that calls mg_start. While Start() runs, that thread's messages are kept
// here for the error; later ones (from request threads) go to the debug log.
thread_local std::string* startup_messages = nullptr;

int LogCivetMessage(const mg_connection*, const char* message) {
  if (startup_messages != nullptr) {
    // The first message is the cause ("cannot bind to ...: 98 (Address
    // already in use)"); the rest restate it.
    if (startup_messages->empty()) startup_messages->assign(message);
  } else {
    LOG_DEBUG("metrics http: %s", message);
  }
  return 1;  // handled: civetweb writes nothing itself
}

}  // namespace

absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view address) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", address, "\" ", why));
  };
  size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return bad("is not IPv4:port (e.g. 127.0.0.1:9654)");
  ListenAddress out;
  out.ip = std::string(address.substr(0, colon));
  struct in_addr parsed;
  if (::inet_pton(AF_INET, out.ip.c_str(), &parsed) != 1) {
    return bad("does not start with an IPv4 address (e.g. 127.0.0.1:9654)");
  }
  absl::string_view port = address.substr(colon + 1);
  if (port.empty() || port.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(port, &out.port) || out.port < 1 || out.port > 65535) {
    return bad("does not end in a port from 1 to 65535");
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Exposer>> Exposer::Start(
    absl::string_view address, std::shared_ptr<prometheus::Collectable> metrics) {
  absl::StatusOr<ListenAddress> parsed = ParseListenAddress(address);
  if (!parsed.ok()) return parsed.status();
  std::string listen = absl::StrCat(parsed->ip, ":", parsed->port);

  static CivetCallbacks callbacks = [] {
    CivetCallbacks c{};
    c.log_message = LogCivetMessage;
    return c;
  }();
  std::unique_ptr<Exposer> e(new Exposer());
  e->metrics_ = std::move(metrics);
  std::string messages;
  startup_messages = &messages;
  try {
    // Two request threads: a scrape never waits behind one slow client for
    // long, and request_timeout_ms bounds how long a client may hold one.
    e->exposer_ = std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", listen, "num_threads", "2",
                                 "request_timeout_ms", "10000"},
        &callbacks);
  } catch (const std::exception& ex) {
    startup_messages = nullptr;
    return absl::UnavailableError(absl::StrCat("serve metrics on ", address, ": ",
                                               messages.empty() ? ex.what() : messages));
  }
  startup_messages = nullptr;
  e->exposer_->RegisterCollectable(e->metrics_);
  std::vector<int> ports = e->exposer_->GetListeningPorts();
  e->port_ = ports.empty() ? parsed->port : ports.front();
  e->wake_ip_ = parsed->ip == "0.0.0.0" ? "127.0.0.1" : parsed->ip;
  return e;
}

Exposer::~Exposer() {
  if (exposer_ == nullptr) return;
  // civetweb's stop waits for its accept thread, which polls the listening
  // socket in 2 s slices (SOCKET_TIMEOUT_QUANTUM, fixed when Debian built
  // it). A connection wakes it at once, so knock until the stop is done:
  // criusd's shutdown then takes milliseconds, not up to 2 s more.
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  ::inet_pton(AF_INET, wake_ip_.c_str(), &addr.sin_addr);
  std::atomic<bool> stopped{false};
  std::thread knocker([&] {
    while (!stopped.load()) {
      UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (fd) ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  exposer_.reset();
  stopped.store(true);
  knocker.join();
}

}  // namespace crius::metrics
