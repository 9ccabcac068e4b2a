// The protocol sessions the HTTP front (stream/server.cc) hands an upgraded
// connection to. Each keeps itself alive until its connection closes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "stream/remote_command.h"
#include "stream/server.h"
#include "stream/spdy_conn.h"
#include "stream/ws_conn.h"

namespace crius::stream {

// remotecommand (exec, attach) over SPDY: the client opens one stream per
// channel, named by its "streamtype" header.
void ServeRemoteCommandSpdy(std::shared_ptr<SpdyConn> conn, Backend* backend, Request req, RcVersion version,
                            absl::Duration stream_creation_timeout);

// remotecommand over WebSocket: each message starts with its channel (a
// byte, or an ASCII digit followed by base64 for the base64 protocols).
void ServeRemoteCommandWs(std::shared_ptr<WsConn> conn, Backend* backend, Request req, RcVersion version,
                          bool base64);

// portforward.k8s.io over SPDY: per forwarded connection the client opens
// an error and a data stream with the same "requestid" and "port".
void ServePortForwardSpdy(std::shared_ptr<SpdyConn> conn, Backend* backend, Request req);

// port forwarding over WebSocket: port i of `ports` is channels 2i (data)
// and 2i+1 (error); the first message on each carries the port.
void ServePortForwardWs(std::shared_ptr<WsConn> conn, Backend* backend, Request req, std::vector<int> ports);

}  // namespace crius::stream
