// Port forwarding into a pod: each forwarded connection is a TCP
// connection to localhost:port made in the pod's network namespace, its
// bytes carried over SPDY streams or WebSocket channels.
#include <deque>
#include <functional>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "stream/sessions.h"

namespace crius::stream {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

// One forwarded TCP connection.
class Forward : public std::enable_shared_from_this<Forward> {
 public:
  Forward(tcp::socket socket, std::function<void(std::string)> on_data, std::function<void()> on_end)
      : socket_(std::move(socket)), on_data_(std::move(on_data)), on_end_(std::move(on_end)) {}

  void Start() { Read(); }
  // Bytes from the client.
  void Write(std::string data) {
    if (!socket_.is_open() || sent_end_) return;
    queue_.push_back(std::move(data));
    Flush();
  }
  // The client sends no more: the pod's side sees EOF once all is written.
  void End() {
    end_ = true;
    Flush();
  }
  void Close() {
    error_code ignored;
    socket_.close(ignored);
    on_data_ = nullptr;
    on_end_ = nullptr;
  }

 private:
  void Read() {
    socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](error_code ec, size_t n) {
      if (!self->on_data_) return;
      if (ec) {
        auto end = std::move(self->on_end_);
        self->on_data_ = nullptr;
        if (end) end();
        return;
      }
      self->on_data_(std::string(self->buf_, n));
      self->Read();
    });
  }
  void Flush() {
    if (writing_ || !socket_.is_open()) return;
    if (queue_.empty()) {
      if (end_ && !sent_end_) {
        sent_end_ = true;
        error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
      }
      return;
    }
    writing_ = true;
    asio::async_write(socket_, asio::buffer(queue_.front()), [self = shared_from_this()](error_code ec, size_t) {
      self->writing_ = false;
      if (ec) {
        self->queue_.clear();
        return;
      }
      self->queue_.pop_front();
      self->Flush();
    });
  }

  tcp::socket socket_;
  std::function<void(std::string)> on_data_;
  std::function<void()> on_end_;
  std::deque<std::string> queue_;
  bool writing_ = false;
  bool end_ = false;
  bool sent_end_ = false;
  char buf_[32768];
};

absl::StatusOr<tcp::socket> Connect(asio::any_io_executor ex, Backend* backend, const Request& req, int port) {
  absl::StatusOr<UniqueFd> fd = backend->Dial(req.pod_id, port);
  if (!fd.ok()) {
    return absl::Status(fd.status().code(), absl::StrCat("error forwarding port ", port, " to pod ", req.pod_id,
                                                         ": ", fd.status().message()));
  }
  tcp::socket socket(ex);
  error_code ec;
  int raw = fd->release();
  socket.assign(tcp::v4(), raw, ec);  // Dial connects to 127.0.0.1
  if (ec) {
    ::close(raw);
    return absl::InternalError(absl::StrCat("forward port ", port, ": ", ec.message()));
  }
  return socket;
}

class SpdyPortForward : public SpdyConn::Handler, public std::enable_shared_from_this<SpdyPortForward> {
 public:
  SpdyPortForward(std::shared_ptr<SpdyConn> conn, Backend* backend, Request req)
      : conn_(std::move(conn)), backend_(backend), req_(std::move(req)) {}

  void Start() { conn_->Start(shared_from_this()); }

  bool OnStream(uint32_t id, const spdy::Headers& headers) override {
    std::string type = spdy::HeaderValue(headers, "streamtype");
    int port = 0;
    if ((type != "data" && type != "error") || !absl::SimpleAtoi(spdy::HeaderValue(headers, "port"), &port) ||
        port < 1 || port > 65535) {
      LOG_INFO("streaming: port-forward to %s: stream of type \"%s\" port \"%s\" refused", req_.pod_id, type,
               spdy::HeaderValue(headers, "port"));
      return false;
    }
    // Clients before requestid paired the data stream with the error
    // stream opened just before it.
    std::string request_id = spdy::HeaderValue(headers, "requestid");
    if (request_id.empty()) request_id = absl::StrCat(type == "data" ? id - 2 : id);
    Pair& p = pairs_[request_id];
    if ((type == "data" ? p.data : p.error) != 0 || (p.port != 0 && p.port != port)) return false;
    p.port = port;
    (type == "data" ? p.data : p.error) = id;
    streams_[id] = request_id;
    if (p.data != 0 && p.error != 0) {
      asio::post(conn_->executor(), [self = shared_from_this(), request_id] { self->Dial(request_id); });
    }
    return true;
  }

  void OnData(uint32_t id, std::string data) override {
    Pair* p = Find(id);
    if (p == nullptr || id != p->data) return;
    if (p->forward) {
      p->forward->Write(std::move(data));
    } else {
      p->early += data;
    }
  }

  void OnFin(uint32_t id) override {
    Pair* p = Find(id);
    if (p == nullptr || id != p->data) return;
    p->client_done = true;
    if (p->forward) p->forward->End();
  }

  void OnClosed() override {
    for (auto& [id, p] : pairs_) {
      if (p.forward) p.forward->Close();
    }
    pairs_.clear();
    conn_.reset();
  }

 private:
  struct Pair {
    int port = 0;
    uint32_t data = 0, error = 0;
    std::shared_ptr<Forward> forward;
    std::string early;  // client bytes before the connection was made
    bool client_done = false;
  };

  Pair* Find(uint32_t id) {
    auto s = streams_.find(id);
    if (s == streams_.end()) return nullptr;
    auto p = pairs_.find(s->second);
    return p == pairs_.end() ? nullptr : &p->second;
  }

  void Dial(const std::string& request_id) {
    if (!conn_) return;
    auto it = pairs_.find(request_id);
    if (it == pairs_.end()) return;
    Pair& p = it->second;
    absl::StatusOr<tcp::socket> socket = Connect(conn_->executor(), backend_, req_, p.port);
    if (!socket.ok()) {
      LOG_INFO("streaming: %s", socket.status().message());
      conn_->Write(p.error, std::string(socket.status().message()));
      conn_->Fin(p.error);
      conn_->Fin(p.data);
      return;
    }
    std::weak_ptr<SpdyPortForward> weak = weak_from_this();
    uint32_t data = p.data, error = p.error;
    p.forward = std::make_shared<Forward>(
        std::move(*socket),
        [weak, data](std::string bytes) {
          if (auto self = weak.lock(); self && self->conn_) self->conn_->Write(data, std::move(bytes));
        },
        [weak, data, error] {
          if (auto self = weak.lock(); self && self->conn_) {
            self->conn_->Fin(data);
            self->conn_->Fin(error);
          }
        });
    p.forward->Start();
    if (!p.early.empty()) p.forward->Write(std::move(p.early));
    if (p.client_done) p.forward->End();
  }

  std::shared_ptr<SpdyConn> conn_;
  Backend* const backend_;
  const Request req_;
  std::map<std::string, Pair> pairs_;
  std::map<uint32_t, std::string> streams_;
};

class WsPortForward : public WsConn::Handler, public std::enable_shared_from_this<WsPortForward> {
 public:
  WsPortForward(std::shared_ptr<WsConn> conn, Backend* backend, Request req, std::vector<int> ports)
      : conn_(std::move(conn)), backend_(backend), req_(std::move(req)), ports_(std::move(ports)) {}

  void Start() {
    conn_->Start(shared_from_this());
    open_ = ports_.size();
    for (size_t i = 0; i < ports_.size(); ++i) {
      int port = ports_[i];
      std::string prefix = {static_cast<char>(port & 0xff), static_cast<char>(port >> 8)};
      conn_->Send(std::string(1, static_cast<char>(2 * i)) + prefix);
      conn_->Send(std::string(1, static_cast<char>(2 * i + 1)) + prefix);
      absl::StatusOr<tcp::socket> socket = Connect(conn_->executor(), backend_, req_, port);
      if (!socket.ok()) {
        LOG_INFO("streaming: %s", socket.status().message());
        conn_->Send(std::string(1, static_cast<char>(2 * i + 1)) + std::string(socket.status().message()));
        forwards_.push_back(nullptr);
        Ended();
        continue;
      }
      std::weak_ptr<WsPortForward> weak = weak_from_this();
      char channel = static_cast<char>(2 * i);
      auto f = std::make_shared<Forward>(
          std::move(*socket),
          [weak, channel](std::string bytes) {
            if (auto self = weak.lock(); self && self->conn_) self->conn_->Send(std::string(1, channel) + bytes);
          },
          [weak] {
            if (auto self = weak.lock()) self->Ended();
          });
      forwards_.push_back(f);
      f->Start();
    }
  }

  void OnMessage(std::string data) override {
    if (data.empty()) return;
    size_t channel = static_cast<unsigned char>(data[0]);
    if (channel % 2 != 0 || channel / 2 >= forwards_.size() || !forwards_[channel / 2]) return;
    forwards_[channel / 2]->Write(data.substr(1));
  }

  void OnClosed() override {
    for (auto& f : forwards_) {
      if (f) f->Close();
    }
    forwards_.clear();
    conn_.reset();
  }

 private:
  // A connection ended (or was never made): with the last, the session.
  void Ended() {
    if (open_ > 0 && --open_ == 0 && conn_) conn_->Close();
  }

  std::shared_ptr<WsConn> conn_;
  Backend* const backend_;
  const Request req_;
  const std::vector<int> ports_;
  std::vector<std::shared_ptr<Forward>> forwards_;
  size_t open_ = 0;
};

}  // namespace

void ServePortForwardSpdy(std::shared_ptr<SpdyConn> conn, Backend* backend, Request req) {
  std::make_shared<SpdyPortForward>(std::move(conn), backend, std::move(req))->Start();
}

void ServePortForwardWs(std::shared_ptr<WsConn> conn, Backend* backend, Request req, std::vector<int> ports) {
  std::make_shared<WsPortForward>(std::move(conn), backend, std::move(req), std::move(ports))->Start();
}

}  // namespace crius::stream
