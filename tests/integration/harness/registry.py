"""Debian's docker-registry on 127.0.0.1:<free port>, and a tiny OCI distribution client.

    with Registry() as reg:                     # or Registry(netns=ns) inside a test netns
        digest = reg.push_blob("busybox", data)
        reg.put_manifest("busybox", "latest", body, MT_OCI_MANIFEST)
        body, media_type, digest = reg.get_manifest("busybox", "latest")
"""
import hashlib
import http.client
import json
import signal
import ssl
import subprocess
import time
import urllib.parse
from dataclasses import dataclass

from . import leaks
from .netns import call_in
from .util import HarnessError, free_port, remove_tree, short_tmpdir, tail

REGISTRY_BIN = "/usr/bin/docker-registry"
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


class RegistryError(HarnessError):
    pass


@dataclass
class Response:
    status: int
    headers: dict  # lower-case names
    body: bytes


class Registry:
    """One docker-registry process with filesystem storage in a temp dir.

    netns: a harness.netns.Netns (or anything with .path); the registry then
    listens on 127.0.0.1 inside it and the HTTP methods below run inside it too.
    long_lived: the leak checker ignores this process (session fixtures).
    """

    def __init__(self, netns=None, binary=REGISTRY_BIN, long_lived=False, storage=None,
                 auth=None, tls=None):
        """storage: serve another registry's storage dir (a read front for it);
        auth: a docker-registry "auth" config section (htpasswd or token);
        tls: (certificate, key) paths: the registry then speaks https only."""
        self.storage = storage
        self.auth = auth
        self.tls = tls
        self.netns_path = getattr(netns, "path", netns)
        self.binary = binary
        self.long_lived = long_lived
        self.workdir = short_tmpdir("crius-reg-")
        self.config_path = self.workdir / "config.yml"
        self.log_path = self.workdir / "registry.log"
        self.port = None
        self.proc = None

    @property
    def host(self):
        """host:port, the prefix of image references pushed here."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, timeout=20):
        for _ in range(3):  # a free port can be taken between probe and bind
            self.port = self._in_netns(free_port)
            self._write_config()
            with open(self.log_path, "ab") as log:
                prefix = ["nsenter", f"--net={self.netns_path}"] if self.netns_path else []
                self.proc = subprocess.Popen(prefix + [self.binary, "serve", str(self.config_path)],
                                             stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            if self.long_lived:
                leaks.keep_pid(self.proc.pid)
            if self._wait_ready(timeout):
                return self
            if "address already in use" not in tail(self.log_path, 5):
                break
        self.stop()
        raise RegistryError(f"docker-registry did not answer /v2/ within {timeout}s\n"
                            f"--- {self.log_path} (tail) ---\n{tail(self.log_path)}")

    def stop(self):
        """SIGTERM (SIGKILL after 10s) the process we started, by pid."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        leaks.forget_pid(self.proc.pid)

    def close(self):
        self.stop()
        remove_tree(self.workdir)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()

    def _write_config(self):
        config = {  # JSON is YAML
            "version": "0.1",
            "log": {"level": "info", "formatter": "text"},
            "storage": {"filesystem": {"rootdirectory": str(self.storage_dir)},
                        "delete": {"enabled": True},
                        "maintenance": {"uploadpurging": {"enabled": False}}},
            "http": {"addr": self.host, "secret": "crius-test-secret"},
        }
        if self.auth:
            config["auth"] = self.auth
        if self.tls:
            config["http"]["tls"] = {"certificate": str(self.tls[0]), "key": str(self.tls[1])}
        self.config_path.write_text(json.dumps(config, indent=1))

    @property
    def storage_dir(self):
        return self.storage or self.workdir / "data"

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                # 401: an auth front is up, and asks for credentials.
                if self.request("GET", "/v2/").status in (200, 401):
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def _in_netns(self, fn, *args):
        return call_in(self.netns_path, fn, *args) if self.netns_path else fn(*args)

    # -- HTTP API -------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=30):
        def go():
            if self.tls:
                # Readiness only: the client under test verifies, this one need not.
                conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                                   context=ssl._create_unverified_context())
            else:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                conn.request(method, path, body=body, headers=headers or {})
                r = conn.getresponse()
                return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
            finally:
                conn.close()
        return self._in_netns(go)

    def _expect(self, response, status, what):
        if response.status != status:
            raise RegistryError(f"{what}: HTTP {response.status}: {response.body[:500]!r}")
        return response

    def blob_exists(self, repo, digest):
        return self.request("HEAD", f"/v2/{repo}/blobs/{digest}").status == 200

    def push_blob(self, repo, data):
        """Upload data (POST then monolithic PUT with its digest); returns the digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.blob_exists(repo, digest):
            return digest
        started = self._expect(self.request("POST", f"/v2/{repo}/blobs/uploads/"), 202,
                               f"start upload to {repo}")
        location = urllib.parse.urlsplit(started.headers["location"])
        query = (location.query + "&" if location.query else "") + \
            urllib.parse.urlencode({"digest": digest})
        self._expect(self.request("PUT", f"{location.path}?{query}", body=data,
                                  headers={"Content-Type": "application/octet-stream",
                                           "Content-Length": str(len(data))}),
                     201, f"upload blob {digest} to {repo}")
        return digest

    def get_blob(self, repo, digest):
        return self._expect(self.request("GET", f"/v2/{repo}/blobs/{digest}"), 200,
                            f"get blob {repo}@{digest}").body

    def put_manifest(self, repo, reference, body, media_type):
        """PUT a manifest or index by tag or digest; returns the registry's digest."""
        r = self._expect(self.request("PUT", f"/v2/{repo}/manifests/{reference}", body=body,
                                      headers={"Content-Type": media_type}),
                         201, f"put manifest {repo}:{reference}")
        return r.headers.get("docker-content-digest")

    def get_manifest(self, repo, reference, accept=MANIFEST_TYPES):
        """(body, media type, digest) of a manifest by tag or digest."""
        r = self._expect(self.request("GET", f"/v2/{repo}/manifests/{reference}",
                                      headers={"Accept": accept}),
                         200, f"get manifest {repo}:{reference}")
        return r.body, r.headers.get("content-type"), r.headers.get("docker-content-digest")

    def delete_manifest(self, repo, digest):
        self._expect(self.request("DELETE", f"/v2/{repo}/manifests/{digest}"), 202,
                     f"delete manifest {repo}@{digest}")

    def tags(self, repo):
        r = self._expect(self.request("GET", f"/v2/{repo}/tags/list"), 200, f"tags of {repo}")
        return json.loads(r.body).get("tags") or []
