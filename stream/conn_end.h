// What SpdyConn and WsConn share: the idle clock that aborts a quiet
// connection, and the end of a connection (socket shut, queue dropped, the
// handler told once).
#pragma once

#include <deque>
#include <memory>
#include <string>

#include <boost/asio.hpp>

#include "absl/time/time.h"
#include "common/log.h"

namespace crius::stream {

// Restarts `idle`: unless touched again within `timeout`, `conn` is aborted.
template <typename Conn>
void RestartIdleClock(boost::asio::steady_timer& idle, absl::Duration timeout, const char* protocol,
                      std::shared_ptr<Conn> conn) {
  idle.expires_after(absl::ToChronoNanoseconds(timeout));
  idle.async_wait([conn = std::move(conn), timeout, protocol](boost::system::error_code ec) {
    if (ec) return;
    LOG_INFO("streaming: %s connection idle for %s: closed", protocol, absl::FormatDuration(timeout));
    conn->Abort();
  });
}

// Ends a connection: the timer stopped, the socket shut and closed, what was
// queued dropped, and the handler's OnClosed called (the last call it gets).
template <typename Handler>
void EndConnection(boost::asio::ip::tcp::socket& socket, boost::asio::steady_timer& idle,
                   std::deque<std::string>& out, std::shared_ptr<Handler>& handler) {
  boost::system::error_code ignored;
  idle.cancel();
  socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
  out.clear();
  std::shared_ptr<Handler> h = std::move(handler);
  if (h) h->OnClosed();
}

}  // namespace crius::stream
