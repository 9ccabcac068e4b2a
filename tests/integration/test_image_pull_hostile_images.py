"""Hostile images, built by the tests: layers that try to write outside their
directory (.., absolute names, symlink and hard link chains, whiteouts of odd
names), bombs (a layer, a manifest, a config), an index of 10,000 entries,
device nodes and setuid files, and layers that repeat. Each hostile pull fails
with a named error and leaves no image, blob, layer or ingest file; nothing
lands outside criusd's root (the symlinks point into a test-made directory
that must stay as it was)."""
import gzip
import json
import os
import tarfile
import time

import grpc
import pytest

import harness
from harness.fake_registry import FakeRegistry
from harness.fixtures import fixture_binary

pytestmark = pytest.mark.usefixtures("leak_check")


def insecure(*hosts):
    return "[registry]\ninsecure = [" + ", ".join(f'"{h}"' for h in hosts) + "]\n"


@pytest.fixture
def d(make_daemon, registry):
    d = make_daemon(config=insecure(registry.host))
    yield d
    if d.running:  # pods the container tests ran
        pb = d.pb
        for p in d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items:
            d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=30)
            d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=30)


@pytest.fixture
def outside(tmp):
    """Where hostile symlinks point: a directory with one file, which must stay so."""
    path = tmp / "outside"
    path.mkdir()
    (path / "victim").write_text("untouched\n")
    return path


def assert_untouched(outside):
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_text() == "untouched\n"
    assert not os.path.lexists("/tmp/crius-escape")


def pull(d, ref):
    pb = d.pb
    return d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=60).image_ref


def image_status(d, ref):
    pb = d.pb
    return d.image.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=ref), verbose=True))


def layer_dirs(d, ref):
    """The image's layer directories, lowest first."""
    return json.loads(image_status(d, ref).info["info"])["layerDirs"][::-1]


def remove(d, ref):
    d.image.RemoveImage(d.pb.RemoveImageRequest(image=d.pb.ImageSpec(image=ref)))


def stored(d):
    return (sorted(os.listdir(d.root / "content/blobs/sha256")), sorted(os.listdir(d.root / "layers")),
            os.listdir(d.root / "content/ingest"))


def assert_nothing_kept(d):
    assert list(d.image.ListImages(d.pb.ListImagesRequest()).images) == []
    assert stored(d) == ([], [], [])


def pull_fails(d, ref, code, why):
    with pytest.raises(grpc.RpcError) as e:
        pull(d, ref)
    assert e.value.code() == code, e.value.details()
    assert why in e.value.details() and ref in e.value.details(), e.value.details()
    assert_nothing_kept(d)
    return e.value.details()


def member(name, kind=tarfile.REGTYPE, target=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, target, 0o644
    return info


def f(name, data=b"x"):
    return member(name), data


def dr(name):
    info = member(name, tarfile.DIRTYPE)
    info.mode = 0o755
    return info, b""


def sym(name, target):
    return member(name, tarfile.SYMTYPE, target), b""


def hard(name, target):
    return member(name, tarfile.LNKTYPE, target), b""


# Each case: the layer's members (given the outside directory) and what the error says.
OUT = "leads outside the layer"
HOSTILE = {
    "dotdot": (lambda o: [f("../crius-escape")], '".." component'),
    "absolute": (lambda o: [f("/tmp/crius-escape")], "absolute path"),
    "symlink-out": (lambda o: [sym("evil", str(o)), f("evil/crius-escape")], OUT),
    "symlink-up": (lambda o: [sym("up", "../../.."), f("up/tmp/crius-escape")], OUT),
    "hardlink-out": (lambda o: [hard("h", "../../etc/passwd")], '".." component'),
    "hardlink-absolute": (lambda o: [hard("h", "/etc/passwd")], "absolute path"),
    # a -> b -> c -> outside
    "symlink-chain": (lambda o: [sym("c", str(o)), sym("b", "c"), sym("a", "b"),
                                 f("a/crius-escape")], OUT),
    # Each hop stays inside but the third: l1 -> x/l2 -> x/y/l3 -> x/y/../../.. (above the root).
    "relative-chain-third-hop": (lambda o: [dr("x"), dr("x/y"), sym("x/y/l3", "../../.."),
                                            sym("x/l2", "y/l3"), sym("l1", "x/l2"),
                                            f("l1/crius-escape")], OUT),
    "file-through-nested-chain": (lambda o: [sym("b", str(o)), dr("d"), sym("d/a", "../b"),
                                             f("d/a/crius-escape")], OUT),
    "hardlink-through-symlink": (lambda o: [sym("a", str(o)), hard("h", "a/victim")], OUT),
    # h is a second name of the symlink s (harmless), then a file written through h.
    "hardlink-to-symlink-out": (lambda o: [sym("s", str(o)), hard("h", "s"), f("h/crius-escape")], OUT),
    # A directory replaced by a symlink in the same layer, then a file under the name.
    "dir-then-symlink": (lambda o: [dr("x"), f("x/a"), sym("x", str(o)), f("x/crius-escape")], OUT),
    "whiteout-dotdot": (lambda o: [f(".wh...", b"")], 'hides ".."'),
    "whiteout-dot": (lambda o: [dr("a"), f("a/.wh..", b"")], 'hides "."'),
    "whiteout-nothing": (lambda o: [f(".wh.", b"")], 'hides ""'),
    "whiteout-above-the-root": (lambda o: [f("../.wh.victim", b"")], '".." component'),
    "whiteout-through-symlink": (lambda o: [sym("evil", str(o)), f("evil/.wh.victim", b"")], OUT),
    "opaque-through-symlink": (lambda o: [sym("evil", str(o)), f("evil/.wh..wh..opq", b"")], OUT),
    "whiteout-as-directory": (lambda o: [f(".wh.a/b")], 'under the whiteout ".wh.a"'),
    "whiteout-with-slash": (lambda o: [f(".wh./etc/passwd")], 'under the whiteout ".wh."'),
    "opaque-as-directory": (lambda o: [dr("a"), f("a/.wh..wh..opq/b")],
                            'under the whiteout ".wh..wh..opq"'),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_layers_fail_the_pull_and_leave_nothing(d, registry, outside, name):
    members, why = HOSTILE[name]
    layer = harness.RawLayer(harness.raw_tar(*members(outside)))
    pushed = harness.push(registry, harness.Image([layer]), f"hostile-{name}")
    pull_fails(d, pushed.ref, grpc.StatusCode.INVALID_ARGUMENT, why)
    assert_untouched(outside)


def test_a_decompression_bomb_fails_at_the_configured_limit_and_leaves_nothing(make_daemon, registry):
    # 64 MiB of zeros is about 64 KiB gzipped: a thousand times smaller.
    layer = harness.Layer().file("zeros", bytes(64 << 20))
    image = harness.Image([layer])
    assert len(image.layer_blobs()[0].data) * 1000 < 64 << 20
    pushed = harness.push(registry, image, "bomb")
    d = make_daemon(config=insecure(registry.host) + "max_unpacked_layer_mib = 16\n")
    pull_fails(d, pushed.ref, grpc.StatusCode.RESOURCE_EXHAUSTED,
               "passes 16 MiB (registry.max_unpacked_layer_mib)")
    # The limit is the node's choice: above the layer's size it is pulled.
    d.stop()
    d.config_path.write_text(insecure(registry.host) + "max_unpacked_layer_mib = 65\n")
    d.start()
    pull(d, pushed.ref)


# --- layers that change a name's type: each is unpacked alone, overlay decides the view

class Pod:
    """One pod on image `ref`; run(script) -> (exit code, output)."""

    def __init__(self, d, tmp, ref):
        pb = self.pb = d.pb
        self.d, self.ref, self.logs, self.n = d, ref, tmp / "logs", 0
        self.cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="h", namespace="hostile",
                                                                      uid="u-hostile"),
                                       log_directory=str(self.logs))
        self.id = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=self.cfg),
                                          timeout=60).pod_sandbox_id

    def run(self, script, image=None, **security):
        pb, rt = self.pb, self.d.runtime
        self.n += 1
        cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=f"c{self.n}"),
                                 image=pb.ImageSpec(image=image or self.ref),
                                 command=["sh", "-c", script], log_path=f"c{self.n}.log")
        for key, value in security.items():
            if key == "run_as_user":
                cfg.linux.security_context.run_as_user.value = value
            else:
                setattr(cfg.linux.security_context, key, value)
        cid = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=self.id, config=cfg,
                                                           sandbox_config=self.cfg),
                                 timeout=60).container_id
        rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
        deadline = time.monotonic() + 20
        while (s := rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status).state \
                != pb.CONTAINER_EXITED:
            assert time.monotonic() < deadline, f"{script!r} still running"
            time.sleep(0.05)
        rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=60)
        text = (self.logs / cfg.log_path).read_text()
        return s.exit_code, "".join(line.split(" ", 3)[3] + "\n" for line in text.splitlines())


def test_a_directory_over_a_symlink_out_is_a_directory_and_writes_nothing_outside(d, registry, tmp,
                                                                                 outside):
    """Layer 1 has evil -> outside; layer 2 a directory evil with a file. The
    file lands in layer 2's directory; the container sees the directory (as
    under Docker and containerd: the upper entry hides the lower symlink)."""
    one = harness.Layer().symlink("evil", str(outside))
    two = harness.Layer().file("evil/crius-escape", "in layer 2\n")
    pushed = harness.push(registry, harness.Image([harness.busybox_layer(), one, two]), "sym-then-dir")
    pull(d, pushed.ref)
    assert_untouched(outside)
    _, l1, l2 = layer_dirs(d, pushed.ref)
    assert os.readlink(f"{l1}/evil") == str(outside)
    assert os.path.isdir(f"{l2}/evil") and not os.path.islink(f"{l2}/evil")
    code, out = Pod(d, tmp, pushed.ref).run("[ -d /evil ] && [ ! -L /evil ] && ls /evil && cat /evil/*")
    assert (code, out) == (0, "crius-escape\nin layer 2\n")
    assert_untouched(outside)


def test_a_symlink_out_between_two_directories_cuts_the_lower_one(d, registry, tmp, outside):
    """Layer 1: directory x with old; layer 2: x -> outside; layer 3: x/new.
    Layer 3's x is a directory over a symlink: the merge stops there, so the
    container's x holds new only, and outside stays as it was."""
    one = harness.Layer().file("x/old", "old\n")
    two = harness.Layer().symlink("x", str(outside))
    three = harness.Layer().file("x/new", "new\n")
    pushed = harness.push(registry, harness.Image([harness.busybox_layer(), one, two, three]),
                          "dir-sym-dir")
    pull(d, pushed.ref)
    assert_untouched(outside)
    pod = Pod(d, tmp, pushed.ref)
    assert pod.run("ls /x && cat /x/new && [ ! -L /x ]") == (0, "new\n" "new\n")
    # Writing into x from the container goes to its upper directory, not outside.
    assert pod.run("echo hi > /x/victim && cat /x/victim")[0] == 0
    assert_untouched(outside)


def test_a_file_over_a_symlink_replaces_the_link_not_its_target(d, registry, outside):
    layer = harness.RawLayer(harness.raw_tar(sym("s", str(outside / "victim")), f("s", b"mine\n"),
                                             sym("evil", str(outside)), dr("evil"),
                                             f("evil/file", b"inside\n")))
    pushed = harness.push(registry, harness.Image([layer]), "file-over-symlink")
    pull(d, pushed.ref)
    (top,) = layer_dirs(d, pushed.ref)
    assert open(f"{top}/s").read() == "mine\n" and not os.path.islink(f"{top}/s")
    assert open(f"{top}/evil/file").read() == "inside\n"
    assert_untouched(outside)


# --- device nodes and setuid files: kept, as containerd and CRI-O keep them, and harmless

def device(name, kind, major, minor):
    info = member(name, kind)
    info.devmajor, info.devminor, info.mode = major, minor, 0o666
    return info, b""


def test_image_device_nodes_and_setuid_files_are_kept_and_give_a_container_nothing(d, registry, tmp):
    with open(fixture_binary("euid"), "rb") as fh:
        euid = fh.read()
    nodes = harness.RawLayer(harness.raw_tar(device("mem", tarfile.CHRTYPE, 1, 1),
                                             device("disk", tarfile.BLKTYPE, 7, 0)))
    suid = harness.Layer().file("bin/euid", euid, mode=0o4755)
    pushed = harness.push(registry, harness.Image([harness.busybox_layer(), nodes, suid]),
                          "devices-setuid")
    pull(d, pushed.ref)
    _, layer, top = layer_dirs(d, pushed.ref)
    st = os.lstat(f"{layer}/mem")
    assert os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 1 and st.st_mode & 0o777 == 0o666
    assert os.major(os.lstat(f"{layer}/disk").st_rdev) == 7
    assert os.stat(f"{top}/bin/euid").st_mode & 0o7777 == 0o4755
    # Only root on the node reaches the layer directories.
    assert os.stat(d.root / "layers").st_mode & 0o077 == 0
    pod = Pod(d, tmp, pushed.ref)
    probe = "ls -l /mem /disk; head -c 1 /mem && echo opened-mem; head -c 1 /disk && echo opened-disk"
    code, out = pod.run(probe)
    assert "opened" not in out and out.count("Permission denied") == 2, out
    assert " 1,   1 " in out and " 7,   0 " in out, out
    # The setuid bit works (as in any image), and no_new_privs
    # (allowPrivilegeEscalation: false) takes it away.
    assert "euid=0" in pod.run("/bin/euid", run_as_user=1000)[1]
    _, out = pod.run(f"/bin/euid; {probe}", run_as_user=1000, no_new_privs=True)
    assert "ruid=1000 euid=1000" in out and "opened" not in out, out


# --- layers that repeat -------------------------------------------------------------

def test_repeated_layers_pull_run_and_are_collected_once(d, registry, tmp):
    """The same blob twice, and one diff_id from two blobs (gzip and plain):
    real images repeat empty layers. Each position has its own chain id, so
    overlay gets distinct directories."""
    base, empty = harness.busybox_layer(), harness.Layer().dir("etc")
    a = harness.Image([base, empty, empty, empty], cmd=["a"])
    a._layer_blobs = [base.blob(), empty.blob(), empty.blob(), empty.blob(compression=None)]
    assert a.layer_blobs()[1].digest == a.layer_blobs()[2].digest != a.layer_blobs()[3].digest
    assert len(set(a.config()["rootfs"]["diff_ids"][1:])) == 1
    b = harness.Image([base, empty], cmd=["b"])  # shares base and base+empty with a
    pa = harness.push(registry, a, "repeated-a")
    pb_ = harness.push(registry, b, "repeated-b")
    pull(d, pa.ref)
    dirs = layer_dirs(d, pa.ref)
    assert len(set(dirs)) == 4
    blobs, layers, _ = stored(d)
    assert len(blobs) == 5 and len(layers) == 4  # manifest, config, base, empty gz, empty tar
    assert Pod(d, tmp, pa.ref).run("echo ran") == (0, "ran\n")
    pull(d, pb_.ref)
    assert len(stored(d)[1]) == 4, "b's two layers are a's first two"
    d.runtime.RemovePodSandbox(d.pb.RemovePodSandboxRequest(
        pod_sandbox_id=d.runtime.ListPodSandbox(d.pb.ListPodSandboxRequest()).items[0].id), timeout=30)
    remove(d, pa.ref)
    blobs, layers, _ = stored(d)
    want = {harness.digest_of(x) for x in (b.manifest_blob().data, b.config_blob().data,
                                           base.blob().data, empty.blob().data)}
    assert {"sha256:" + x for x in blobs} == want
    assert sorted(layers) == sorted(os.path.basename(x) for x in dirs[:2])
    remove(d, pb_.ref)
    assert_nothing_kept(d)


# --- bombs and giants from a registry that serves anything -------------------------

@pytest.fixture
def fake():
    with FakeRegistry() as fr:
        yield fr


@pytest.fixture
def fd(make_daemon, fake):
    return make_daemon(config=insecure(fake.host))


def serve(fake, image, repo="img", tag="latest"):
    for blob in image.blobs():
        fake.blob(repo, blob.digest, blob.data)
    m = image.manifest_blob()
    fake.manifest(repo, tag, m.data, m.media_type)
    return f"{fake.host}/{repo}:{tag}"


def small_image(**kw):
    return harness.Image([harness.Layer().file("hello", "world")], **kw)


def test_a_manifest_over_4_mib_is_refused_naming_the_limit(fd, fake):
    image = small_image(annotations={"pad": "x" * (4 << 20)})
    ref = serve(fake, image)
    pull_fails(fd, ref, grpc.StatusCode.RESOURCE_EXHAUSTED, "larger than the 4 MiB a manifest may have")


def test_a_gzip_encoded_manifest_is_never_inflated(fd, fake):
    """crius asks for no Content-Encoding and decodes none: the body is the
    bytes sent. A gzip bomb (64 MiB of JSON in ~64 KiB) is then just bytes
    that are not JSON, and so is an honest manifest sent gzipped."""
    bomb = b'{"schemaVersion":2,"pad":"' + b" " * (64 << 20) + b'"}'
    ref = f"{fake.host}/img:bomb"
    fake.manifest("img", "bomb", gzip.compress(bomb, mtime=0), harness.oci.MT_OCI_MANIFEST,
                  headers={"Content-Encoding": "gzip"})
    pull_fails(fd, ref, grpc.StatusCode.INVALID_ARGUMENT, "not valid JSON")
    image = small_image()
    serve(fake, image)
    m = image.manifest_blob()
    fake.manifest("img", "honest", gzip.compress(m.data, mtime=0), m.media_type,
                  headers={"Content-Encoding": "gzip"})
    pull_fails(fd, f"{fake.host}/img:honest", grpc.StatusCode.INVALID_ARGUMENT, "not valid JSON")


def with_config(image, config_body, size=None):
    """image's manifest pointing at config_body (its descriptor saying `size`)."""
    manifest = json.loads(image.manifest_blob().data)
    manifest["config"] = {"mediaType": harness.oci.MT_OCI_CONFIG, "digest": harness.digest_of(config_body),
                          "size": len(config_body) if size is None else size}
    return manifest


def test_a_config_over_32_mib_is_refused_before_or_while_fetching(fd, fake):
    image = small_image()
    serve(fake, image)
    config = json.loads(image.config_blob().data)
    config["pad"] = "x" * (32 << 20)
    body = json.dumps(config).encode()
    digest = harness.digest_of(body)
    fake.blob("img", digest, body)
    # Its descriptor says so: refused before any byte of it is fetched.
    fake.manifest("img", "said", json.dumps(with_config(image, body)), harness.oci.MT_OCI_MANIFEST)
    pull_fails(fd, f"{fake.host}/img:said", grpc.StatusCode.INVALID_ARGUMENT,
               "more than the 32 MiB an image config may have")
    assert fake.hits(f"/v2/img/blobs/{digest}") == 0
    # Its descriptor lies: the fetch stops at the limit.
    fake.manifest("img", "lied", json.dumps(with_config(image, body, size=1000)),
                  harness.oci.MT_OCI_MANIFEST)
    pull_fails(fd, f"{fake.host}/img:lied", grpc.StatusCode.RESOURCE_EXHAUSTED,
               "larger than the 32 MiB an image config may have")


def big_index(fake, entries, amd64=None):
    """An index of `entries` entries, each a platform of its own (none linux/amd64);
    with `amd64`, that image's manifest is the last entry."""
    manifests = [{"mediaType": harness.oci.MT_OCI_MANIFEST, "digest": "sha256:%064x" % i, "size": 100,
                  "platform": {"os": "linux", "architecture": f"arch{i}"}} for i in range(entries)]
    if amd64 is not None:
        serve(fake, amd64, tag="amd64")
        manifests[-1] = amd64.manifest_blob().descriptor(platform=amd64.platform())
    body = json.dumps({"schemaVersion": 2, "mediaType": harness.oci.MT_OCI_INDEX,
                       "manifests": manifests}).encode()
    assert len(body) < 4 << 20
    fake.manifest("img", "index", body, harness.oci.MT_OCI_INDEX)
    return f"{fake.host}/img:index"


def test_an_index_of_10000_entries_is_pulled_in_bounded_time(fd, fake):
    image = small_image()
    ref = big_index(fake, 10_000, amd64=image)
    started = time.monotonic()
    assert pull(fd, ref) == image.config_blob().digest
    assert time.monotonic() - started < 10


def test_no_match_among_10000_entries_names_a_few_of_them(fd, fake):
    ref = big_index(fake, 10_000)
    details = pull_fails(fd, ref, grpc.StatusCode.NOT_FOUND,
                         "no manifest for linux/amd64 in the index of 10000 entries")
    assert "linux/arch0, linux/arch1" in details and "and 9992 more)" in details
    assert len(details) < 1000, details
