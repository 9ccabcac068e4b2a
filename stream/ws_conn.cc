#include "stream/ws_conn.h"

#include "stream/conn_end.h"

namespace crius::stream {

namespace asio = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;

WsConn::WsConn(Stream ws, bool text, absl::Duration idle_timeout)
    : ws_(std::move(ws)), text_(text), idle_(ws_.get_executor()), idle_timeout_(idle_timeout) {
  ws_.binary(!text_);
  // Messages of up to 16 MiB from the client (stdin or port data).
  ws_.read_message_max(16 << 20);
}

void WsConn::Start(std::shared_ptr<Handler> handler) {
  handler_ = std::move(handler);
  Touch();
  Read();
}

void WsConn::Touch() {
  if (!closed_) RestartIdleClock(idle_, idle_timeout_, "WebSocket", shared_from_this());
}

void WsConn::Read() {
  ws_.async_read(in_, [self = shared_from_this()](error_code ec, size_t) {
    if (self->closed_) return;
    if (ec) {  // closed by the client (websocket::error::closed) or broken
      self->Finished();
      return;
    }
    if (!self->closing_) self->Touch();
    std::string data = beast::buffers_to_string(self->in_.data());
    self->in_.consume(self->in_.size());
    self->handler_->OnMessage(std::move(data));
    if (!self->closed_) self->Read();
  });
}

void WsConn::Send(std::string data) {
  if (closed_ || closing_) return;
  out_.push_back(std::move(data));
  Flush();
}

void WsConn::Flush() {
  if (writing_ || closed_) return;
  if (out_.empty()) {
    if (closing_) {
      writing_ = true;
      // The read loop ends when the client answers the close. If it never
      // does, or the close never completes (Beast's close, and a read that
      // fails the connection meanwhile, can each wait for the other's
      // lock), the timer ends it.
      idle_.expires_after(std::chrono::seconds(5));
      idle_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec) self->Abort();
      });
      ws_.async_close(beast::websocket::close_code::normal,
                      [self = shared_from_this()](error_code) { self->writing_ = false; });
    }
    return;
  }
  writing_ = true;
  ws_.async_write(asio::buffer(out_.front()), [self = shared_from_this()](error_code ec, size_t) {
    self->writing_ = false;
    if (self->closed_) return;
    if (ec) {
      self->Finished();
      return;
    }
    self->out_.pop_front();
    if (!self->closing_) self->Touch();
    self->Flush();
  });
}

void WsConn::Close() {
  if (closing_ || closed_) return;
  closing_ = true;
  Flush();
}

void WsConn::Abort() { Finished(); }

void WsConn::Finished() {
  if (closed_) return;
  closed_ = true;
  EndConnection(beast::get_lowest_layer(ws_).socket(), idle_, out_, handler_);
}

}  // namespace crius::stream
