// A WebSocket connection (Boost.Beast) after the handshake: whole messages
// each way on the server's io_context.
#pragma once

#include <deque>
#include <memory>
#include <string>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "absl/time/time.h"

namespace crius::stream {

class WsConn : public std::enable_shared_from_this<WsConn> {
 public:
  using Stream = boost::beast::websocket::stream<boost::beast::tcp_stream>;

  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void OnMessage(std::string data) = 0;
    // The connection is gone (closed by either side, broken, idle); last call.
    virtual void OnClosed() = 0;
  };

  // `ws` has completed its handshake; `text` frames are sent for the
  // base64 protocols, binary ones otherwise.
  WsConn(Stream ws, bool text, absl::Duration idle_timeout);

  void Start(std::shared_ptr<Handler> handler);
  boost::asio::any_io_executor executor() { return ws_.get_executor(); }
  void Send(std::string data);
  // Sends what is queued, then a normal close.
  void Close();
  void Abort();

 private:
  void Read();
  void Flush();
  void Touch();
  void Finished();

  Stream ws_;
  const bool text_;
  boost::asio::steady_timer idle_;
  const absl::Duration idle_timeout_;
  std::shared_ptr<Handler> handler_;
  boost::beast::flat_buffer in_;
  std::deque<std::string> out_;
  bool writing_ = false;
  bool closing_ = false;
  bool closed_ = false;
};

}  // namespace crius::stream
