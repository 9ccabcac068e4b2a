#include "stream/spdy_conn.h"

#include "common/log.h"
#include "stream/conn_end.h"

namespace crius::stream {

namespace asio = boost::asio;
using boost::system::error_code;

SpdyConn::SpdyConn(asio::ip::tcp::socket socket, std::string leftover, absl::Duration idle_timeout)
    : socket_(std::move(socket)), idle_(socket_.get_executor()), idle_timeout_(idle_timeout),
      leftover_(std::move(leftover)) {}

void SpdyConn::Start(std::shared_ptr<Handler> handler) {
  handler_ = std::move(handler);
  Touch();
  if (!leftover_.empty()) {
    reader_.Feed(leftover_);
    leftover_.clear();
    // Frames sent right behind the upgrade request.
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      self->Read();
    });
    return;
  }
  Read();
}

void SpdyConn::Touch() {
  if (!closed_) RestartIdleClock(idle_, idle_timeout_, "SPDY", shared_from_this());
}

void SpdyConn::Read() {
  // Whole frames already buffered are handled before reading more.
  for (;;) {
    if (closed_) return;
    absl::StatusOr<std::optional<spdy::Frame>> f = reader_.Next();
    if (!f.ok()) {
      LOG_WARN("streaming: bad SPDY frame: %s", f.status().message());
      Abort();
      return;
    }
    if (!f->has_value()) break;
    Handle(**f);
  }
  if (closed_) return;
  socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](error_code ec, size_t n) {
    if (self->closed_) return;
    if (ec) {
      self->Finished();
      return;
    }
    self->Touch();
    self->reader_.Feed(absl::string_view(self->buf_, n));
    self->Read();
  });
}

void SpdyConn::Handle(spdy::Frame& f) {
  switch (f.type) {
    case spdy::Type::kSynStream: {
      last_stream_ = std::max(last_stream_, f.stream_id);
      bool fin = f.fin();
      bool accepted = !closing_ && handler_->OnStream(f.stream_id, f.headers);
      if (closed_) return;
      if (!accepted) {
        Queue(spdy::Writer::RstStream(f.stream_id, spdy::kRefusedStream));
        return;
      }
      Queue(writer_.SynReply(f.stream_id, {}, 0));
      if (fin) handler_->OnFin(f.stream_id);
      return;
    }
    case spdy::Type::kData:
      if (!f.data.empty()) handler_->OnData(f.stream_id, std::move(f.data));
      if (f.fin() && !closed_) handler_->OnFin(f.stream_id);
      return;
    case spdy::Type::kRstStream:
      handler_->OnFin(f.stream_id);
      return;
    case spdy::Type::kPing:
      if (f.value % 2 == 1) Queue(spdy::Writer::Ping(f.value));  // the client's (odd): echoed
      return;
    case spdy::Type::kGoAway:
      Close();
      return;
    default:  // SETTINGS, WINDOW_UPDATE, HEADERS, replies: nothing to do
      return;
  }
}

void SpdyConn::Write(uint32_t id, std::string data) {
  if (closed_ || fin_sent_.count(id)) return;
  for (size_t at = 0; at < data.size(); at += spdy::kMaxDataChunk) {
    Queue(spdy::Writer::Data(id, absl::string_view(data).substr(at, spdy::kMaxDataChunk), false));
  }
}

void SpdyConn::Fin(uint32_t id) {
  if (closed_ || !fin_sent_.insert(id).second) return;
  Queue(spdy::Writer::Data(id, "", true));
}

void SpdyConn::Reset(uint32_t id, uint32_t status) {
  if (closed_ || !fin_sent_.insert(id).second) return;
  Queue(spdy::Writer::RstStream(id, status));
}

void SpdyConn::Queue(std::string bytes) {
  if (closed_) return;
  out_.push_back(std::move(bytes));
  Flush();
}

void SpdyConn::Flush() {
  if (writing_ || closed_) return;
  if (out_.empty()) {
    if (closing_) {
      // All sent: no more from us; the client closes its side when done.
      error_code ignored;
      socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
      idle_.expires_after(std::chrono::seconds(5));
      idle_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec) self->Abort();
      });
    }
    return;
  }
  writing_ = true;
  asio::async_write(socket_, asio::buffer(out_.front()), [self = shared_from_this()](error_code ec, size_t) {
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

void SpdyConn::Close() {
  if (closing_ || closed_) return;
  Queue(spdy::Writer::GoAway(last_stream_, 0));
  closing_ = true;
  Flush();
}

void SpdyConn::Abort() { Finished(); }

void SpdyConn::Finished() {
  if (closed_) return;
  closed_ = true;
  EndConnection(socket_, idle_, out_, handler_);
}

}  // namespace crius::stream
