"""ImageFsInfo as kubelet reads it for eviction and its summary API: image
layers and containers' writable layers (KEP-4191). By default both live under
the root and both lists name that filesystem; with containers_dir on a
filesystem of its own each list counts its own kind, and the figures rise and
fall as images and containers come and go."""
import os
import subprocess
import time

import pytest

pytestmark = pytest.mark.usefixtures("leak_check")

WRITE = 4 * 1024 * 1024  # what the container writes to its writable layer


@pytest.fixture
def writable_fs(tmp):
    """A tmpfs of the test's own, for containers_dir."""
    path = tmp / "writable"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def daemon(make_daemon, registry, extra=""):
    return make_daemon(config=f'{extra}[registry]\ninsecure = ["{registry.host}"]\n')


def fs_info(d):
    r = d.image.ImageFsInfo(d.pb.ImageFsInfoRequest())
    assert len(r.image_filesystems) == 1 and len(r.container_filesystems) == 1, r
    return r.image_filesystems[0], r.container_filesystems[0]


def writer(d, tmp, busybox):
    """A pod with one container that wrote WRITE bytes and exited; its ids."""
    pb = d.pb
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=busybox.ref)), timeout=60)
    cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="fs", namespace="ns", uid="u-fs"),
                              log_directory=str(tmp / "logs"))
    pod = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=30).pod_sandbox_id
    c = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="w"), image=pb.ImageSpec(image=busybox.ref),
                           command=["sh", "-c", f"head -c {WRITE} /dev/zero > /big"], log_path="w.log")
    cid = d.runtime.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=c, sandbox_config=cfg),
                                    timeout=60).container_id
    d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
    deadline = time.monotonic() + 10
    while d.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status.state != \
            pb.CONTAINER_EXITED:
        assert time.monotonic() < deadline, "the writer never exited"
        time.sleep(0.05)
    return pod, cid


def remove(d, pod, cid):
    d.runtime.RemoveContainer(d.pb.RemoveContainerRequest(container_id=cid), timeout=30)
    d.runtime.RemovePodSandbox(d.pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=30)


def test_one_filesystem_is_named_in_both_lists_and_counts_both_kinds(make_daemon, registry, tmp, busybox):
    d = daemon(make_daemon, registry)
    empty, same = fs_info(d)
    assert empty == same and empty.fs_id.mountpoint == str(d.root) and empty.timestamp > 0
    pod, cid = writer(d, tmp, busybox)
    try:
        image, container = fs_info(d)
        assert image == container
        # The image (over 1 MB of busybox) and the 4 MiB the container wrote.
        assert image.used_bytes.value >= empty.used_bytes.value + 1_000_000 + WRITE
        assert image.inodes_used.value > empty.inodes_used.value + 1
    finally:
        remove(d, pod, cid)
    image_only, _ = fs_info(d)
    assert image_only.used_bytes.value < image.used_bytes.value - WRITE + 4096


def test_containers_dir_of_its_own_is_reported_apart(make_daemon, registry, tmp, busybox, writable_fs):
    d = daemon(make_daemon, registry, extra=f'containers_dir = "{writable_fs}/containers"\n')
    image0, container0 = fs_info(d)
    assert image0.fs_id.mountpoint == str(d.root)
    assert container0.fs_id.mountpoint == f"{writable_fs}/containers"
    assert container0.used_bytes.value == 0 and container0.inodes_used.value == 0
    pod, cid = writer(d, tmp, busybox)
    try:
        # The writable layer is on the containers' filesystem, not the root's.
        assert os.listdir(writable_fs / "containers") == [cid]
        assert not os.path.exists(d.root / "containers" / cid)
        assert os.path.getsize(writable_fs / "containers" / cid / "upper" / "big") == WRITE
        # The container's own stats name the same filesystem.
        layer = d.runtime.ContainerStats(d.pb.ContainerStatsRequest(container_id=cid)).stats.writable_layer
        assert layer.fs_id.mountpoint == f"{writable_fs}/containers" and layer.used_bytes.value >= WRITE
        image, container = fs_info(d)
        assert container.used_bytes.value >= WRITE and container.inodes_used.value >= 1
        assert container.used_bytes.value < WRITE + 1_000_000  # the image is not counted here
        assert image.used_bytes.value > 1_000_000 and image.used_bytes.value < image0.used_bytes.value + 10_000_000
        # A restart keeps the container where it was made.
        d.restart(kill=True)
        assert fs_info(d)[1].used_bytes.value >= WRITE
    finally:
        remove(d, pod, cid)
    after = fs_info(d)[1]
    assert after.used_bytes.value == 0 and after.inodes_used.value == 0
    assert os.listdir(writable_fs / "containers") == []

