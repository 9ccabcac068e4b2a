"""Full disks (ENOSPC) and failing disks (EIO) under criusd's root, state and
log directories: each on a small filesystem the test makes (ext4 on a loop
device, tmpfs), filled with a filler file the test deletes to give the space
back. A pull, a pod or a container that runs out of space fails with
RESOURCE_EXHAUSTED naming what ran out, leaves nothing half-made and works
once space returns; records (the database keeps a reserve for its log) and
removals still work on a full root; a container that fills its log disk
does not stop criusd; a root whose device fails its writes makes RPCs fail
clearly."""
import errno
import os
import re
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import grpc
import pytest

import harness
from harness.cri import container_status as status, create_container as create, remove_all, start_container as start
from harness.util import remove_tree, short_tmpdir, wait_for

pytestmark = pytest.mark.usefixtures("leak_check")

NO_SPACE = "No space left on device"
CRI_LOG = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (P|F) (.*)$")


def run(*cmd):
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if done.returncode != 0:
        raise harness.HarnessError(f"{' '.join(map(str, cmd))}: exit {done.returncode}: "
                                   f"{done.stderr.strip()}")
    return done.stdout.strip()


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class SmallDisks:
    """Small filesystems under one dir, each undone by close(), in reverse."""

    def __init__(self):
        self.base = short_tmpdir("crius-df-")
        self._undo = []

    def ext4(self, path, mib, backing=None):
        """An ext4 of `mib` MiB on a loop device over a sparse image in
        `backing` (default: the base dir). With a small tmpfs as backing,
        filling it turns the device into one whose writes fail with EIO."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        image = Path(backing or self.base) / f"{path.name}.img"
        run("truncate", "-s", f"{mib}M", image)
        self._undo.append(lambda: os.unlink(image))
        loop = run("losetup", "--find", "--show", image)
        self._undo.append(lambda: run("losetup", "-d", loop))
        run("mkfs.ext4", "-q", "-F", "-m", "0", loop)
        self._mount(["-t", "ext4", loop, path], path)
        return path

    def tmpfs(self, path, size):
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._mount(["-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", path], path)
        return path

    def _mount(self, args, path):
        run("mount", *args)
        self._undo.append(lambda: self._umount(path))

    @staticmethod
    def _umount(path):
        for _ in range(50):  # a process that just exited may still hold it a moment
            if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        run("umount", path)

    def close(self):
        errors = []
        for undo in reversed(self._undo):
            try:
                undo()
            except Exception as e:  # undo everything even if one step fails
                errors.append(e)
        self._undo = []
        if not errors:
            remove_tree(self.base)
        if errors:
            raise errors[0]


def fill(fs, leave=0):
    """A filler file that leaves `leave` bytes free on fs (none: until a
    write fails with ENOSPC); returns its path."""
    filler = Path(fs) / "filler"
    chunk = 64 << 20
    with open(filler, "ab", buffering=0) as f:
        while chunk >= 4096:
            want = min(chunk, free_bytes(fs) - leave)
            if want < 4096:
                break
            try:
                os.posix_fallocate(f.fileno(), os.fstat(f.fileno()).st_size, want)
            except OSError as e:  # ext4 needs some blocks for the extents too
                assert e.errno == errno.ENOSPC, e
                chunk //= 4
        if leave == 0:
            try:
                while True:
                    f.write(b"\0" * 512)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    return filler


def free(fs):
    os.unlink(Path(fs) / "filler")


@pytest.fixture
def disks():
    d = SmallDisks()
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def crius(make_daemon, registry, disks):
    """A factory: crius(root_mib=..., state_size=..., logs_size=..., backing_size=...)
    starts a criusd whose root is an ext4 of root_mib MiB (its image on a
    tmpfs of backing_size, d.backing, when given), whose state is a tmpfs of
    state_size (else a plain dir), and whose pods log to d.logs (a tmpfs of
    logs_size when given). Teardown gives the space back, then removes pods."""
    started = []

    def make(root_mib=64, state_size=None, logs_size=None, backing_size=None):
        workdir = disks.base / "d"
        workdir.mkdir()
        backing = disks.tmpfs(disks.base / "backing", backing_size) if backing_size else None
        disks.ext4(workdir / "root", root_mib, backing=backing)
        if state_size:
            disks.tmpfs(workdir / "state", state_size)
        d = make_daemon(workdir=workdir, config=f'[registry]\ninsecure = ["{registry.host}"]\n')
        d.logs = disks.tmpfs(disks.base / "logs", logs_size) if logs_size else disks.base / "logs"
        d.backing = backing
        started.append(d)
        return d

    yield make
    for d in started:  # pods first: their monitors hold files on the small disks
        for fs in (d.root, d.state, d.logs, d.backing):
            if fs and os.path.exists(Path(fs) / "filler"):
                free(fs)
        try:
            if not getattr(d, "broken", False):
                if not d.running:
                    d.start()
                remove_all(d)
        finally:
            d.close()


def pull(d, ref):
    return d.image.PullImage(d.pb.PullImageRequest(image=d.pb.ImageSpec(image=ref)), timeout=60).image_ref


def pod_config(d, name="p"):
    pb = d.pb
    return pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, namespace="ns", uid=f"u-{name}"),
                               hostname="podhost", log_directory=str(d.logs))


def run_pod(d, cfg):
    return d.runtime.RunPodSandbox(d.pb.RunPodSandboxRequest(config=cfg), timeout=30).pod_sandbox_id


def pods(d):
    return sorted((p.id, p.metadata.name, p.state)
                  for p in d.runtime.ListPodSandbox(d.pb.ListPodSandboxRequest()).items)


def containers(d):
    return sorted((c.id, c.metadata.name, c.state)
                  for c in d.runtime.ListContainers(d.pb.ListContainersRequest()).containers)


def images(d):
    return sorted(i.id for i in d.image.ListImages(d.pb.ListImagesRequest()).images)


def listdir(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def expect_no_space(call, *names):
    """call() fails with RESOURCE_EXHAUSTED saying no space is left, naming each of names."""
    with pytest.raises(grpc.RpcError) as e:
        call()
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value.details()
    message = e.value.details()
    assert NO_SPACE in message or "disk is full" in message, message
    for name in names:
        assert str(name) in message, (name, message)
    return message


def check_database(d):
    """state.db (copied with its WAL, criusd may be running) passes integrity_check."""
    copy = d.workdir / "db-copy"
    copy.mkdir(exist_ok=True)
    try:
        for suffix in ("", "-wal"):
            if os.path.exists(f"{d.root}/state.db{suffix}"):
                shutil.copy(f"{d.root}/state.db{suffix}", copy / f"state.db{suffix}")
        db = sqlite3.connect(copy / "state.db")
        try:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            db.close()
    finally:
        shutil.rmtree(copy)


def same_view_after_restart(d):
    before = (pods(d), containers(d), images(d))
    d.restart()
    assert (pods(d), containers(d), images(d)) == before
    check_database(d)


# -- pulls --------------------------------------------------------------------

# What is left free on root: not enough for the layer blob (the manifest and
# config fit), or enough for the blob but not for its unpacked files.
@pytest.mark.parametrize("leave", [256 << 10, 1536 << 10], ids=["blob", "unpack"])
def test_a_pull_that_runs_out_of_space_fails_clearly_and_leaves_nothing(crius, busybox, leave):
    d = crius()
    fill(d.root, leave)
    message = expect_no_space(lambda: pull(d, busybox.ref), busybox.ref, d.root)
    assert images(d) == []
    assert listdir(d.root / "content/blobs/sha256") == []
    assert listdir(d.root / "content/ingest") == []
    assert listdir(d.root / "layers") == []
    assert "pull" in message
    same_view_after_restart(d)

    free(d.root)
    image_id = pull(d, busybox.ref)
    assert images(d) == [image_id]
    assert len(listdir(d.root / "layers")) == 1
    same_view_after_restart(d)


def test_removing_an_image_on_a_full_root_frees_its_space(crius, busybox):
    # kubelet's image GC under disk pressure: the way a full node gets space back.
    d = crius()
    pull(d, busybox.ref)
    fill(d.root)
    d.image.RemoveImage(d.pb.RemoveImageRequest(image=d.pb.ImageSpec(image=busybox.ref)), timeout=30)
    assert images(d) == []
    assert listdir(d.root / "content/blobs/sha256") == [] and listdir(d.root / "layers") == []
    assert free_bytes(d.root) > 1 << 20
    same_view_after_restart(d)


# -- pods and containers ------------------------------------------------------

def assert_nothing_half_made(d, snapshot, pods_before, containers_before):
    assert pods(d) == pods_before
    assert containers(d) == containers_before
    snapshot.check()  # no netns, cgroup, mount, monitor process left


def test_run_pod_sandbox_with_a_full_state_dir(crius):
    d = crius(state_size="2m")
    fill(d.state)
    snapshot = harness.LeakChecker()
    expect_no_space(lambda: run_pod(d, pod_config(d)), d.state)
    assert_nothing_half_made(d, snapshot, [], [])
    assert listdir(d.state / "pods") == []
    same_view_after_restart(d)

    free(d.state)
    pod_id = run_pod(d, pod_config(d))
    assert [p[0] for p in pods(d)] == [pod_id]
    same_view_after_restart(d)


def test_pods_come_and_go_on_a_full_root(crius):
    # A pod needs no space on root but its records: the database keeps a
    # reserve for its log, taken at start, so they fit on a full disk.
    d = crius()
    d.restart()  # a clean stop folds the log into the database: what is left is the reserve
    fill(d.root)
    pod_id = run_pod(d, pod_config(d))
    assert [p[0] for p in pods(d)] == [pod_id]
    same_view_after_restart(d)
    d.runtime.StopPodSandbox(d.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)
    d.runtime.RemovePodSandbox(d.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)
    assert pods(d) == [] and listdir(d.state / "pods") == []
    same_view_after_restart(d)


def test_create_container_with_a_full_root(crius, busybox):
    d = crius()
    pull(d, busybox.ref)
    cfg = pod_config(d)
    pod_id = run_pod(d, cfg)
    before = pods(d)
    disk = d.root
    fill(disk)
    snapshot = harness.LeakChecker()
    expect_no_space(lambda: create(d, pod_id, cfg, busybox.ref, command=["echo", "hello"]), disk)
    assert_nothing_half_made(d, snapshot, before, [])
    assert listdir(d.root / "containers") == []
    same_view_after_restart(d)

    free(disk)
    cid = create(d, pod_id, cfg, busybox.ref, command=["echo", "hello"])
    start(d, cid)
    s = wait_for(lambda: (lambda s: s if s.state == d.pb.CONTAINER_EXITED else None)(status(d, cid)),
                 10, what="the container to exit")
    assert s.exit_code == 0
    assert [CRI_LOG.match(l).group(3) for l in Path(s.log_path).read_text().splitlines()] == ["hello"]
    same_view_after_restart(d)


def test_a_container_runs_and_its_exit_is_kept_with_a_full_state_dir(crius, busybox):
    # Creating a container writes nothing under state; its exit record does.
    d = crius(state_size="4m")
    pull(d, busybox.ref)
    cfg = pod_config(d)
    pod_id = run_pod(d, cfg)
    fill(d.state)
    cid = create(d, pod_id, cfg, busybox.ref, command=["sh", "-c", "echo hello; exit 7"])
    start(d, cid)
    s = wait_for(lambda: (lambda s: s if s.state == d.pb.CONTAINER_EXITED else None)(status(d, cid)),
                 10, what="the container to exit")
    assert (s.exit_code, s.reason) == (7, "Error")
    same_view_after_restart(d)
    assert status(d, cid).exit_code == 7


# -- container logs -----------------------------------------------------------

def test_a_container_that_fills_its_log_disk_does_not_stop_criusd(crius, busybox):
    d = crius(logs_size="1m")
    pb = d.pb
    pull(d, busybox.ref)
    cfg = pod_config(d)
    pod_id = run_pod(d, cfg)
    other = create(d, pod_id, cfg, busybox.ref, name="other", command=["sleep", "1000"])
    start(d, other)
    fill(d.logs, leave=128 << 10)
    writer = create(d, pod_id, cfg, busybox.ref, name="writer", command=["sh", "-c"],
                    args=["i=0; while true; do echo line $i; i=$((i+1)); done"])
    start(d, writer)
    log = Path(status(d, writer).log_path)
    wait_for(lambda: free_bytes(d.logs) == 0, 15, what="the log disk to fill")
    time.sleep(1)  # the writer goes on against a full disk

    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        d.client.version(timeout=2)
        assert {c[1]: c[2] for c in containers(d)} == {"other": pb.CONTAINER_RUNNING,
                                                       "writer": pb.CONTAINER_RUNNING}
        s = status(d, writer)
        assert s.state == pb.CONTAINER_RUNNING, f"{s.exit_code} {s.reason}: {s.message}"
        r = d.runtime.ExecSync(pb.ExecSyncRequest(container_id=other, cmd=["echo", "alive"], timeout=10),
                               timeout=15)
        assert (r.exit_code, r.stdout) == (0, b"alive\n")
    assert free_bytes(d.logs) == 0

    # Space returns: lines land in the log again, and after kubelet's
    # rotation ReopenContainerLog starts a new file that gets them too. The
    # writer fills 1 MiB in moments: the rotated file is checked and then
    # removed, as kubelet removes old ones, to leave the new file room.
    free(d.logs)
    size = log.stat().st_size
    wait_for(lambda: log.stat().st_size > size, 5, what="new lines in the log")
    rotated = Path(f"{log}.1")
    os.rename(log, rotated)
    d.runtime.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=writer))
    assert_whole_lines(rotated)  # lines that did not fit were dropped whole
    rotated.unlink()
    wait_for(lambda: log.exists() and log.stat().st_size > 0, 5, what="lines in the reopened log")
    d.runtime.StopContainer(pb.StopContainerRequest(container_id=writer, timeout=0), timeout=30)
    assert_whole_lines(log)


def assert_whole_lines(path):
    bad = [l for l in Path(path).read_text().splitlines() if not CRI_LOG.match(l)]
    assert bad == [], (path, bad[:3])


# -- EIO ----------------------------------------------------------------------

# This kernel has no device-mapper (its `error` target would give plain EIO):
# root's ext4 sits on a loop device whose image is on a small tmpfs instead.
# Once that is full the device fails its writes: ext4 accepted them into the
# page cache and reports the failure later (fsync, the journal), and may
# turn read-only when its journal write fails.
DEVICE_ERROR = re.compile(r"I/O error|Input/output error|Read-only file system|" + NO_SPACE)


def test_a_root_device_that_fails_its_writes(crius, registry, busybox):
    d = crius(backing_size="32m")
    image_id = pull(d, busybox.ref)
    # 2 MiB that compress to nothing smaller: blocks no write reached yet.
    big = harness.Layer().file("big", os.urandom(2 << 20))
    other = harness.push(registry, harness.Image([harness.busybox_layer(), big], cmd=["sh"]), "failing")
    fill(d.backing)
    snapshot = harness.LeakChecker()
    failures = []
    for call in (lambda: pull(d, other.ref), lambda: run_pod(d, pod_config(d))):
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL,
                                  grpc.StatusCode.FAILED_PRECONDITION), e.value.details()
        assert DEVICE_ERROR.search(e.value.details()), e.value.details()
        assert str(d.root) in e.value.details()
        failures.append(e.value.details())
    assert other.ref in failures[0]
    assert d.running
    d.client.version()
    # A pod whose rollback could not delete its record stays listed, never
    # ready, for kubelet's RemovePodSandbox to retry; nothing of it runs.
    assert all(p[2] == d.pb.SANDBOX_NOTREADY for p in pods(d)), pods(d)
    assert containers(d) == [] and images(d) == [image_id]
    snapshot.check()
    d.broken = True  # nothing to remove, and no restart on a disk that fails
    d.stop()
