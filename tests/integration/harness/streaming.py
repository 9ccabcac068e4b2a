"""Clients of crius's streaming server, as kubelet and crictl speak to it:
the Kubernetes remotecommand and port-forward protocols over SPDY/3.1 (a
small client of our own, written from the protocol, not from crius's code)
and over WebSocket (Debian's python3-websocket)."""
import json
import queue
import socket
import struct
import threading
import urllib.parse
import zlib

import websocket

# SPDY/3's header compression dictionary: length-prefixed names and values,
# then a run of common header text.
_WORDS = ("options head post put delete trace accept accept-charset accept-encoding accept-language "
          "accept-ranges age allow authorization cache-control connection content-base content-encoding "
          "content-language content-length content-location content-md5 content-range content-type date etag "
          "expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since "
          "last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer "
          "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning www-authenticate "
          "method get status").split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie",
                                          "keep-alive", "origin"]
_TAIL = (b"100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
         b"203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
         b"401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
         b"503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
         b"Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
         b"application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
         b"gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
SPDY_DICT = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL
assert len(SPDY_DICT) == 1423 and zlib.adler32(SPDY_DICT) == 0xE3C6A7C2

SYN_STREAM, SYN_REPLY, RST_STREAM, PING, GOAWAY = 1, 2, 3, 6, 7
FIN = 1

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CHANNEL_NAMES = {STDIN: "stdin", STDOUT: "stdout", STDERR: "stderr", ERROR: "error", RESIZE: "resize"}


def control_frame(ftype, flags, payload):
    """A SPDY/3 control frame."""
    return struct.pack(">HHI", 0x8003, ftype, (flags << 24) | len(payload)) + payload


def data_frame(sid, data, fin=False):
    """A SPDY data frame of stream sid."""
    return struct.pack(">II", sid, ((FIN if fin else 0) << 24) | len(data)) + data


def header_block(comp, headers):
    """headers (a dict) as a header block through comp, the connection's zlib compressor."""
    block = struct.pack(">I", len(headers))
    for k, v in headers.items():
        block += struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
    return comp.compress(block) + comp.flush(zlib.Z_SYNC_FLUSH)


class UpgradeRefused(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status, self.body = status, body


def _split(url):
    u = urllib.parse.urlsplit(url)
    path = u.path + (f"?{u.query}" if u.query else "")
    return u.hostname, u.port, path


def http_get(url, headers=None, timeout=10):
    """One plain HTTP request: (status, body)."""
    host, port, path = _split(url)
    with socket.create_connection((host, port), timeout=timeout) as s:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")


class SpdyStream:
    def __init__(self, sid):
        self.id = sid
        self.replied = threading.Event()
        self.reset = None
        self.data = queue.Queue()  # bytes, then None at FIN/reset
        self.done = False


class SpdyClient:
    """An upgraded SPDY/3.1 connection; the client opens the streams."""

    def __init__(self, url, protocols, timeout=30):
        host, port, path = _split(url)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(None)
        req = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
               + "".join(f"X-Stream-Protocol-Version: {p}\r\n" for p in protocols) + "Content-Length: 0\r\n\r\n")
        self.sock.sendall(req.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
        if self.status != 101:
            body = rest
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                body += chunk
            self.sock.close()
            raise UpgradeRefused(self.status, body.decode(errors="replace"))
        self.protocol = self.headers.get("x-stream-protocol-version")
        self.comp = zlib.compressobj(zdict=SPDY_DICT)
        self.decomp = zlib.decompressobj(zdict=SPDY_DICT)
        self.lock = threading.Lock()
        self.streams = {}
        self.next_id = 1
        self.goaway = threading.Event()
        self.closed = threading.Event()
        self.buf = rest
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _send(self, data):
        with self.lock:
            self.sock.sendall(data)

    def open(self, headers, wait=True, timeout=10):
        with self.lock:
            sid = self.next_id
            self.next_id += 2
            st = self.streams[sid] = SpdyStream(sid)
            payload = struct.pack(">II", sid, 0) + b"\0\0" + header_block(self.comp, headers)
            self.sock.sendall(control_frame(SYN_STREAM, 0, payload))
        if wait:
            assert st.replied.wait(timeout), f"no reply to stream {headers}"
        return st

    def write(self, st, data, fin=False):
        self._send(data_frame(st.id, data, fin))

    def close_stream(self, st):
        self.write(st, b"", fin=True)

    def read_all(self, st, timeout=30):
        out = b""
        while True:
            chunk = st.data.get(timeout=timeout)
            if chunk is None:
                return out
            out += chunk

    def read_some(self, st, timeout=30):
        chunk = st.data.get(timeout=timeout)
        return b"" if chunk is None else chunk

    def _recv_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _finish(self, st):
        if not st.done:
            st.done = True
            st.data.put(None)

    def _read(self):
        try:
            while True:
                head = self._recv_exact(8)
                w0, w1 = struct.unpack(">II", head)
                flags, length = w1 >> 24, w1 & 0xFFFFFF
                payload = self._recv_exact(length)
                if w0 & 0x80000000:
                    ftype = w0 & 0xFFFF
                    if ftype == SYN_REPLY:
                        sid = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
                        self.decomp.decompress(payload[4:])
                        self.streams[sid].replied.set()
                        if flags & FIN:
                            self._finish(self.streams[sid])
                    elif ftype == RST_STREAM:
                        sid, code = struct.unpack(">II", payload[:8])
                        st = self.streams.get(sid & 0x7FFFFFFF)
                        if st:
                            st.reset = code
                            st.replied.set()
                            self._finish(st)
                    elif ftype == GOAWAY:
                        self.goaway.set()
                    elif ftype == PING:
                        self._send(control_frame(PING, 0, payload))
                else:
                    st = self.streams.get(w0)
                    if st is None:
                        continue
                    if payload:
                        st.data.put(payload)
                    if flags & FIN:
                        self._finish(st)
        except (EOFError, OSError):
            pass
        finally:
            for st in list(self.streams.values()):
                st.replied.set()
                self._finish(st)
            self.closed.set()

    def ping(self, pid=1):
        self._send(control_frame(PING, 0, struct.pack(">I", pid)))

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.reader.join(5)


class SpdyCommand:
    """exec or attach over SPDY: one stream per channel."""

    def __init__(self, url, stdin=False, stdout=True, stderr=True, tty=False,
                 protocols=("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")):
        self.conn = SpdyClient(url, list(protocols))
        self.s = {}
        wanted = [ERROR] + ([STDIN] if stdin else []) + ([STDOUT] if stdout else []) + \
                 ([STDERR] if stderr and not tty else []) + ([RESIZE] if tty else [])
        for ch in wanted:
            self.s[ch] = self.conn.open({"streamtype": CHANNEL_NAMES[ch]})

    def send(self, data):
        self.conn.write(self.s[STDIN], data)

    def close_stdin(self):
        self.conn.close_stream(self.s[STDIN])

    def resize(self, width, height):
        self.conn.write(self.s[RESIZE], json.dumps({"Width": width, "Height": height}).encode() + b"\n")

    def read(self, ch, timeout=30):
        return self.conn.read_some(self.s[ch], timeout)

    def wait(self, timeout=60):
        """(stdout, stderr, outcome): outcome is the error stream's text."""
        outs = {}
        for ch in (STDOUT, STDERR):
            outs[ch] = self.conn.read_all(self.s[ch], timeout) if ch in self.s else b""
        err = self.conn.read_all(self.s[ERROR], timeout).decode()
        self.conn.close()
        return outs[STDOUT], outs[STDERR], err

    def close(self):
        self.conn.close()


def ws_url(url):
    return "ws" + url[len("http"):]


class WsCommand:
    """exec or attach over WebSocket (v5.channel.k8s.io by default)."""

    def __init__(self, url, protocols=("v5.channel.k8s.io", "v4.channel.k8s.io")):
        self.ws = websocket.create_connection(ws_url(url), subprotocols=list(protocols), timeout=60)
        self.protocol = self.ws.getsubprotocol()
        self.base64 = "base64" in (self.protocol or "")
        self.got = {STDOUT: b"", STDERR: b"", ERROR: b""}

    def send(self, data, ch=STDIN):
        if self.base64:
            import base64
            self.ws.send(str(ch) + base64.b64encode(data).decode())
        else:
            self.ws.send_binary(bytes([ch]) + data)

    def close_stdin(self):
        self.ws.send_binary(bytes([255, STDIN]))

    def resize(self, width, height):
        self.send(json.dumps({"Width": width, "Height": height}).encode(), RESIZE)

    def next(self):
        """(channel, bytes) of the next message, None at close."""
        try:
            opcode, data = self.ws.recv_data()
        except (websocket.WebSocketConnectionClosedException, OSError):
            return None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return None
        if self.base64:
            import base64
            text = data.decode()
            return int(text[0]), base64.b64decode(text[1:])
        return data[0], data[1:]

    def read_until(self, ch, needle, timeout=30):
        self.ws.settimeout(timeout)
        while needle not in self.got[ch]:
            m = self.next()
            assert m is not None, f"closed before {needle!r} on {ch}: {self.got}"
            self.got.setdefault(m[0], b"")
            self.got[m[0]] += m[1]
        return self.got[ch]

    def wait(self, timeout=60):
        self.ws.settimeout(timeout)
        while (m := self.next()) is not None:
            self.got.setdefault(m[0], b"")
            self.got[m[0]] += m[1]
        self.close()
        return self.got[STDOUT], self.got[STDERR], self.got[ERROR].decode()

    def close(self):
        try:
            self.ws.close(timeout=2)
        except (websocket.WebSocketException, OSError):
            pass
        finally:
            self.ws.shutdown()  # close() leaves the socket open once the server has closed


def exit_code(outcome):
    """The exit code a v4/v5 error-channel Status reports (0 for Success)."""
    status = json.loads(outcome)
    if status["status"] == "Success":
        return 0
    assert status["reason"] == "NonZeroExitCode", status
    (cause,) = [c for c in status["details"]["causes"] if c.get("reason") == "ExitCode"]
    return int(cause["message"])
