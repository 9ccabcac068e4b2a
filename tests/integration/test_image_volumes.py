"""Image volumes (KEP-4639) as kubelet asks for them: a CRI mount whose
`image` names a pulled image gets that image's layers, merged, read-only,
nosuid and nodev (its programs may run), at container_path; image_sub_path mounts a path
inside it. Each image is mounted once on the node, shared by the containers
that mount it, kept while one is recorded (RemoveImage refuses meanwhile,
a SIGKILL of criusd changes nothing) and unmounted with the last."""
import os

import grpc
import pytest

import harness
from harness import oci
from harness.util import mounts_under

pytestmark = pytest.mark.usefixtures("leak_check")

MODEL = b"weights, second edition\n"


def data_image():
    """Two layers: the second replaces one file, deletes another and adds
    symlinks, one absolute (counted from the image's root) and one that
    climbs out of it."""
    with open("/bin/busybox", "rb") as f:
        tool = f.read()
    lower = (oci.Layer().file("data/model.bin", b"weights, first edition\n").file("data/stale", b"old\n")
             .file("bin/busybox", tool, mode=0o4755).file("readme", b"read me\n"))
    upper = (oci.Layer().file("data/model.bin", MODEL).whiteout("data/stale").symlink("abs", "/data")
             .symlink("rel", "data").symlink("escape", "../../../../etc"))
    return oci.Image([lower, upper], env=None)


@pytest.fixture(scope="module")
def data(registry):
    return harness.push(registry, data_image(), "volume-data")


@pytest.fixture
def d(make_daemon, registry, busybox, data):
    d = make_daemon(config=f'[registry]\ninsecure = ["{registry.host}"]\n')
    for ref in (busybox.ref, data.ref):
        d.image.PullImage(d.pb.PullImageRequest(image=d.pb.ImageSpec(image=ref)), timeout=60)
    yield d
    if not d.running:
        d.failpoints = []
        d.start()
    for c in d.runtime.ListContainers(d.pb.ListContainersRequest()).containers:
        d.runtime.RemoveContainer(d.pb.RemoveContainerRequest(container_id=c.id), timeout=30)
    for p in d.runtime.ListPodSandbox(d.pb.ListPodSandboxRequest()).items:
        d.runtime.RemovePodSandbox(d.pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=30)
    assert volume_mounts(d) == [], "an image volume outlived its containers"


@pytest.fixture
def pod(d, tmp):
    cfg = d.pb.PodSandboxConfig(metadata=d.pb.PodSandboxMetadata(name="iv", namespace="ns", uid="u-iv"),
                                log_directory=str(tmp / "logs"))
    return d.runtime.RunPodSandbox(d.pb.RunPodSandboxRequest(config=cfg), timeout=30).pod_sandbox_id, cfg


def image_mount(d, ref, path="/volume", sub_path="", **kw):
    return d.pb.Mount(container_path=path, image=d.pb.ImageSpec(image=ref), image_sub_path=sub_path,
                      **{"readonly": True, **kw})


def create(d, pod, busybox, name, mounts):
    pod_id, pod_cfg = pod
    cfg = d.pb.ContainerConfig(metadata=d.pb.ContainerMetadata(name=name), image=d.pb.ImageSpec(image=busybox.ref),
                               command=["sleep", "3600"], log_path=f"{name}.log", mounts=mounts)
    return d.runtime.CreateContainer(d.pb.CreateContainerRequest(
        pod_sandbox_id=pod_id, config=cfg, sandbox_config=pod_cfg), timeout=60).container_id


def run(d, pod, busybox, name, mounts):
    cid = create(d, pod, busybox, name, mounts)
    d.runtime.StartContainer(d.pb.StartContainerRequest(container_id=cid), timeout=60)
    return cid


def sh(d, cid, script):
    r = d.runtime.ExecSync(d.pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", script], timeout=10),
                           timeout=30)
    return r.exit_code, r.stdout.decode(), r.stderr.decode()


def ok(d, cid, script):
    code, out, err = sh(d, cid, script)
    assert code == 0, (script, out, err)
    return out


def volume_mounts(d):
    """The node's mounts under the daemon's image volume directory."""
    return mounts_under(d.state / "image-volumes")


def volume_dirs(d):
    return sorted(n for n in os.listdir(d.state / "image-volumes") if not n.startswith("."))


def rpc_error(call):
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value


def test_an_image_volume_is_the_merged_image_read_only(d, pod, busybox, data):
    cid = run(d, pod, busybox, "reader", [image_mount(d, data.ref)])
    assert ok(d, cid, "cat /volume/data/model.bin").encode() == MODEL
    assert ok(d, cid, "ls /volume/data") == "model.bin\n"  # the upper layer's whiteout holds
    assert ok(d, cid, "readlink /volume/abs") == "/data\n"  # in the container, from its own root
    code, _, err = sh(d, cid, "echo x > /volume/new")
    assert code != 0 and "Read-only file system" in err
    assert ok(d, cid, "/volume/bin/busybox echo ran") == "ran\n"  # not noexec, as cri-tools checks
    options = ok(d, cid, "grep ' /volume ' /proc/self/mountinfo").split()[5].split(",")
    assert {"ro", "nosuid", "nodev"} <= set(options) and "noexec" not in options, options
    # The container's own root stays writable.
    ok(d, cid, "echo x > /written")
    mount = d.runtime.ContainerStatus(d.pb.ContainerStatusRequest(container_id=cid)).status.mounts[0]
    assert mount.container_path == "/volume" and mount.readonly and mount.host_path == ""
    # The image as the request named it, and its id as PullImage answered (KEP-5365).
    image_id = d.image.ImageStatus(d.pb.ImageStatusRequest(image=d.pb.ImageSpec(image=data.ref))).image.id
    assert mount.image.image == data.ref and mount.image.image_ref == image_id


def test_one_mount_serves_every_container_and_goes_with_the_last(d, pod, busybox, data):
    image_id = d.image.ImageStatus(d.pb.ImageStatusRequest(image=d.pb.ImageSpec(image=data.ref))).image.id
    # kubelet names the image by the image_ref PullImage answered: its id.
    whole = run(d, pod, busybox, "whole", [image_mount(d, image_id)])
    sub = run(d, pod, busybox, "sub", [image_mount(d, data.ref, "/models", sub_path="data")])
    via_link = run(d, pod, busybox, "link", [image_mount(d, data.ref, "/models", sub_path="rel"),
                                             image_mount(d, data.ref, "/abs", sub_path="abs"),
                                             image_mount(d, data.ref, "/readme", sub_path="readme")])
    assert ok(d, sub, "ls /models") == "model.bin\n"
    assert ok(d, via_link, "cat /models/model.bin").encode() == MODEL
    # An absolute symlink as the sub path counts from the image's root.
    assert ok(d, via_link, "cat /abs/model.bin").encode() == MODEL
    assert ok(d, via_link, "cat /readme") == "read me\n"  # a file as the sub path
    # One filesystem on the node, bound into each container.
    assert len(volume_mounts(d)) == 1 and volume_dirs(d) == [image_id.replace(":", "-")]
    devices = {ok(d, c, f"stat -c %d {p}") for c, p in ((whole, "/volume"), (sub, "/models"),
                                                          (via_link, "/readme"))}
    assert len(devices) == 1, devices

    e = rpc_error(lambda: d.image.RemoveImage(d.pb.RemoveImageRequest(image=d.pb.ImageSpec(image=data.ref))))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "as an image volume (config.mounts[0])" in e.details(), e.details()

    # criusd killed: the volume, its containers and the refusal stay.
    d.restart(kill=True)
    assert len(volume_mounts(d)) == 1
    assert ok(d, whole, "cat /volume/data/model.bin").encode() == MODEL
    e = rpc_error(lambda: d.image.RemoveImage(d.pb.RemoveImageRequest(image=d.pb.ImageSpec(image=data.ref))))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION

    for cid in (whole, sub):
        d.runtime.RemoveContainer(d.pb.RemoveContainerRequest(container_id=cid), timeout=30)
        assert len(volume_mounts(d)) == 1  # still mounted by another
    assert ok(d, via_link, "cat /readme") == "read me\n"
    d.runtime.RemoveContainer(d.pb.RemoveContainerRequest(container_id=via_link), timeout=30)
    assert volume_mounts(d) == [] and volume_dirs(d) == []
    d.image.RemoveImage(d.pb.RemoveImageRequest(image=d.pb.ImageSpec(image=data.ref)))


def test_bad_image_mounts_are_refused_naming_the_field_and_leave_nothing(d, pod, busybox, data):
    pb = d.pb
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    cases = [
        ([image_mount(d, data.ref, readonly=False)], invalid, "config.mounts[0]: an image mount is read-only"),
        ([image_mount(d, data.ref, host_path="/tmp")], invalid, "config.mounts[0]: host_path and image are both set"),
        ([pb.Mount(container_path="/v", host_path="/tmp", image_sub_path="data")], invalid,
         "config.mounts[0]: image_sub_path is set without image"),
        ([image_mount(d, data.ref, propagation=pb.PROPAGATION_BIDIRECTIONAL)], invalid,
         "its propagation cannot be bidirectional"),
        ([image_mount(d, f"{data.host}/volume-missing:1")], grpc.StatusCode.NOT_FOUND,
         f'config.mounts[0].image: image "{data.host}/volume-missing:1" is not present on this node'),
        ([image_mount(d, data.ref, path="relative")], invalid, 'container_path "relative" is not absolute'),
        # The sub path checks come once the volume is mounted: it goes again.
        ([pb.Mount(container_path="/ok", host_path="/tmp"), image_mount(d, data.ref, sub_path="../../etc")],
         invalid, 'config.mounts[1].image_sub_path: "../../etc" has a ".." part'),
        ([image_mount(d, data.ref, sub_path="/data")], invalid, '"/data" is absolute'),
        ([image_mount(d, data.ref, sub_path="escape")], invalid,
         '"escape" leads out of the image through its symlink /escape -> ../../../../etc'),
        ([image_mount(d, data.ref, sub_path="escape/passwd")], invalid, "leads out of the image"),
        ([image_mount(d, data.ref, sub_path="data/stale")], invalid, '"data/stale" does not exist in the image'),
        ([image_mount(d, data.ref, sub_path="readme/x")], invalid, '"readme/x" does not exist in the image'),
    ]
    for i, (mounts, code, text) in enumerate(cases):
        e = rpc_error(lambda: create(d, pod, busybox, f"bad{i}", mounts))
        assert e.code() == code, (i, e.code(), e.details())
        assert text in e.details(), (i, e.details())
        assert volume_mounts(d) == [] and volume_dirs(d) == [], i
    assert list(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == []
    assert os.listdir(d.root / "containers") == []
    # The same names work once the mounts are right.
    run(d, pod, busybox, "bad0", [image_mount(d, data.ref)])


def test_a_crash_with_the_volume_mounted_leaves_nothing_after_restart(d, pod, busybox, data):
    d.stop()
    d.failpoints = ["container_create.after_image_volumes"]
    d.start()
    with pytest.raises(grpc.RpcError):
        create(d, pod, busybox, "crashed", [image_mount(d, data.ref)])
    assert d.wait_exit() == -9 and "failpoint container_create.after_image_volumes reached" in d.log
    assert len(volume_mounts(d)) == 1  # the crash left it mounted
    d.failpoints = []
    d.start()
    assert volume_mounts(d) == [] and volume_dirs(d) == []
    assert list(d.runtime.ListContainers(d.pb.ListContainersRequest()).containers) == []
    cid = run(d, pod, busybox, "crashed", [image_mount(d, data.ref)])
    assert ok(d, cid, "cat /volume/data/model.bin").encode() == MODEL
