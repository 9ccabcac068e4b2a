"""PullImage under deadlines and stalls, as kubelet 1.31+ uses it: a pull
whose gRPC deadline passes ends with DEADLINE_EXCEEDED at once and leaves
nothing behind; a registry that stops sending is given up after
registry.pull_progress_timeout; callers sharing one pull each keep their own
deadline. The stalls come from a registry that sends part of a blob and
waits (harness.fake_registry)."""
import os
import threading
import time

import grpc
import pytest

import harness
from harness.fake_registry import FakeRegistry

pytestmark = pytest.mark.usefixtures("leak_check")

STALL_AFTER = 4096


@pytest.fixture
def fake():
    with FakeRegistry() as f:
        yield f


def config(fake, progress_timeout=None):
    text = f'[registry]\ninsecure = ["{fake.host}"]\n'
    if progress_timeout is not None:
        text += f'pull_progress_timeout = "{progress_timeout}"\n'
    return text


def big_image(tag):
    # Random bytes do not compress: the layer blob is larger than STALL_AFTER.
    return harness.Image([harness.Layer().file(f"data-{tag}", os.urandom(256 << 10))], cmd=["/x"])


def serve(fake, image, tag="latest", stall=True):
    for b in image.blobs():
        is_layer = b.digest != image.config_blob().digest
        fake.blob("img", b.digest, b.data, stall_after=STALL_AFTER if stall and is_layer else None)
    m = image.manifest_blob()
    fake.manifest("img", tag, m.data, m.media_type)
    return f"{fake.host}/img:{tag}"


def pull(d, ref, timeout):
    pb = d.pb
    return d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=timeout)


def stored(d):
    return (os.listdir(d.root / "content/blobs/sha256"), os.listdir(d.root / "layers"),
            os.listdir(d.root / "content/ingest"))


def images(d):
    pb = d.pb
    return list(d.image.ListImages(pb.ListImagesRequest()).images)


def wait_nothing_kept(d, timeout=5):
    """The abandoned pull ends in the background: nothing of it stays."""
    deadline = time.monotonic() + timeout
    while stored(d) != ([], [], []) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored(d) == ([], [], [])
    assert images(d) == []


def test_a_1ms_deadline_ends_the_pull_and_the_next_pull_succeeds(make_daemon, registry, busybox):
    d = make_daemon(config=f'[registry]\ninsecure = ["{registry.host}"]\n')
    with pytest.raises(grpc.RpcError) as e:
        pull(d, busybox.ref, timeout=0.001)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_nothing_kept(d)
    assert pull(d, busybox.ref, timeout=60).image_ref
    assert len(images(d)) == 1


def test_a_deadline_during_a_stalled_blob_stops_the_transfer_and_cleans_up(make_daemon, fake):
    d = make_daemon(config=config(fake))
    image = big_image("a")
    ref = serve(fake, image)
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        pull(d, ref, timeout=1.5)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - start < 3
    # crius hangs up on the registry and removes what it fetched.
    fake.wait_for("hung_up", 1, timeout=5)
    fake.wait_for("stalled", 0)
    wait_nothing_kept(d)
    assert "the request's deadline passed after" in d.log
    assert "the pull was abandoned and what it fetched is removed" in d.log
    # The same image, once the registry sends it, pulls whole.
    fake.release()
    assert pull(d, ref, timeout=30).image_ref == image.config_blob().digest
    assert len(images(d)) == 1


def test_a_client_that_cancels_abandons_the_pull(make_daemon, fake):
    d = make_daemon(config=config(fake))
    ref = serve(fake, big_image("b"))
    pb = d.pb
    call = d.image.PullImage.future(pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=60)
    fake.wait_for("stalled", 1)
    call.cancel()
    fake.wait_for("hung_up", 1, timeout=5)
    wait_nothing_kept(d)
    assert "the client cancelled the request" in d.log


def test_callers_sharing_a_pull_each_keep_their_own_deadline(make_daemon, fake):
    d = make_daemon(config=config(fake))
    image = big_image("c")
    ref = serve(fake, image)
    results = {}

    def go(name, timeout):
        start = time.monotonic()
        try:
            results[name] = (pull(d, ref, timeout).image_ref, time.monotonic() - start)
        except grpc.RpcError as e:
            results[name] = (e, time.monotonic() - start)

    short = threading.Thread(target=go, args=("short", 1.0))
    long = threading.Thread(target=go, args=("long", 20.0))
    long.start()
    fake.wait_for("stalled", 1)
    short.start()
    short.join()
    err, took = results["short"]
    assert isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert took < 2.5
    # The pull goes on for the other caller: the registry was not hung up on.
    time.sleep(0.5)
    assert fake.stalled() == 1 and fake.hung_up() == 0
    fake.release()
    long.join()
    image_ref, _ = results["long"]
    assert image_ref == image.config_blob().digest
    layer = image.layer_blobs()[0].digest
    assert fake.hits(f"/v2/img/blobs/{layer}") == 1  # one pull, shared
    assert [i.id for i in images(d)] == [image_ref]


def test_a_registry_that_sends_nothing_is_given_up_after_the_progress_timeout(make_daemon, fake):
    d = make_daemon(config=config(fake, progress_timeout="1s"))
    ref = serve(fake, big_image("d"))
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        pull(d, ref, timeout=30)
    took = time.monotonic() - start
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "sent no bytes for 1s (registry.pull_progress_timeout)" in e.value.details()
    assert ref in e.value.details()
    assert 1 <= took < 5
    fake.wait_for("hung_up", 1, timeout=5)
    wait_nothing_kept(d)


def test_a_progress_timeout_of_zero_waits_for_a_slow_registry(make_daemon, fake):
    d = make_daemon(config=config(fake, progress_timeout="0"))
    image = big_image("e")
    ref = serve(fake, image)
    threading.Timer(2.5, fake.release).start()
    assert pull(d, ref, timeout=30).image_ref == image.config_blob().digest


def test_a_progress_timeout_that_is_no_duration_stops_criusd(make_daemon, fake):
    with pytest.raises(harness.DaemonError) as e:
        make_daemon(config=config(fake, progress_timeout="soon"))
    assert 'key "registry.pull_progress_timeout": "soon" is not a duration of zero or more' in str(e.value)
