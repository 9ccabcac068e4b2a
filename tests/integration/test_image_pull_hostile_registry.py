"""PullImage against a registry that lies or breaks: nothing a registry says
is trusted, and a failed pull leaves no image, blob or layer behind."""
import json

import grpc
import pytest

import harness
from harness.fake_registry import FakeRegistry

pytestmark = pytest.mark.usefixtures("leak_check")


@pytest.fixture
def fake():
    with FakeRegistry() as f:
        yield f


@pytest.fixture
def d(make_daemon, fake):
    return make_daemon(config=f'[registry]\ninsecure = ["{fake.host}"]\n')


def serve(fake, image, repo="img", tag="latest", lie=None):
    """Serves image's blobs and manifest; lie(blobs dict) may change them."""
    blobs = {b.digest: b.data for b in image.blobs()}
    cut = {}
    if lie:
        lie(blobs, cut)
    for digest, data in blobs.items():
        fake.blob(repo, digest, data, cut_after=cut.get(digest))
    m = image.manifest_blob()
    fake.manifest(repo, tag, m.data, m.media_type)
    return f"{fake.host}/{repo}:{tag}"


def pull(d, ref):
    pb = d.pb
    return d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=60)


def assert_nothing_kept(d):
    pb = d.pb
    assert list(d.image.ListImages(pb.ListImagesRequest()).images) == []
    import os
    assert os.listdir(d.root / "content/blobs/sha256") == []
    assert os.listdir(d.root / "layers") == []
    assert os.listdir(d.root / "content/ingest") == []


def small_image():
    return harness.Image([harness.Layer().file("hello", "world")], cmd=["/hello"])


def test_the_fake_registry_serves_a_good_image(d, fake):
    ref = serve(fake, small_image())
    assert pull(d, ref).image_ref == small_image().config_blob().digest


def test_layer_digest_mismatch_fails_the_pull(d, fake):
    image = small_image()
    layer = image.layer_blobs()[0].digest
    ref = serve(fake, image, lie=lambda blobs, cut: blobs.__setitem__(layer, b"x" * len(blobs[layer])))
    with pytest.raises(grpc.RpcError) as e:
        pull(d, ref)
    assert e.value.code() == grpc.StatusCode.DATA_LOSS
    assert "digest mismatch" in e.value.details() and ref in e.value.details()
    assert_nothing_kept(d)


def test_config_digest_mismatch_fails_the_pull(d, fake):
    image = small_image()
    config = image.config_blob().digest
    ref = serve(fake, image, lie=lambda blobs, cut: blobs.__setitem__(config, b"{}"))
    with pytest.raises(grpc.RpcError) as e:
        pull(d, ref)
    assert "digest mismatch" in e.value.details()
    assert_nothing_kept(d)


def test_manifest_by_digest_that_does_not_match_fails(d, fake):
    image = small_image()
    serve(fake, image)
    wrong = "sha256:" + "1" * 64
    m = image.manifest_blob()
    fake.manifests[("img", wrong)] = (m.data, m.media_type)
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{fake.host}/img@{wrong}")
    assert "digest mismatch" in e.value.details()
    assert_nothing_kept(d)


def test_registry_gone_mid_blob_fails_and_the_next_pull_succeeds(d, fake):
    image = small_image()
    layer = image.layer_blobs()[0]
    ref = serve(fake, image, lie=lambda blobs, cut: cut.__setitem__(layer.digest, len(layer.data) // 2))
    with pytest.raises(grpc.RpcError) as e:
        pull(d, ref)
    assert ref in e.value.details()
    assert_nothing_kept(d)
    serve(fake, image)  # the registry is back
    assert pull(d, ref).image_ref == image.config_blob().digest


def test_unknown_manifest_media_type_is_refused(d, fake):
    fake.manifest("img", "latest", json.dumps({"schemaVersion": 2, "mediaType": "application/x-nope"}),
                  "application/x-nope")
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{fake.host}/img:latest")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert '"application/x-nope" is not supported' in e.value.details()
    assert_nothing_kept(d)


def test_unknown_layer_media_type_is_refused_before_any_download(d, fake):
    image = small_image()
    ref = serve(fake, image)
    manifest = json.loads(image.manifest_blob().data)
    manifest["layers"][0]["mediaType"] = "application/vnd.example.foreign"
    body = json.dumps(manifest)
    fake.manifest("img", "latest", body, manifest["mediaType"])
    with pytest.raises(grpc.RpcError) as e:
        pull(d, ref)
    assert "application/vnd.example.foreign" in e.value.details()
    assert fake.hits(f"/v2/img/blobs/{image.layer_blobs()[0].digest}") == 0
    assert_nothing_kept(d)


def test_manifest_that_is_not_json_is_refused(d, fake):
    fake.manifest("img", "latest", "{not json", "application/vnd.oci.image.manifest.v1+json")
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{fake.host}/img:latest")
    assert "not valid JSON" in e.value.details()


def test_diff_ids_that_do_not_match_the_layers_fail(d, fake):
    image = small_image()
    config = json.loads(image.config_blob().data)
    config["rootfs"]["diff_ids"] = ["sha256:" + "2" * 64]
    config_body = json.dumps(config).encode()
    config_digest = harness.digest_of(config_body)
    manifest = json.loads(image.manifest_blob().data)
    manifest["config"] = {"mediaType": manifest["config"]["mediaType"], "digest": config_digest,
                          "size": len(config_body)}
    fake.blob("img", config_digest, config_body)
    layer = image.layer_blobs()[0]
    fake.blob("img", layer.digest, layer.data)
    fake.manifest("img", "latest", json.dumps(manifest), manifest["mediaType"])
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{fake.host}/img:latest")
    assert "diff_id" in e.value.details()
    assert_nothing_kept(d)


def test_images_sharing_layers_pulled_at_once_fetch_each_blob_once(d, fake):
    import threading
    base = harness.busybox_layer()
    a = harness.Image([base, harness.Layer().file("a", "a")], cmd=["a"])
    b = harness.Image([base, harness.Layer().file("b", "b")], cmd=["b"])
    refs = [serve(fake, a, repo="shared", tag="a"), serve(fake, b, repo="shared", tag="b")]
    errors = []

    def go(ref):
        try:
            pull(d, ref)
        except grpc.RpcError as e:
            errors.append(e)

    threads = [threading.Thread(target=go, args=(r,)) for r in refs * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert fake.hits(f"/v2/shared/blobs/{a.layer_blobs()[0].digest}") == 1
