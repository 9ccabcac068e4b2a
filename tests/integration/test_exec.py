"""ExecSync through a real criusd, as kubelet's exec probes and `crictl exec`
use it: the command runs in the container's namespaces, root, cgroup and
user namespace, as its user with its capabilities and seccomp filter; exit
codes, output (capped at 16 MiB a stream), timeouts that kill, and the bad
inputs: an unknown, stopped or empty container id, an empty command, a
missing executable."""
import os
import time

import grpc
import pytest

pytestmark = pytest.mark.usefixtures("leak_check")

CG = "/sys/fs/cgroup"


@pytest.fixture
def d(make_daemon, registry, busybox):
    d = make_daemon(config=f'[registry]\ninsecure = ["{registry.host}"]\n')
    d.image.PullImage(d.pb.PullImageRequest(image=d.pb.ImageSpec(image=busybox.ref)), timeout=60)
    yield d
    for p in d.runtime.ListPodSandbox(d.pb.ListPodSandboxRequest()).items:
        d.runtime.StopPodSandbox(d.pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=30)
        d.runtime.RemovePodSandbox(d.pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=30)


class Pod:
    def __init__(self, d, tmp, image, name="x"):
        pb = self.pb = d.pb
        self.d, self.image = d, image
        self.cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, namespace="e", uid=f"u-{name}"),
                                       hostname="exechost", log_directory=str(tmp / name))
        self.id = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=self.cfg), timeout=60).pod_sandbox_id

    def run(self, name, script="sleep 600", start=True, **kw):
        pb = self.pb
        cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=self.image),
                                 command=["sh", "-c", script], log_path=f"{name}.log", **kw)
        cid = self.d.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=self.id, config=cfg, sandbox_config=self.cfg), timeout=60).container_id
        if start:
            self.d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
        return cid

    def exec(self, cid, cmd, timeout=0):
        return self.d.runtime.ExecSync(self.pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout),
                                       timeout=120)


def test_exec_runs_in_the_container_and_returns_its_output_and_code(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("app", "echo made > /tmp/mine; exec sleep 600", envs=[p.pb.KeyValue(key="GREETING", value=b"hi")],
                working_dir="/tmp")
    time.sleep(0.3)
    r = p.exec(cid, ["sh", "-c", "cat /tmp/mine; pwd; echo $GREETING; hostname; id -u; echo oops >&2; exit 3"])
    assert r.exit_code == 3
    assert r.stdout.decode().split() == ["made", "/tmp", "hi", "exechost", "0"]
    assert r.stderr == b"oops\n"
    # The container's pid namespace (the pod's): its sleep is there.
    r = p.exec(cid, ["ps", "-o", "args="])
    assert "sleep 600" in r.stdout.decode().split("\n"), r
    # Nothing of criusd's signal set-up: no signal blocked or ignored.
    r = p.exec(cid, ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"])
    assert r.stdout.decode().split() == ["SigBlk:", "0" * 16, "SigIgn:", "0" * 16], r
    # Nor the container's own process (glibc's signals 32 and 33 included).
    r = p.exec(cid, ["sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/$(pidof sleep)/status"])
    assert r.stdout.decode().split() == ["SigBlk:", "0" * 16, "SigIgn:", "0" * 16], r
    # Its cgroup: the exec'd shell is in the container's.
    r = p.exec(cid, ["cat", "/proc/self/cgroup"])
    assert cid in r.stdout.decode(), r.stdout


def test_exec_takes_the_containers_user_and_capabilities(d, tmp, busybox):
    pb = d.pb
    p = Pod(d, tmp, busybox.ref)
    sc = pb.LinuxContainerSecurityContext(capabilities=pb.Capability(drop_capabilities=["CHOWN"]))
    sc.run_as_user.value = 1000
    cid = p.run("app", linux=pb.LinuxContainerConfig(security_context=sc))
    time.sleep(0.3)
    r = p.exec(cid, ["sh", "-c", "id -u; grep CapBnd /proc/self/status"])
    out = r.stdout.decode().split()
    assert out[0] == "1000"
    bounding = int(out[-1], 16)
    assert bounding & (1 << 0) == 0 and bounding & (1 << 5)  # CAP_CHOWN dropped, CAP_KILL kept


def test_a_timeout_kills_the_command(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("app")
    time.sleep(0.3)
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        p.exec(cid, ["sh", "-c", "echo $$ > /tmp/pid; exec sleep 300"], timeout=1)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and "timed out" in e.value.details()
    assert time.monotonic() - started < 10
    # The sleep is gone once the answer is back (its pid, as the container
    # sees it, was written): reaped, not even a zombie left to the
    # container's init (a sleep, which never reaps), as critest checks with
    # pgrep.
    check = "[ -e /proc/$(cat /tmp/pid) ] && cat /proc/$(cat /tmp/pid)/stat || echo gone"
    assert p.exec(cid, ["sh", "-c", check]).stdout == b"gone\n"


def test_output_is_capped_at_16_mib_a_stream(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("app")
    time.sleep(0.3)
    r = p.exec(cid, ["sh", "-c", "head -c 20000000 /dev/zero; echo done >&2"], timeout=60)
    assert r.exit_code == 0
    # 16 MiB of each stream is kept; both must fit one 16 MiB message.
    assert r.stderr == b"done\n" and len(r.stdout) == (16 << 20) - 1024 - len(r.stderr)
    r = p.exec(cid, ["sh", "-c", "head -c 20000000 /dev/zero >&2"], timeout=60)
    assert r.stdout == b"" and len(r.stderr) == (16 << 20) - 1024


def test_bad_execs_are_refused_with_clear_errors(d, tmp, busybox):
    pb = d.pb
    p = Pod(d, tmp, busybox.ref)
    running = p.run("running")
    created = p.run("created", start=False)
    exited = p.run("exited", "true")
    deadline = time.monotonic() + 10
    while d.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=exited)).status.state != \
            pb.CONTAINER_EXITED:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for cid, cmd, code, why in [
        ("f" * 64, ["true"], grpc.StatusCode.NOT_FOUND, "not found"),
        ("", ["true"], grpc.StatusCode.INVALID_ARGUMENT, "container_id"),
        (running, [], grpc.StatusCode.INVALID_ARGUMENT, "cmd"),
        (created, ["true"], grpc.StatusCode.FAILED_PRECONDITION, "not running"),
        (exited, ["true"], grpc.StatusCode.FAILED_PRECONDITION, "not running"),
        (running, ["/no/such/binary"], grpc.StatusCode.INVALID_ARGUMENT, "not found in the container"),
    ]:
        with pytest.raises(grpc.RpcError) as e:
            p.exec(cid, cmd)
        assert e.value.code() == code and why in e.value.details(), (cid, cmd, e.value.details())
    with pytest.raises(grpc.RpcError) as e:
        p.exec(running, ["true"], timeout=-1)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Nothing was left running in the container by the failed ones.
    r = p.exec(running, ["ps", "-o", "args="])
    # (The pod's init and the created container's parked process are the
    # monitor's forks: crius-monitor in ps.)
    left = [a for a in r.stdout.decode().split("\n") if a and "crius-" not in a]
    assert left == ["sleep 600", "ps -o args="], r
