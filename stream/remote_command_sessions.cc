// remotecommand's two carriers: SPDY streams and WebSocket messages.
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "stream/sessions.h"

namespace crius::stream {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

class SpdyRemoteCommand : public SpdyConn::Handler,
                          public RemoteCommand::Out,
                          public std::enable_shared_from_this<SpdyRemoteCommand> {
 public:
  SpdyRemoteCommand(std::shared_ptr<SpdyConn> conn, Backend* backend, Request req, RcVersion version)
      : conn_(std::move(conn)), timer_(conn_->executor()), version_(version),
        rc_(std::make_shared<RemoteCommand>(conn_->executor(), backend, std::move(req), version, this)) {}

  void Start(absl::Duration timeout) {
    timer_.expires_after(absl::ToChronoNanoseconds(timeout));
    timer_.async_wait([self = shared_from_this(), timeout](error_code ec) {
      if (ec || self->begun_ || !self->conn_) return;
      LOG_INFO("streaming: %s %s: the client opened no complete set of streams within %s",
               KindPath(self->rc_->request().kind), self->rc_->request().container_id,
               absl::FormatDuration(timeout));
      self->conn_->Abort();
    });
    conn_->Start(shared_from_this());
  }

  bool OnStream(uint32_t id, const spdy::Headers& headers) override {
    static const std::map<std::string, int> kTypes = {
        {"stdin", kStdin}, {"stdout", kStdout}, {"stderr", kStderr}, {"error", kError}, {"resize", kResize}};
    std::string type = spdy::HeaderValue(headers, "streamtype");
    auto it = kTypes.find(type);
    const Request& r = rc_->request();
    bool wanted = it != kTypes.end() && !ids_.count(it->second) &&
                  (it->second != kStdin || r.stdin) && (it->second != kResize || r.tty);
    if (!wanted) {
      LOG_INFO("streaming: %s %s: stream \"%s\" refused", KindPath(r.kind), r.container_id, type);
      return false;
    }
    ids_[it->second] = id;
    channels_[id] = it->second;
    if (!begun_ && Complete()) {
      begun_ = true;
      timer_.cancel();
      // After this stream's reply has gone out.
      asio::post(conn_->executor(), [rc = rc_] { rc->Begin(); });
    }
    return true;
  }

  void OnData(uint32_t id, std::string data) override {
    auto it = channels_.find(id);
    if (it != channels_.end()) rc_->Input(it->second, std::move(data));
  }

  void OnFin(uint32_t id) override {
    auto it = channels_.find(id);
    if (it != channels_.end()) rc_->InputEnd(it->second);
  }

  void OnClosed() override {
    timer_.cancel();
    rc_->Gone();
    conn_.reset();
  }

  void Send(int channel, std::string data) override {
    auto it = ids_.find(channel);
    if (conn_ && it != ids_.end()) conn_->Write(it->second, std::move(data));
  }
  void Fin(int channel) override {
    auto it = ids_.find(channel);
    if (conn_ && it != ids_.end()) conn_->Fin(it->second);
  }
  void Close() override {
    if (conn_) conn_->Close();
  }

 private:
  // Every stream the client must open: the error stream, and one per
  // stream asked for (with a terminal, stderr is stdout; resize from v3).
  bool Complete() const {
    const Request& r = rc_->request();
    bool tty_merges = r.tty && version_ >= RcVersion::kV2;
    return ids_.count(kError) && (!r.stdin || ids_.count(kStdin)) && (!r.stdout || ids_.count(kStdout)) &&
           (!r.stderr || tty_merges || ids_.count(kStderr)) &&
           (!r.tty || version_ < RcVersion::kV3 || ids_.count(kResize));
  }

  std::shared_ptr<SpdyConn> conn_;
  asio::steady_timer timer_;
  const RcVersion version_;
  std::shared_ptr<RemoteCommand> rc_;
  std::map<int, uint32_t> ids_;
  std::map<uint32_t, int> channels_;
  bool begun_ = false;
};

class WsRemoteCommand : public WsConn::Handler,
                        public RemoteCommand::Out,
                        public std::enable_shared_from_this<WsRemoteCommand> {
 public:
  WsRemoteCommand(std::shared_ptr<WsConn> conn, Backend* backend, Request req, RcVersion version, bool base64)
      : conn_(std::move(conn)), version_(version), base64_(base64),
        rc_(std::make_shared<RemoteCommand>(conn_->executor(), backend, std::move(req), version, this)) {}

  void Start() {
    conn_->Start(shared_from_this());
    asio::post(conn_->executor(), [rc = rc_] { rc->Begin(); });
  }

  void OnMessage(std::string data) override {
    if (data.empty()) return;
    int channel = static_cast<unsigned char>(data[0]);
    std::string payload = data.substr(1);
    if (base64_) {
      channel -= '0';
      std::string raw;
      if (!absl::Base64Unescape(payload, &raw)) {
        LOG_INFO("streaming: a base64 message that is not base64 ignored");
        return;
      }
      payload = std::move(raw);
    }
    if (channel == 255 && version_ >= RcVersion::kV5) {  // the client closes a channel
      if (!payload.empty()) rc_->InputEnd(static_cast<unsigned char>(payload[0]));
      return;
    }
    rc_->Input(channel, std::move(payload));
  }

  void OnClosed() override {
    rc_->Gone();
    conn_.reset();
  }

  void Send(int channel, std::string data) override {
    if (!conn_) return;
    if (base64_) {
      conn_->Send(absl::StrCat(std::string(1, static_cast<char>('0' + channel)), absl::Base64Escape(data)));
    } else {
      conn_->Send(std::string(1, static_cast<char>(channel)) + data);
    }
  }
  void Fin(int) override {}
  void Close() override {
    if (conn_) conn_->Close();
  }

 private:
  std::shared_ptr<WsConn> conn_;
  const RcVersion version_;
  const bool base64_;
  std::shared_ptr<RemoteCommand> rc_;
};

}  // namespace

void ServeRemoteCommandSpdy(std::shared_ptr<SpdyConn> conn, Backend* backend, Request req, RcVersion version,
                            absl::Duration stream_creation_timeout) {
  std::make_shared<SpdyRemoteCommand>(std::move(conn), backend, std::move(req), version)
      ->Start(stream_creation_timeout);
}

void ServeRemoteCommandWs(std::shared_ptr<WsConn> conn, Backend* backend, Request req, RcVersion version,
                          bool base64) {
  std::make_shared<WsRemoteCommand>(std::move(conn), backend, std::move(req), version, base64)->Start();
}

}  // namespace crius::stream
