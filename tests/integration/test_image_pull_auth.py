"""PullImage through the ways registries guard images: basic auth
(htpasswd), bearer tokens from a token service, TLS with a CA crius trusts
through its config, and mirrors. Each guarded registry is a second
docker-registry serving the storage of the test registry the images were
pushed to."""
import base64

import grpc
import pytest

import harness
from harness import secure
from harness.util import remove_tree, short_tmpdir

pytestmark = pytest.mark.usefixtures("leak_check")

USERS = {"alice": "wonderland"}


@pytest.fixture(scope="module")
def certs():
    d = short_tmpdir("crius-tls-")
    ca = secure.make_ca(str(d))
    cert, key = secure.make_server_cert(ca, str(d))
    yield ca, cert, key
    remove_tree(d)


def front(registry, **kw):
    return harness.Registry(storage=registry.storage_dir, **kw)


def pull(d, ref, **auth):
    pb = d.pb
    return d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref),
                                                 auth=pb.AuthConfig(**auth) if auth else None),
                             timeout=60).image_ref


def insecure(*hosts, extra=""):
    listed = ", ".join(f'"{h}"' for h in hosts)
    return f"[registry]\ninsecure = [{listed}]\n{extra}"


# --- basic auth ----------------------------------------------------------------

@pytest.fixture
def basic(registry, busybox, tmp):
    auth = {"htpasswd": {"realm": "crius-test",
                         "path": secure.write_htpasswd(str(tmp / "htpasswd"), USERS)}}
    with front(registry, auth=auth) as reg:
        yield reg


def test_basic_auth_with_username_and_password(make_daemon, basic, busybox):
    d = make_daemon(config=insecure(basic.host))
    assert pull(d, f"{basic.host}/busybox:latest", username="alice", password="wonderland")


def test_basic_auth_with_the_auth_field(make_daemon, basic, busybox):
    d = make_daemon(config=insecure(basic.host))
    encoded = base64.b64encode(b"alice:wonderland").decode()
    assert pull(d, f"{basic.host}/busybox:latest", auth=encoded)


def test_basic_auth_wrong_password_is_permission_denied(make_daemon, basic, busybox):
    d = make_daemon(config=insecure(basic.host))
    ref = f"{basic.host}/busybox:latest"
    with pytest.raises(grpc.RpcError) as e:
        pull(d, ref, username="alice", password="nope")
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert ref in e.value.details() and "credentials" in e.value.details()


def test_basic_auth_without_credentials_says_so(make_daemon, basic, busybox):
    d = make_daemon(config=insecure(basic.host))
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{basic.host}/busybox:latest")
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "requires authentication" in e.value.details()


def test_bad_auth_field_is_invalid_argument(make_daemon, basic):
    d = make_daemon(config=insecure(basic.host))
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{basic.host}/busybox:latest", auth="not base64!")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "auth.auth" in e.value.details()


# --- bearer tokens ---------------------------------------------------------------

@pytest.fixture
def token(registry, busybox, tmp):
    with secure.TokenService(str(tmp), USERS) as tokens:
        with front(registry, auth=tokens.registry_auth()) as reg:
            yield reg, tokens


def test_token_auth_fetches_a_pull_token(make_daemon, token, busybox):
    reg, tokens = token
    d = make_daemon(config=insecure(reg.host))
    assert pull(d, f"{reg.host}/busybox:latest", username="alice", password="wonderland")
    assert ("alice", "repository:busybox:pull") in tokens.requests


def test_token_auth_wrong_password_is_permission_denied(make_daemon, token, busybox):
    reg, _ = token
    d = make_daemon(config=insecure(reg.host))
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{reg.host}/busybox:latest", username="alice", password="nope")
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"{reg.host}/busybox:latest" in e.value.details()


def test_a_registry_token_is_sent_as_it_is(make_daemon, token, busybox):
    reg, tokens = token
    d = make_daemon(config=insecure(reg.host))
    import time
    now = int(time.time())
    ready = tokens.sign({"iss": tokens.issuer, "sub": "alice", "aud": tokens.service,
                         "exp": now + 300, "nbf": now - 10, "iat": now, "jti": "given",
                         "access": [{"type": "repository", "name": "busybox",
                                     "actions": ["pull"]}]})
    assert pull(d, f"{reg.host}/busybox:latest", registry_token=ready)
    assert tokens.requests == [], "no token was fetched"


# --- TLS -------------------------------------------------------------------------

@pytest.fixture
def tls(registry, busybox, certs):
    ca, cert, key = certs
    with front(registry, tls=(cert, key)) as reg:
        yield reg, ca


def test_tls_registry_trusted_through_config(make_daemon, tls, busybox):
    reg, ca = tls
    d = make_daemon(config=f'[registry]\nca_files = ["{ca.cert}"]\n')
    assert pull(d, f"{reg.host}/busybox:latest")


def test_tls_registry_with_an_untrusted_ca_fails(make_daemon, tls, busybox):
    reg, _ = tls
    d = make_daemon()
    ref = f"{reg.host}/busybox:latest"
    with pytest.raises(grpc.RpcError) as e:
        pull(d, ref)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert ref in e.value.details() and "certificate" in e.value.details().lower()


def test_a_ca_file_that_is_no_certificate_stops_criusd(make_daemon, tmp):
    bad = tmp / "bad.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(harness.DaemonError) as e:
        make_daemon(config=f'[registry]\nca_files = ["{bad}"]\n')
    assert f"CA file {bad} holds no PEM certificate" in str(e.value)


# --- mirrors ---------------------------------------------------------------------

def test_a_mirror_serves_another_host(make_daemon, registry, busybox):
    d = make_daemon(config=f'[registry.mirrors]\n"gcr.io" = ["http://{registry.host}"]\n')
    image_id = pull(d, "gcr.io/busybox:latest")
    pb = d.pb
    img = d.image.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image="gcr.io/busybox"))).image
    assert img.id == image_id
    assert list(img.repo_tags) == ["gcr.io/busybox:latest"]


def test_mirror_failures_are_all_reported(make_daemon):
    d = make_daemon(config='[registry.mirrors]\n"gcr.io" = ["http://127.0.0.1:1"]\n')
    with pytest.raises(grpc.RpcError) as e:
        pull(d, "gcr.io/busybox:latest")
    assert "127.0.0.1:1" in e.value.details() and "gcr.io" in e.value.details()
