"""The harness builds OCI images offline, pushes them, and reads back what a puller sees."""
import gzip
import hashlib
import io
import json
import signal
import socket
import subprocess
import tarfile

import pytest

import harness
from harness import oci
from harness.util import wait_for

pytestmark = pytest.mark.usefixtures("leak_check")


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pull(registry, repo, reference):
    """Manifest, config and layer tars (decompressed) as a client would fetch them,
    checking every digest on the way."""
    body, media_type, digest = registry.get_manifest(repo, reference)
    assert digest == sha256(body)
    manifest = json.loads(body)
    assert manifest["mediaType"] == media_type
    config_blob = registry.get_blob(repo, manifest["config"]["digest"])
    assert sha256(config_blob) == manifest["config"]["digest"]
    assert len(config_blob) == manifest["config"]["size"]
    config = json.loads(config_blob)
    tars = []
    for desc in manifest["layers"]:
        blob = registry.get_blob(repo, desc["digest"])
        assert sha256(blob) == desc["digest"] and len(blob) == desc["size"]
        tars.append(gzip.decompress(blob) if desc["mediaType"].endswith("gzip") else blob)
    assert config["rootfs"]["diff_ids"] == [sha256(t) for t in tars]
    return manifest, config, tars


def members(tar_bytes):
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as t:
        return {m.name: (m, t.extractfile(m).read() if m.isreg() else None) for m in t}


def test_busybox_image_round_trips_through_the_registry(registry):
    pushed = oci.push(registry, oci.busybox_image(), "harness/busybox", "1")
    assert pushed.ref == f"{registry.host}/harness/busybox:1"

    manifest, config, [layer] = pull(registry, "harness/busybox", "1")
    assert manifest["mediaType"] == oci.MT_OCI_MANIFEST
    assert manifest["layers"][0]["mediaType"] == oci.MT_OCI_LAYER_GZIP
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    assert config["config"]["Cmd"] == ["sh"]
    files = members(layer)
    with open("/bin/busybox", "rb") as f:
        assert files["bin/busybox"][1] == f.read()
    assert files["bin/busybox"][0].mode == 0o755
    assert files["bin/sh"][0].issym() and files["bin/sh"][0].linkname == "busybox"
    assert files["bin/ls"][0].issym()
    assert files["etc/passwd"][1].startswith(b"root:x:0:0:")
    assert files["tmp"][0].isdir() and files["tmp"][0].mode == 0o1777
    assert pull(registry, "harness/busybox", pushed.digest)[0] == manifest


def test_sleeper_image_runs_until_sigterm_and_exits_0(registry, tmp):
    pushed = oci.push(registry, oci.sleeper_image(stop_signal="SIGTERM"), "harness/sleeper")
    manifest, config, [layer] = pull(registry, "harness/sleeper", pushed.digest)
    assert config["config"]["Entrypoint"] == ["/sleeper"]
    assert config["config"]["StopSignal"] == "SIGTERM"
    sleeper = tmp / "sleeper"
    sleeper.write_bytes(members(layer)["sleeper"][1])
    sleeper.chmod(0o755)
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = subprocess.Popen([sleeper], stdout=subprocess.PIPE)
        try:
            assert b"waiting" in proc.stdout.readline()
            proc.send_signal(sig)
            assert proc.wait(5) == 0
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()


def test_sleeper_as_pid_1_exits_0_on_sigterm(tmp):
    sleeper = harness.fixture_binary("sleeper")
    # unshare forks the sleeper as pid 1 of a new pid namespace and waits for it.
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", sleeper],
                            stdout=subprocess.PIPE)
    try:
        assert b"pid 1 " in proc.stdout.readline()
        child = int(open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()[0])
        # Reaping as init: an orphan inside the namespace must not stay a zombie.
        subprocess.run(["nsenter", f"--target={child}", "--pid", "--", "sh", "-c",
                        "sleep 0.1 & exit 0"], check=True)
        children = f"/proc/{child}/task/{child}/children"
        wait_for(lambda: open(children).read().strip() == "", 5, what="sleeper to reap")
        subprocess.run(["kill", "-TERM", str(child)], check=True)
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_session_images_are_pushed(registry, busybox, sleeper):
    for pushed, repo in ((busybox, "busybox"), (sleeper, "sleeper")):
        assert pushed.ref == f"{registry.host}/{repo}:latest"
        assert pushed.ref_by_digest == f"{registry.host}/{repo}@{pushed.digest}"
        assert registry.get_manifest(repo, "latest")[2] == pushed.digest


def test_layer_entries_keep_types_modes_and_owners():
    layer = oci.Layer([{"type": "dir", "path": "/data", "mode": 0o700, "uid": 1000, "gid": 1000},
                       {"type": "file", "path": "/data/a", "data": "A", "mode": 0o600,
                        "uid": 1000, "gid": 1001},
                       {"type": "hardlink", "path": "/data/b", "target": "/data/a"},
                       {"type": "symlink", "path": "/link", "target": "data/a"}])
    layer.file("/deep/er/file", b"x").whiteout("/old/gone").opaque("/opaque")
    files = members(layer.tar())
    assert files["data"][0].isdir() and files["data"][0].mode == 0o700
    assert (files["data/a"][0].uid, files["data/a"][0].gid, files["data/a"][1]) == (1000, 1001, b"A")
    assert files["data/b"][0].islnk() and files["data/b"][0].linkname == "data/a"
    assert files["link"][0].linkname == "data/a"
    assert files["deep/er"][0].isdir()
    assert "old/.wh.gone" in files and "opaque/.wh..wh..opq" in files
    assert {m.mtime for m, _ in files.values()} == {oci.EPOCH}


def test_layer_from_directory_keeps_links(tmp):
    src = tmp / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_text("data")
    (src / "d" / "f").chmod(0o640)
    (src / "d" / "hard").hardlink_to(src / "d" / "f")
    (src / "sym").symlink_to("d/f")
    files = members(oci.Layer().add_tree(src, "opt").tar())
    assert files["opt/d/f"][1] == b"data" and files["opt/d/f"][0].mode == 0o640
    assert files["opt/d/hard"][0].islnk() and files["opt/d/hard"][0].linkname == "opt/d/f"
    assert files["opt/sym"][0].issym() and files["opt/sym"][0].linkname == "d/f"


def test_images_are_deterministic():
    a, b = oci.busybox_image(), oci.busybox_image()
    assert a.manifest_blob().digest == b.manifest_blob().digest


def test_uncompressed_layer_digest_is_its_diff_id(registry):
    image = oci.Image([oci.Layer({"hello": "world\n", "empty/": None})], cmd=["/hello"],
                      compression=None, working_dir="/empty", user="65534:65534",
                      labels={"a": "b"})
    pushed = oci.push(registry, image, "harness/plain")
    manifest, config, [tar] = pull(registry, "harness/plain", pushed.digest)
    assert manifest["layers"][0]["mediaType"] == oci.MT_OCI_LAYER
    assert manifest["layers"][0]["digest"] == config["rootfs"]["diff_ids"][0]
    assert config["config"]["WorkingDir"] == "/empty" and config["config"]["User"] == "65534:65534"
    assert members(tar)["hello"][1] == b"world\n"


def test_docker_schema2_image(registry):
    pushed = oci.push(registry, oci.sleeper_image(docker=True), "harness/docker")
    manifest, config, _ = pull(registry, "harness/docker", "latest")
    assert pushed.media_type == manifest["mediaType"] == oci.MT_DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == oci.MT_DOCKER_CONFIG
    assert manifest["layers"][0]["mediaType"] == oci.MT_DOCKER_LAYER_GZIP


@pytest.mark.parametrize("docker", [False, True], ids=["oci-index", "docker-list"])
def test_multi_platform_index(registry, docker):
    images = [oci.sleeper_image(docker=docker),
              oci.sleeper_image(docker=docker, architecture="arm64", variant="v8",
                                annotations=None if docker else {"crius.test/arch": "arm64"})]
    index = oci.Index(images, docker=docker,
                      annotations=None if docker else {"crius.test/kind": "multi"})
    pushed = oci.push(registry, index, "harness/multi", "docker" if docker else "oci")

    body, media_type, digest = registry.get_manifest("harness/multi", pushed.tag)
    assert digest == pushed.digest == sha256(body)
    got = json.loads(body)
    assert media_type == got["mediaType"] == (oci.MT_DOCKER_LIST if docker else oci.MT_OCI_INDEX)
    assert [m["platform"] for m in got["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"}]
    if not docker:
        assert got["annotations"] == {"crius.test/kind": "multi"}
    for desc, image in zip(got["manifests"], images):
        assert desc["digest"] == image.manifest_blob().digest
        manifest, config, _ = pull(registry, "harness/multi", desc["digest"])
        assert config["architecture"] == image.architecture
        assert manifest.get("annotations") == image.annotations


def test_registry_rejects_a_manifest_whose_blobs_are_missing(registry):
    image = oci.Image([oci.Layer({"never-pushed": "x"})])
    m = image.manifest_blob()
    with pytest.raises(harness.RegistryError, match="HTTP 400"):
        registry.put_manifest("harness/broken", "latest", m.data, m.media_type)


def test_registry_in_a_test_netns_answers_only_inside_it(netns):
    with harness.Registry(netns=netns) as reg:
        assert reg.request("GET", "/v2/").status == 200
        pushed = oci.push(reg, oci.sleeper_image(), "inside")
        assert reg.get_manifest("inside", "latest")[2] == pushed.digest
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", reg.port), timeout=2).close()
    assert reg.proc.returncode is not None
