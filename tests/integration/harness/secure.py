"""TLS certificates, htpasswd files and a bearer-token service for registry
tests: a test CA and a server certificate for 127.0.0.1 (openssl), bcrypt
htpasswd entries, and a token service that signs JWTs (RS256) the way
docker-registry's "auth: token" expects.

    ca = make_ca(dir); cert, key = make_server_cert(ca, dir)
    with TokenService(dir, users={"alice": "pw"}) as tokens:
        Registry(storage=..., auth=tokens.registry_auth(), ...)
"""
import base64
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass

import bcrypt

from .util import free_port


@dataclass
class CA:
    cert: str
    key: str


def _openssl(*args, cwd=None):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd)


def make_ca(directory, name="crius test CA"):
    cert, key = os.path.join(directory, "ca.crt"), os.path.join(directory, "ca.key")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", key, "-out", cert)
    return CA(cert, key)


def make_server_cert(ca, directory, ip="127.0.0.1"):
    """A certificate for https://<ip>, signed by ca; returns (cert, key)."""
    key, csr = os.path.join(directory, "server.key"), os.path.join(directory, "server.csr")
    cert, ext = os.path.join(directory, "server.crt"), os.path.join(directory, "server.ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={ip}", "-keyout", key,
             "-out", csr)
    _openssl("x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial",
             "-days", "2", "-extfile", ext, "-out", cert)
    return cert, key


def write_htpasswd(path, users):
    """bcrypt entries (the only kind docker-registry accepts)."""
    with open(path, "w") as f:
        for user, password in users.items():
            f.write(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    return path


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """Issues pull tokens for users with the right password, on 127.0.0.1."""

    def __init__(self, directory, users, service="crius-test-registry", issuer="crius-test-issuer"):
        self.directory, self.users = directory, dict(users)
        self.service, self.issuer = service, issuer
        self.key = os.path.join(directory, "token.key")
        self.cert = os.path.join(directory, "token.crt")
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 "/CN=crius token signer", "-keyout", self.key, "-out", self.cert)
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests = []  # (user or None, scope) per token request
        self.server = None

    @property
    def realm(self):
        return f"http://127.0.0.1:{self.server.server_port}/token"

    def registry_auth(self):
        """The "auth" section of the registry's config."""
        return {"token": {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                          "rootcertbundle": self.cert}}

    def sign(self, claims):
        header = _b64url(json.dumps({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}).encode())
        payload = _b64url(json.dumps(claims).encode())
        signing_input = f"{header}.{payload}".encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input,
                             check=True, capture_output=True).stdout
        return f"{header}.{payload}.{_b64url(sig)}"

    def _handle(self, handler):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
        scope = (query.get("scope") or [""])[0]
        user = None
        auth = handler.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if self.users.get(name) != password:
                self.requests.append((name, scope))
                return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad password"}]}
            user = name
        self.requests.append((user, scope))
        if user is None:
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "credentials required"}]}
        access = []
        parts = scope.split(":")
        if len(parts) == 3 and parts[0] == "repository":
            access.append({"type": "repository", "name": parts[1], "actions": ["pull"]})
        now = int(time.time())
        token = self.sign({"iss": self.issuer, "sub": user, "aud": self.service, "exp": now + 300,
                           "nbf": now - 10, "iat": now, "jti": f"{now}-{len(self.requests)}",
                           "access": access})
        return 200, {"token": token, "expires_in": 300}

    def __enter__(self):
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status, body = service._handle(self)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
