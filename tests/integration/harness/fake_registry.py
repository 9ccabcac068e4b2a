"""A registry that serves exactly what a test gives it, true or not: wrong
digests, unknown media types, a connection cut in the middle of a blob. For
what Debian's docker-registry refuses to serve. It counts every request.

    with FakeRegistry() as fake:
        fake.manifest("repo", "tag", body, media_type)
        fake.blob("repo", digest, data, cut_after=100)
        fake.blob("repo", digest, data, stall_after=100)  # then waits for fake.release()
        fake.manifest("repo", "tag", gzipped, media_type, headers={"Content-Encoding": "gzip"})
        ... pull f"{fake.host}/repo:tag" ...
        fake.hits("/v2/repo/blobs/" + digest)
        fake.stalled()    # responses waiting now; fake.hung_up(): ones whose client left
"""
import collections
import hashlib
import http.server
import select
import socket
import threading
import time

from .util import free_port


class FakeRegistry:
    def __init__(self):
        self.manifests = {}  # (repo, reference) -> (body, media type)
        self.blobs = {}      # (repo, digest) -> (data, cut_after or None, stall_after or None)
        self.headers = {}    # (repo, reference) -> extra response headers
        self.requests = collections.Counter()
        self.server = None
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._stalled = 0
        self._hung_up = 0

    @property
    def host(self):
        return f"127.0.0.1:{self.server.server_port}"

    def manifest(self, repo, reference, body, media_type, headers=None):
        if isinstance(body, str):
            body = body.encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        for ref in (reference, digest):
            self.manifests[(repo, ref)] = (body, media_type)
            self.headers[(repo, ref)] = dict(headers or {})
        return digest

    def blob(self, repo, digest, data, cut_after=None, stall_after=None):
        self.blobs[(repo, digest)] = (data, cut_after, stall_after)

    def hits(self, path):
        return self.requests[path]

    def release(self):
        """Stalled responses send the rest; later ones no longer stall."""
        self._released.set()

    def stalled(self):
        with self._lock:
            return self._stalled

    def hung_up(self):
        """Stalled responses whose client closed the connection."""
        with self._lock:
            return self._hung_up

    def wait_for(self, what, value, timeout=10):
        deadline = time.monotonic() + timeout
        while getattr(self, what)() != value:
            if time.monotonic() > deadline:
                raise AssertionError(f"fake registry: {what}() is {getattr(self, what)()}, not {value}")
            time.sleep(0.02)

    def _stall(self, conn):
        """Waits for release(); False when the client hung up first."""
        with self._lock:
            self._stalled += 1
        try:
            while not self._released.wait(0.02):
                readable, _, _ = select.select([conn], [], [], 0)
                if readable and conn.recv(1, socket.MSG_PEEK) == b"":
                    with self._lock:
                        self._hung_up += 1
                    return False
            return True
        finally:
            with self._lock:
                self._stalled -= 1

    def _answer(self, handler):
        path = handler.path.split("?")[0]
        self.requests[path] += 1
        if path == "/v2/":
            return 200, "application/json", b"{}", None
        head, _, reference = path.rpartition("/")
        repo_and_kind = head[len("/v2/"):]
        repo, _, kind = repo_and_kind.rpartition("/")
        if kind == "manifests" and (repo, reference) in self.manifests:
            body, media_type = self.manifests[(repo, reference)]
            return 200, media_type, body, self.headers.get((repo, reference))
        if kind == "blobs" and (repo, reference) in self.blobs:
            data, cut, stall = self.blobs[(repo, reference)]
            return 200, "application/octet-stream", data, {"cut": cut, "stall": stall}
        return 404, "application/json", b'{"errors":[{"code":"NOT_FOUND","message":"unknown"}]}', None

    def __enter__(self):
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                status, media_type, body, how = fake._answer(self)
                how = dict(how or {})
                cut, stall = how.pop("cut", None), how.pop("stall", None)
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                for name, value in how.items():  # the rest are headers
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if stall is not None and not fake._released.is_set():
                    self.wfile.write(body[:stall])
                    self.wfile.flush()
                    if not fake._stall(self.connection):
                        self.close_connection = True
                        return
                    body = body[stall:]
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            do_HEAD = do_GET

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
