#include "stream/server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "stream/sessions.h"

namespace crius::stream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr absl::string_view kSpdyUpgrade = "SPDY/3.1";
constexpr absl::string_view kPortForwardProtocol = "portforward.k8s.io";

// SPDY remotecommand protocols, most preferred first (kubelet's order).
const std::vector<std::pair<std::string, RcVersion>>& SpdyRcProtocols() {
  static const std::vector<std::pair<std::string, RcVersion>> p = {{"v4.channel.k8s.io", RcVersion::kV4},
                                                                   {"v3.channel.k8s.io", RcVersion::kV3},
                                                                   {"v2.channel.k8s.io", RcVersion::kV2},
                                                                   {"channel.k8s.io", RcVersion::kV1}};
  return p;
}

struct WsProtocol {
  std::string name;
  RcVersion version;
  bool base64;
};
const std::vector<WsProtocol>& WsRcProtocols() {
  static const std::vector<WsProtocol> p = {{"v5.channel.k8s.io", RcVersion::kV5, false},
                                            {"v4.channel.k8s.io", RcVersion::kV4, false},
                                            {"v4.base64.channel.k8s.io", RcVersion::kV4, true},
                                            {"channel.k8s.io", RcVersion::kV1, false},
                                            {"base64.channel.k8s.io", RcVersion::kV1, true}};
  return p;
}

// Every value of a header that may repeat or hold a comma-separated list.
std::vector<std::string> HeaderList(const http::request<http::string_body>& req, http::field field) {
  std::vector<std::string> out;
  auto range = req.equal_range(field);
  for (auto it = range.first; it != range.second; ++it) {
    for (absl::string_view v : absl::StrSplit(absl::string_view(it->value().data(), it->value().size()), ',')) {
      v = absl::StripAsciiWhitespace(v);
      if (!v.empty()) out.emplace_back(v);
    }
  }
  return out;
}

std::vector<std::string> HeaderList(const http::request<http::string_body>& req, absl::string_view name) {
  std::vector<std::string> out;
  auto range = req.equal_range(beast::string_view(name.data(), name.size()));
  for (auto it = range.first; it != range.second; ++it) {
    for (absl::string_view v : absl::StrSplit(absl::string_view(it->value().data(), it->value().size()), ',')) {
      v = absl::StripAsciiWhitespace(v);
      if (!v.empty()) out.emplace_back(v);
    }
  }
  return out;
}

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, Server::Impl* server) : stream_(std::move(socket)), server_(server) {}
  void Start();

 private:
  void Route();
  void Reply(http::status status, std::string body, std::vector<std::pair<std::string, std::string>> headers = {});
  void UpgradeSpdy(Request r);
  void UpgradeWebSocket(Request r);

  beast::tcp_stream stream_;
  Server::Impl* server_;
  beast::flat_buffer buffer_;
  http::request_parser<http::string_body> parser_;
};

}  // namespace

struct Server::Impl {
  ServerOptions options;
  Backend* backend = nullptr;
  RequestCache cache{absl::Minutes(1)};
  asio::io_context io{1};
  tcp::acceptor acceptor{io};

  explicit Impl(const ServerOptions& o) : options(o), cache(o.token_ttl) {}

  void Accept() {
    acceptor.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) std::make_shared<HttpSession>(std::move(socket), this)->Start();
      Accept();
    });
  }
};

namespace {

void HttpSession::Start() {
  parser_.body_limit(64 * 1024);
  stream_.expires_after(std::chrono::seconds(30));  // to send the request
  http::async_read(stream_, buffer_, parser_, [self = shared_from_this()](error_code ec, size_t) {
    if (ec) return;  // not HTTP, or gone
    self->Route();
  });
}

void HttpSession::Reply(http::status status, std::string body,
                        std::vector<std::pair<std::string, std::string>> headers) {
  auto res = std::make_shared<http::response<http::string_body>>(status, 11);
  res->set(http::field::content_type, "text/plain; charset=utf-8");
  for (auto& [k, v] : headers) res->set(k, v);
  res->body() = std::move(body) + "\n";
  res->prepare_payload();
  res->keep_alive(false);
  http::async_write(stream_, *res, [self = shared_from_this(), res](error_code, size_t) {
    error_code ignored;
    self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  });
}

void HttpSession::Route() {
  const auto& req = parser_.get();
  std::string target(req.target());
  std::string path = target.substr(0, target.find('?'));
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  if (parts.size() != 2 || (parts[0] != "exec" && parts[0] != "attach" && parts[0] != "portforward")) {
    Reply(http::status::not_found, absl::StrCat("no such streaming endpoint: ", path));
    return;
  }
  if (req.method() != http::verb::get && req.method() != http::verb::post) {
    Reply(http::status::method_not_allowed, "streaming endpoints take GET or POST");
    return;
  }
  std::optional<Request> r = server_->cache.Consume(parts[1]);
  if (!r || parts[0] != KindPath(r->kind)) {
    // Unknown, used or expired: each token is good for one connection.
    Reply(http::status::not_found, absl::StrCat("streaming token of ", path,
                                                " is unknown, already used or expired"));
    return;
  }
  stream_.expires_never();
  if (beast::websocket::is_upgrade(req)) {
    UpgradeWebSocket(std::move(*r));
    return;
  }
  std::string upgrade(req[http::field::upgrade]);
  if (absl::EqualsIgnoreCase(upgrade, kSpdyUpgrade)) {
    UpgradeSpdy(std::move(*r));
    return;
  }
  Reply(http::status::bad_request,
        absl::StrCat("this endpoint needs a connection upgrade to ", kSpdyUpgrade, " or websocket"));
}

void HttpSession::UpgradeSpdy(Request r) {
  const auto& req = parser_.get();
  std::vector<std::string> offered = HeaderList(req, "X-Stream-Protocol-Version");
  std::string chosen;
  RcVersion version = RcVersion::kV1;
  std::vector<std::string> supported;
  if (r.kind == Request::Kind::kPortForward) {
    supported = {std::string(kPortForwardProtocol)};
    for (const std::string& p : offered) {
      if (p == kPortForwardProtocol) chosen = p;
    }
  } else {
    for (const auto& [name, v] : SpdyRcProtocols()) supported.push_back(name);
    for (const std::string& p : offered) {
      for (const auto& [name, v] : SpdyRcProtocols()) {
        if (chosen.empty() && p == name) {
          chosen = name;
          version = v;
        }
      }
    }
  }
  // A client that names no protocol speaks the first one (Kubernetes 1.0).
  if (chosen.empty() && !offered.empty()) {
    Reply(http::status::forbidden,
          absl::StrCat("unable to upgrade: unable to negotiate protocol: client supports [",
                       absl::StrJoin(offered, " "), "], server supports [", absl::StrJoin(supported, " "), "]"),
          {{"X-Accepted-Stream-Protocol-Versions", absl::StrJoin(supported, ", ")}});
    return;
  }
  auto res = std::make_shared<http::response<http::empty_body>>(http::status::switching_protocols, 11);
  res->set(http::field::connection, "Upgrade");
  res->set(http::field::upgrade, std::string(kSpdyUpgrade));
  if (!chosen.empty()) res->set("X-Stream-Protocol-Version", chosen);
  http::async_write(stream_, *res, [self = shared_from_this(), res, r = std::move(r), version](error_code ec,
                                                                                              size_t) mutable {
    if (ec) return;
    std::string leftover = beast::buffers_to_string(self->buffer_.data());
    auto conn = std::make_shared<SpdyConn>(self->stream_.release_socket(), std::move(leftover),
                                           self->server_->options.idle_timeout);
    Backend* backend = self->server_->backend;
    if (r.kind == Request::Kind::kPortForward) {
      ServePortForwardSpdy(std::move(conn), backend, std::move(r));
    } else {
      ServeRemoteCommandSpdy(std::move(conn), backend, std::move(r), version,
                             self->server_->options.stream_creation_timeout);
    }
  });
}

void HttpSession::UpgradeWebSocket(Request r) {
  const auto& req = parser_.get();
  std::vector<std::string> offered = HeaderList(req, http::field::sec_websocket_protocol);
  std::string chosen;
  WsProtocol proto{"", RcVersion::kV1, false};
  std::vector<int> ports;
  if (r.kind == Request::Kind::kPortForward) {
    for (const std::string& p : offered) {
      if (p == kPortForwardProtocol) chosen = p;
    }
    // The ports are the query's "port" parameters, else the request's.
    std::string target(req.target());
    size_t q = target.find('?');
    if (q != std::string::npos) {
      for (absl::string_view kv : absl::StrSplit(target.substr(q + 1), '&')) {
        int port = 0;
        if (!absl::ConsumePrefix(&kv, "port=")) continue;
        if (!absl::SimpleAtoi(kv, &port) || port < 1 || port > 65535) {
          Reply(http::status::bad_request, absl::StrCat("port \"", kv, "\": not a port number"));
          return;
        }
        ports.push_back(port);
      }
    }
    if (ports.empty()) ports.assign(r.ports.begin(), r.ports.end());
    if (ports.empty()) {
      Reply(http::status::bad_request, "port forwarding over WebSocket needs at least one port= parameter");
      return;
    }
  } else {
    for (const std::string& p : offered) {
      for (const WsProtocol& w : WsRcProtocols()) {
        if (chosen.empty() && p == w.name) {
          chosen = p;
          proto = w;
        }
      }
    }
  }
  if (chosen.empty() && !offered.empty()) {
    Reply(http::status::bad_request,
          absl::StrCat("unable to upgrade: no supported WebSocket subprotocol in [", absl::StrJoin(offered, ", "),
                       "]"));
    return;
  }
  auto ws = std::make_shared<WsConn::Stream>(std::move(stream_));
  ws->set_option(beast::websocket::stream_base::decorator([chosen](beast::websocket::response_type& res) {
    if (!chosen.empty()) res.set(http::field::sec_websocket_protocol, chosen);
  }));
  ws->async_accept(req, [self = shared_from_this(), ws, r = std::move(r), proto, ports](error_code ec) mutable {
    if (ec) return;
    auto conn = std::make_shared<WsConn>(std::move(*ws), proto.base64, self->server_->options.idle_timeout);
    Backend* backend = self->server_->backend;
    if (r.kind == Request::Kind::kPortForward) {
      ServePortForwardWs(std::move(conn), backend, std::move(r), std::move(ports));
    } else {
      ServeRemoteCommandWs(std::move(conn), backend, std::move(r), proto.version, proto.base64);
    }
  });
}

// "host:port" with an IPv4 or bracketed IPv6 host.
absl::StatusOr<tcp::endpoint> ParseAddress(const std::string& address) {
  size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("\"", address, "\" is not host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  error_code ec;
  asio::ip::address ip = asio::ip::make_address(host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("\"", host, "\" is not an IP address"));
  return tcp::endpoint(ip, static_cast<unsigned short>(port));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options, Backend* backend) {
  absl::StatusOr<tcp::endpoint> endpoint = ParseAddress(options.address);
  if (!endpoint.ok()) return endpoint.status();
  std::unique_ptr<Server> s(new Server());
  s->impl_ = std::make_unique<Impl>(options);
  s->impl_->backend = backend;
  error_code ec;
  auto& acc = s->impl_->acceptor;
  acc.open(endpoint->protocol(), ec);
  if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acc.bind(*endpoint, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("streaming server: listen on ", options.address, ": ", ec.message()));
  tcp::endpoint bound = acc.local_endpoint(ec);
  s->port_ = bound.port();
  // Clients on this node reach an unspecified address through loopback.
  asio::ip::address host = bound.address();
  if (host.is_unspecified()) {
    host = host.is_v6() ? asio::ip::address(asio::ip::address_v6::loopback())
                        : asio::ip::address(asio::ip::address_v4::loopback());
  }
  s->base_url_ = host.is_v6() ? absl::StrCat("http://[", host.to_string(), "]:", s->port_)
                              : absl::StrCat("http://", host.to_string(), ":", s->port_);
  s->impl_->Accept();
  Impl* impl = s->impl_.get();
  s->thread_ = std::thread([impl] {
    pthread_setname_np(pthread_self(), "crius-stream");
    impl->io.run();
  });
  return s;
}

Server::~Server() {
  if (!impl_) return;
  asio::post(impl_->io, [impl = impl_.get()] {
    error_code ignored;
    impl->acceptor.close(ignored);
    impl->io.stop();
  });
  if (thread_.joinable()) thread_.join();
}

void Server::Serve(UniqueFd connection) {
  int fd = connection.release();
  asio::post(impl_->io, [impl = impl_.get(), fd] {
    tcp::socket socket(impl->io);
    error_code ec;
    socket.assign(tcp::v4(), fd, ec);
    if (ec) {
      ::close(fd);
      return;
    }
    std::make_shared<HttpSession>(std::move(socket), impl)->Start();
  });
}

absl::StatusOr<std::string> Server::Url(Request req) {
  Request::Kind kind = req.kind;
  absl::StatusOr<std::string> token = impl_->cache.Insert(std::move(req));
  if (!token.ok()) return token.status();
  return absl::StrCat(base_url_, "/", KindPath(kind), "/", *token);
}

}  // namespace crius::stream
