// A SPDY/3.1 connection after the HTTP upgrade: frames read and written on
// the server's io_context. Clients open the streams; the handler accepts or
// refuses each, then data flows both ways until FINs, resets or close.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <string>

#include <boost/asio.hpp>

#include "absl/time/time.h"
#include "stream/spdy.h"

namespace crius::stream {

class SpdyConn : public std::enable_shared_from_this<SpdyConn> {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // A stream the client opened: true answers SYN_REPLY, false RST_STREAM.
    virtual bool OnStream(uint32_t id, const spdy::Headers& headers) = 0;
    virtual void OnData(uint32_t id, std::string data) = 0;
    // The client half-closed (FIN) or reset the stream.
    virtual void OnFin(uint32_t id) = 0;
    // The connection is gone (closed, broken or idle too long); last call.
    virtual void OnClosed() = 0;
  };

  SpdyConn(boost::asio::ip::tcp::socket socket, std::string leftover, absl::Duration idle_timeout);

  // Starts reading; the handler is kept until OnClosed.
  void Start(std::shared_ptr<Handler> handler);
  boost::asio::any_io_executor executor() { return socket_.get_executor(); }
  void Write(uint32_t id, std::string data);  // in chunks of kMaxDataChunk
  void Fin(uint32_t id);
  void Reset(uint32_t id, uint32_t status);
  // Sends what is queued and GOAWAY, then closes once the client has (or
  // after a few seconds).
  void Close();
  // Closes at once.
  void Abort();

 private:
  void Read();
  void Handle(spdy::Frame& f);
  void Queue(std::string bytes);
  void Flush();
  void Touch();
  void Finished();

  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer idle_;
  const absl::Duration idle_timeout_;
  std::shared_ptr<Handler> handler_;
  spdy::Reader reader_;
  spdy::Writer writer_;
  std::string leftover_;
  char buf_[65536];
  std::deque<std::string> out_;
  bool writing_ = false;
  bool closing_ = false;
  bool closed_ = false;
  uint32_t last_stream_ = 0;
  std::set<uint32_t> fin_sent_;
};

}  // namespace crius::stream
