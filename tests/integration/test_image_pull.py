"""PullImage and the rest of the ImageService against a real registry
(Debian's docker-registry on 127.0.0.1), with images the tests build."""
import json
import os
import threading

import grpc
import pytest

import harness

pytestmark = pytest.mark.usefixtures("leak_check")


def insecure_config(registry):
    return f'[registry]\ninsecure = ["{registry.host}"]\n'


@pytest.fixture
def images(make_daemon, registry):
    """A criusd that reaches the test registry over http."""
    return make_daemon(config=insecure_config(registry))


def pull(d, ref, **auth):
    pb = d.pb
    return d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref),
                                                 auth=pb.AuthConfig(**auth) if auth else None),
                             timeout=60).image_ref


def status(d, ref, verbose=False):
    pb = d.pb
    return d.image.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=ref), verbose=verbose))


def remove(d, ref):
    pb = d.pb
    d.image.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=ref)))


def list_images(d, ref=""):
    pb = d.pb
    f = pb.ImageFilter(image=pb.ImageSpec(image=ref)) if ref else None
    return list(d.image.ListImages(pb.ListImagesRequest(filter=f)).images)


def stored(d):
    """Blobs and unpacked layers in criusd's root."""
    blobs = os.listdir(d.root / "content/blobs/sha256")
    layers = os.listdir(d.root / "layers")
    return blobs, layers


def test_pull_by_tag_records_and_unpacks_the_image(images, busybox):
    config_digest = harness.digest_of(harness.busybox_image().config_blob().data)
    assert pull(images, busybox.ref) == config_digest
    img = status(images, busybox.ref).image
    assert img.id == config_digest
    assert list(img.repo_tags) == [busybox.ref]
    assert list(img.repo_digests) == [f"{busybox.host}/busybox@{busybox.digest}"]
    assert img.size > 1_000_000
    assert img.uid.value == 0
    # The layer is unpacked once, by chain id, with busybox and its applets.
    blobs, layers = stored(images)
    assert len(layers) == 1
    layer = images.root / "layers" / layers[0]
    assert os.access(layer / "bin/busybox", os.X_OK)
    assert os.readlink(layer / "bin/sh") == "busybox"
    assert oct(os.stat(layer / "tmp").st_mode & 0o7777) == "0o1777"
    assert len(blobs) == 3  # manifest, config, layer


def test_image_is_found_by_id_prefix_tag_and_digest(images, busybox):
    image_id = pull(images, busybox.ref)
    for name in (image_id, image_id[7:19], busybox.ref, busybox.ref_by_digest):
        assert status(images, name).image.id == image_id, name
    assert [i.id for i in list_images(images)] == [image_id]
    assert [i.id for i in list_images(images, busybox.ref)] == [image_id]
    assert list_images(images, f"{busybox.host}/nothing:here") == []


def test_pull_by_digest(images, busybox):
    image_id = pull(images, busybox.ref_by_digest)
    img = status(images, image_id).image
    assert list(img.repo_tags) == []
    assert list(img.repo_digests) == [busybox.ref_by_digest]


def test_verbose_status_carries_the_image_config(images, registry):
    image = harness.busybox_image(entrypoint=["/bin/sh", "-c"], cmd=["echo hi"],
                                  env=["PATH=/bin", "A=1"], working_dir="/tmp", user="1000:100",
                                  stop_signal="SIGINT", labels={"l": "v"},
                                  annotations={"org.example/a": "b"})
    pushed = harness.push(registry, image, "configured")
    pull(images, pushed.ref)
    s = status(images, pushed.ref, verbose=True)
    assert s.image.uid.value == 1000
    assert dict(s.image.spec.annotations) == {"org.example/a": "b"}
    info = json.loads(s.info["info"])
    c = info["imageConfig"]
    assert c["Entrypoint"] == ["/bin/sh", "-c"] and c["Cmd"] == ["echo hi"]
    assert c["Env"] == ["PATH=/bin", "A=1"] and c["WorkingDir"] == "/tmp"
    assert c["StopSignal"] == "SIGINT" and c["Labels"] == {"l": "v"}
    assert info["annotations"] == {"org.example/a": "b"}


def test_username_for_a_named_user(images, registry):
    pushed = harness.push(registry, harness.busybox_image(user="nobody"), "named-user")
    pull(images, pushed.ref)
    img = status(images, pushed.ref).image
    assert img.username == "nobody"
    assert not img.HasField("uid")


def test_remove_collects_blobs_and_layers(images, busybox):
    image_id = pull(images, busybox.ref)
    remove(images, busybox.ref)
    assert status(images, image_id).HasField("image") is False
    assert stored(images) == ([], [])
    remove(images, busybox.ref)  # again: an unknown image is no error


def test_shared_layers_stay_while_an_image_uses_them(images, registry):
    base = harness.busybox_layer()
    a = harness.push(registry, harness.Image([base], cmd=["a"]), "shared-a")
    b = harness.push(registry, harness.Image([base, harness.Layer().file("b", "b")], cmd=["b"]),
                     "shared-b")
    pull(images, a.ref)
    pull(images, b.ref)
    assert len(stored(images)[1]) == 2  # base, base+b
    remove(images, a.ref)
    assert len(stored(images)[1]) == 2, "the base layer is still b's"
    remove(images, b.ref)
    assert stored(images) == ([], [])


def test_a_tag_moves_to_the_image_pulled_last(images, registry):
    one = harness.push(registry, harness.busybox_image(cmd=["one"]), "moving")
    first = pull(images, one.ref)
    harness.push(registry, harness.busybox_image(cmd=["two"]), "moving")
    second = pull(images, one.ref)
    assert first != second
    assert list(status(images, first).image.repo_tags) == []
    assert list(status(images, second).image.repo_tags) == [one.ref]


def test_multi_arch_index_picks_linux_amd64(images, registry):
    amd64 = harness.busybox_image(cmd=["amd64"])
    arm64 = harness.busybox_image(cmd=["arm64"], architecture="arm64", variant="v8")
    pushed = harness.push(registry, harness.Index([arm64, amd64],
                                                  annotations={"idx": "1"}), "multi")
    image_id = pull(images, pushed.ref)
    assert image_id == harness.digest_of(amd64.config_blob().data)
    img = status(images, pushed.ref).image
    assert list(img.repo_digests) == [pushed.ref_by_digest]
    assert dict(img.spec.annotations) == {"idx": "1"}


def test_docker_schema2_manifest_list(images, registry):
    amd64 = harness.busybox_image(cmd=["d"], docker=True)
    pushed = harness.push(registry, harness.Index([amd64], docker=True), "docker-list")
    assert pull(images, pushed.ref) == harness.digest_of(amd64.config_blob().data)


@pytest.mark.parametrize("compression", [None, "zstd"])
def test_uncompressed_and_zstd_layers(images, registry, compression):
    pushed = harness.push(registry, harness.busybox_image(compression=compression),
                          f"layer-{compression or 'plain'}")
    image_id = pull(images, pushed.ref)
    layer_dir = json.loads(status(images, image_id, verbose=True).info["info"])["layerDirs"][0]
    assert os.access(f"{layer_dir}/bin/busybox", os.X_OK)


def test_whiteouts_and_opaque_dirs(images, registry):
    base = harness.Layer().file("etc/gone", "x").file("var/cache/old", "o").file("keep", "k")
    top = harness.Layer().whiteout("etc/gone").opaque("var/cache").file("var/cache/new", "n")
    pushed = harness.push(registry, harness.Image([base, top]), "whiteouts")
    image_id = pull(images, pushed.ref)
    dirs = json.loads(status(images, image_id, verbose=True).info["info"])["layerDirs"]
    upper = dirs[0]
    st = os.lstat(f"{upper}/etc/gone")
    assert os.major(st.st_rdev) == 0 and os.minor(st.st_rdev) == 0
    assert os.getxattr(f"{upper}/var/cache", "trusted.overlay.opaque") == b"y"


def test_setuid_and_ownership_survive(images, registry):
    layer = harness.Layer().file("bin/su", "#!", mode=0o4755).file("home/u/f", "x", uid=1000,
                                                                    gid=1000)
    pushed = harness.push(registry, harness.Image([layer]), "setuid")
    image_id = pull(images, pushed.ref)
    layer_dir = json.loads(status(images, image_id, verbose=True).info["info"])["layerDirs"][0]
    assert os.stat(f"{layer_dir}/bin/su").st_mode & 0o7777 == 0o4755
    st = os.stat(f"{layer_dir}/home/u/f")
    assert (st.st_uid, st.st_gid) == (1000, 1000)


# Hostile layers, bombs and giants: test_image_pull_hostile_images.py.


def test_image_fs_info_counts_the_store(images, busybox):
    pb = images.pb
    empty = images.image.ImageFsInfo(pb.ImageFsInfoRequest()).image_filesystems[0]
    pull(images, busybox.ref)
    full = images.image.ImageFsInfo(pb.ImageFsInfoRequest()).image_filesystems[0]
    assert full.fs_id.mountpoint == str(images.root)
    assert full.used_bytes.value > empty.used_bytes.value + 1_000_000
    # Every entry of the layer (busybox, its applet links, /etc, ...) is an inode.
    assert full.inodes_used.value >= len(harness.busybox_layer().entries)
    assert full.timestamp > 0


def test_stream_images_lists_the_same_images(images, busybox, sleeper):
    pull(images, busybox.ref)
    pull(images, sleeper.ref)
    pb = images.pb
    streamed = [i.id for r in images.image.StreamImages(pb.StreamImagesRequest()) for i in r.images]
    assert sorted(streamed) == sorted(i.id for i in list_images(images))
    assert len(streamed) == 2


def test_concurrent_pulls_share_one_pull(images, busybox):
    results, errors = [], []

    def go():
        try:
            results.append(pull(images, busybox.ref))
        except grpc.RpcError as e:
            errors.append(e)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(results)) == 1 and len(results) == 4
    assert len(stored(images)[1]) == 1


def test_images_survive_a_restart(images, busybox):
    image_id = pull(images, busybox.ref)
    images.restart()
    assert status(images, busybox.ref).image.id == image_id


# --- bad input ---------------------------------------------------------------

def test_unknown_image_status_is_empty_and_remove_succeeds(images):
    assert not status(images, "docker.io/library/never-pulled:1").HasField("image")
    assert not status(images, "sha256:" + "0" * 64).HasField("image")
    remove(images, "docker.io/library/never-pulled:1")


@pytest.mark.parametrize("ref,why", [
    ("", "image reference is empty"),
    ("library/Upper", "not a valid repository name component"),
    ("a/../b", "not a valid repository name component"),
    ("busybox@sha256:123", "digest"),
    ("busybox:bad tag", "not a valid tag"),
])
def test_bad_references_are_invalid_argument(images, ref, why):
    with pytest.raises(grpc.RpcError) as e:
        pull(images, ref)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert why in e.value.details()


def test_unknown_tag_is_not_found_naming_the_reference(images, registry):
    ref = f"{registry.host}/busybox:no-such-tag"
    with pytest.raises(grpc.RpcError) as e:
        pull(images, ref)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert ref in e.value.details()


def test_registry_nobody_listens_on_is_unavailable(images):
    with pytest.raises(grpc.RpcError) as e:
        pull(images, "127.0.0.1:1/busybox:latest")
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "127.0.0.1:1/busybox:latest" in e.value.details()
    assert list_images(images) == [] and stored(images) == ([], [])


def test_unknown_registry_host_is_unavailable_naming_it(images):
    ref = "registry.crius-test.invalid/busybox:latest"  # .invalid never resolves
    with pytest.raises(grpc.RpcError) as e:
        pull(images, ref)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert ref in e.value.details() and "resolve host" in e.value.details()
    assert list_images(images) == []


def test_index_without_linux_amd64_names_what_it_offers(images, registry):
    arm = harness.busybox_image(cmd=["arm"], architecture="arm64")
    pushed = harness.push(registry, harness.Index([arm]), "arm-only")
    with pytest.raises(grpc.RpcError) as e:
        pull(images, pushed.ref)
    assert "linux/amd64" in e.value.details() and "linux/arm64" in e.value.details()
    assert stored(images) == ([], [])


def test_https_registry_without_trust_fails_clearly(make_daemon, registry, busybox):
    d = make_daemon()  # the test registry speaks http; without "insecure" crius speaks https
    with pytest.raises(grpc.RpcError) as e:
        pull(d, busybox.ref)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert busybox.ref in e.value.details()


@pytest.mark.parametrize("point", ["image_pull.after_manifest", "image_pull.after_layers"])
def test_crash_mid_pull_leaves_no_record_and_no_partial_layer(make_daemon, registry, busybox,
                                                              point):
    d = make_daemon(config=insecure_config(registry), failpoints=[point])
    with pytest.raises(grpc.RpcError):
        pull(d, busybox.ref)
    assert d.wait_exit() == -9
    d.failpoints = []
    d.start()
    assert list_images(d) == []
    assert stored(d) == ([], []), "restart collects what the crashed pull fetched"
    assert pull(d, busybox.ref)
    assert len(stored(d)[1]) == 1


def test_crash_after_the_record_keeps_the_image(make_daemon, registry, busybox):
    d = make_daemon(config=insecure_config(registry), failpoints=["image_pull.after_record"])
    with pytest.raises(grpc.RpcError):
        pull(d, busybox.ref)
    assert d.wait_exit() == -9
    d.failpoints = []
    d.start()
    assert status(d, busybox.ref).image.repo_tags == [busybox.ref]


# --- metrics ------------------------------------------------------------------------

def test_pulls_are_counted_by_outcome_bytes_and_time(make_daemon, registry, busybox):
    from test_metrics import scrape, value
    from harness.util import free_port
    address = f"127.0.0.1:{free_port()}"
    d = make_daemon(config=insecure_config(registry) + f'[metrics]\naddress = "{address}"\n')
    before = scrape(address)
    pull(d, busybox.ref)
    with pytest.raises(grpc.RpcError):
        pull(d, f"{registry.host}/busybox:no-such-tag")
    after = scrape(address)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("crius_image_pulls_total", outcome="success") == 1
    assert delta("crius_image_pulls_total", outcome="failure") == 1
    blobs = sum(len(b.data) for b in harness.busybox_image().blobs())
    manifest = len(harness.busybox_image().manifest_blob().data)
    assert delta("crius_image_pull_bytes_total") == blobs + manifest
    assert delta("crius_image_pull_duration_seconds_count") == 2
    assert delta("crius_image_pull_duration_seconds_sum") > 0
