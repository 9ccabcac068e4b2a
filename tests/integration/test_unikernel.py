"""Unikernel pods: RuntimeClass handlers crius-spt and crius-hvt run a pod's
containers as the project's own solo5 guests, under the real tenders, with
real seccomp, /dev/kvm, taps and the CNI bridge inside a test-made netns.
The guests come in OCI images pulled through the CRI from the test registry."""
import json
import os
import re
import signal
import subprocess
import time
import urllib.request

import grpc
import pytest

from harness import oci
from harness.node import Node
from harness.registry import Registry
from harness.util import build_dir

pytestmark = pytest.mark.usefixtures("leak_check")

FLAVOURS = ["spt", "hvt"]
# A node without KVM (a VM whose hypervisor offers no nested KVM) cannot run
# crius-hvt pods: those tests are skipped there, saying so; spt's still run.
KVM = os.access("/dev/kvm", os.R_OK | os.W_OK)
GUESTS = ["hello", "net", "blk", "shutdown", "sleeper", "fault", "forbidden"]
MiB = 1 << 20


def guest_elf(name, flavour):
    path = build_dir() / "unikernel" / "guests" / f"{name}.{flavour}"
    if not path.exists():
        pytest.skip(f"guest {path} not built")
    return path.read_bytes()


def guest_image(name, flavour, **kwargs):
    return oci.unikernel_image(name, guest_elf(name, flavour), flavour, **kwargs)


METRICS = "127.0.0.1:9654"  # inside the node's netns: no other daemon there


class UnikernelNode(Node):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, extra_config=f'[metrics]\naddress = "{METRICS}"\n', **kwargs)

    def metrics(self):
        def get():
            with urllib.request.urlopen(f"http://{METRICS}/metrics", timeout=10) as r:
                return r.read().decode()
        return self.ns.call(get)

    def run_guest_pod(self, flavour, name="uk"):
        if flavour == "hvt" and not KVM:
            pytest.skip("this node has no /dev/kvm: crius-hvt pods cannot run here")
        cfg = self.pod_config(name=name)
        return self.run_pod(cfg, handler=f"crius-{flavour}"), cfg

    def status(self, cid):
        return self.d.runtime.ContainerStatus(self.pb.ContainerStatusRequest(container_id=cid)).status

    def wait_log(self, pod_name, text, container_name="c", timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            try:
                log = self.log(pod_name, container_name)
            except FileNotFoundError:
                log = ""
            if text in log:
                return log
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the log after {timeout}s: {log!r}")
            time.sleep(0.02)

    def stop(self, cid, timeout):
        self.d.runtime.StopContainer(self.pb.StopContainerRequest(container_id=cid, timeout=timeout), timeout=60)
        return self.status(cid)

    def push(self, image, repo):
        ref = oci.push(self.registry, image, repo).ref
        self.pull(ref)
        return ref

    def taps(self):
        return [link for link in self.links() if link.startswith("tap")]

    def tender_pids(self):
        out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
        return [int(line.split()[0]) for line in out.splitlines()[1:]
                if re.search(r"/crius-(spt|hvt) ", line)]


@pytest.fixture
def node_registry(netns):
    with Registry(netns=netns) as reg:
        yield reg


@pytest.fixture
def node(netns, tmp, make_daemon, node_registry):
    n = UnikernelNode(netns, tmp, make_daemon, node_registry)
    yield n
    if n.d.running:
        n.remove_all()
    assert n.tender_pids() == [], "a tender outlived its pod"


def rpc_error(call):
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value


# --- lifecycle ---------------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_guest_logs_its_console_and_exits_with_its_code(node, flavour):
    ref = node.push(guest_image("hello", flavour, cmdline="greeting exit=7"), f"hello-{flavour}")
    pod_id, cfg = node.run_guest_pod(flavour)
    cid = node.run_container(pod_id, cfg, ref)
    s = node.wait_exit(cid)
    assert (s.exit_code, s.reason) == (7, "Error")
    log = node.log("uk")
    # hello has no net device, so it is told no address.
    assert re.search(r"^\S+ stdout F hello from a crius guest: greeting exit=7$", log, re.M), log
    # Kubernetes' args replace the image's command line.
    cid = node.run_container(pod_id, cfg, ref, name="again", args=["exit=0"])
    s = node.wait_exit(cid)
    assert (s.exit_code, s.reason) == (0, "Completed")
    assert "hello from a crius guest: exit=0\n" in node.log("uk", "again")
    status = node.pod_status(pod_id).status
    assert status.runtime_handler == f"crius-{flavour}"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_guest_is_the_pod_ip_for_ping_and_http(node, flavour):
    ref = node.push(guest_image("net", flavour), f"net-{flavour}")
    pod_id, cfg = node.run_guest_pod(flavour)
    node.run_container(pod_id, cfg, ref)
    ip = node.pod_status(pod_id).status.network.ip
    node.wait_log("uk", "net: serving on")
    ping = node.ns.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", ip], check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert node.http_get_eventually(f"http://{ip}/") == (200, "hello\n")
    # The pod's own stack sees none of it: eth0's traffic is the guest's.
    links = node.links()
    assert node.taps() == [], links  # the tap lives in the pod's netns, not the node's
    node.remove_all()
    node.assert_pod_network_gone(pod_id)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_block_image_from_the_image_is_written_and_read_back(node, flavour):
    blocks = {"storage": ("/unikernel/disk.img", b"\0" * (64 * 512))}
    ref = node.push(guest_image("blk", flavour, blocks=blocks), f"blk-{flavour}")
    pod_id, cfg = node.run_guest_pod(flavour)
    cid = node.run_container(pod_id, cfg, ref)
    s = node.wait_exit(cid)
    assert s.exit_code == 0, node.log("uk")
    assert "blk: ok, 64 blocks of 512 bytes" in node.log("uk")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_stop_asks_a_cooperative_guest_halts_an_unaware_one_and_kills_at_the_timeout(node, flavour):
    coop = node.push(guest_image("shutdown", flavour, cmdline="status=3"), f"shutdown-{flavour}")
    unaware = node.push(guest_image("sleeper", flavour), f"sleeper-{flavour}")
    pod_id, cfg = node.run_guest_pod(flavour)

    cid = node.run_container(pod_id, cfg, coop, name="coop")
    node.wait_log("uk", "waiting for shutdown", "coop")
    s = node.stop(cid, timeout=10)
    assert (s.exit_code, s.state) == (3, node.pb.CONTAINER_EXITED)
    assert "shutdown requested, exiting" in node.log("uk", "coop")

    cid = node.run_container(pod_id, cfg, unaware, name="unaware")
    node.wait_log("uk", "waiting for shutdown", "unaware")
    t0 = time.monotonic()
    s = node.stop(cid, timeout=10)
    assert s.exit_code == 143
    assert time.monotonic() - t0 < 5, "an unaware guest is halted at once, not at the timeout"

    cid = node.run_container(pod_id, cfg, coop, name="killed", args=["busy_ms=30000"])
    node.wait_log("uk", "busy", "killed")
    s = node.stop(cid, timeout=0)
    assert s.exit_code == 137

    metrics = node.metrics()
    for outcome in ("cooperative", "halted", "killed"):
        assert f'crius_tender_shutdowns_total{{flavour="{flavour}",outcome="{outcome}"}} 1' in metrics, metrics
    assert f'crius_tender_starts_total{{flavour="{flavour}"}} 3' in metrics
    assert f'crius_tender_exits_total{{flavour="{flavour}",reason="Shutdown"}} 3' in metrics
    boots = re.search(rf'crius_guest_boot_duration_seconds_count{{flavour="{flavour}"}} (\d+)', metrics)
    assert boots and int(boots.group(1)) == 3, metrics


@pytest.mark.parametrize("flavour,mode,message", [
    ("spt", "zeropage", "guest fault: SIGSEGV"),
    ("hvt", "zeropage", "guest fault:"),
    ("hvt", "mmio", "guest fault: access to unmapped guest-physical address"),
])
def test_a_guest_fault_is_exit_255_with_the_fault_in_the_status(node, flavour, mode, message):
    ref = node.push(guest_image("fault", flavour, cmdline=mode), f"fault-{flavour}")
    pod_id, cfg = node.run_guest_pod(flavour)
    cid = node.run_container(pod_id, cfg, ref)
    s = node.wait_exit(cid)
    assert (s.exit_code, s.reason) == (255, "Error")
    assert s.message.startswith(message), s.message


def test_a_forbidden_syscall_under_spt_ends_the_guest_with_the_fault(node):
    ref = node.push(guest_image("forbidden", "spt"), "forbidden-spt")
    pod_id, cfg = node.run_guest_pod("spt")
    cid = node.run_container(pod_id, cfg, ref)
    s = node.wait_exit(cid)
    assert s.exit_code == 255
    assert "system call outside the spt allowlist (SIGSYS)" in s.message
    assert "forbidden: survived" not in node.log("uk")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_guest_memory_is_the_limit_less_the_tender_reserve(node, flavour):
    ref = node.push(guest_image("sleeper", flavour), f"sleeper-{flavour}")
    pod_id, cfg = node.run_guest_pod(flavour)
    cid = node.run_container(pod_id, cfg, ref, memory_limit=64 * MiB)
    node.wait_log("uk", "waiting for shutdown")
    info = json.loads(node.d.runtime.ContainerStatus(
        node.pb.ContainerStatusRequest(container_id=cid, verbose=True)).info["info"])
    with open(f"/proc/{info['pid']}/cmdline", "rb") as f:
        argv = f.read().split(b"\0")
    # 64 MiB less the default reserve of 16 and 1 for page tables, in 2 MiB.
    assert b"--mem=46" in argv, argv
    cgroup = open(f"/proc/{info['pid']}/cgroup").read()
    assert cid in cgroup, "the tender runs in the container's cgroup"
    stats = node.d.runtime.ContainerStats(node.pb.ContainerStatsRequest(container_id=cid)).stats
    assert stats.memory.working_set_bytes.value > 0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_guest_may_touch_all_its_memory_and_faulting_past_it_is_its_own_end(node, flavour):
    ref = node.push(guest_image("fault", flavour, cmdline="overmem"), f"overmem-{flavour}")
    pod_id, cfg = node.run_guest_pod(flavour)
    cid = node.run_container(pod_id, cfg, ref, memory_limit=64 * MiB)
    s = node.wait_exit(cid)
    # All 46 MiB of guest memory were touched inside the 64 MiB limit: the
    # tender was not OOM-killed; the first byte past them ended the guest.
    touched = re.search(r"fault: touched (\d+) MiB", node.log("uk"))
    assert touched and int(touched.group(1)) >= 42, node.log("uk")
    assert (s.exit_code, s.reason) == (255, "Error"), (s.exit_code, s.reason, s.message)
    assert s.message.startswith("guest fault"), s.message
    # The node goes on: the next guest in the pod runs.
    hello = node.push(guest_image("hello", flavour), f"hello-{flavour}")
    assert node.wait_exit(node.run_container(pod_id, cfg, hello, name="after", args=["exit=0"])).exit_code == 0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_urunc_images_run_too(node, flavour):
    keys = {"com.urunc.unikernel.hypervisor": flavour,
            "com.urunc.unikernel.binary": f"/unikernel/hello.{flavour}",
            "com.urunc.unikernel.cmdline": "from urunc exit=0",
            "com.urunc.unikernel.unikernelType": "mirage"}
    ref = node.push(guest_image("hello", flavour, keys=keys, use_labels=True), f"urunc-{flavour}")
    pod_id, cfg = node.run_guest_pod(flavour)
    cid = node.run_container(pod_id, cfg, ref)
    assert node.wait_exit(cid).exit_code == 0
    assert "hello from a crius guest: from urunc exit=0\n" in node.log("uk")


def test_a_criusd_restart_leaves_the_guest_running(node):
    ref = node.push(guest_image("net", "hvt"), "net-hvt")
    pod_id, cfg = node.run_guest_pod("hvt")
    cid = node.run_container(pod_id, cfg, ref)
    ip = node.pod_status(pod_id).status.network.ip
    assert node.http_get_eventually(f"http://{ip}/") == (200, "hello\n")
    node.d.restart()
    assert node.status(cid).state == node.pb.CONTAINER_RUNNING
    assert node.http_get(f"http://{ip}/") == (200, "hello\n")
    s = node.stop(cid, timeout=10)
    assert s.exit_code == 0  # the net guest opts into shutdown


def test_init_containers_run_one_after_another_before_the_guest_that_serves(node):
    hello = node.push(guest_image("hello", "hvt"), "hello-hvt")
    net = node.push(guest_image("net", "hvt"), "net-hvt")
    pod_id, cfg = node.run_guest_pod("hvt")
    for i in (1, 2):  # as kubelet runs init containers: each to its end
        cid = node.run_container(pod_id, cfg, hello, name=f"init{i}", args=[f"init{i}", "exit=0"])
        assert node.wait_exit(cid).exit_code == 0
        assert f"hello from a crius guest: init{i} exit=0\n" in node.log("uk", f"init{i}")
    node.run_container(pod_id, cfg, net, name="main")
    ip = node.pod_status(pod_id).status.network.ip
    assert node.http_get_eventually(f"http://{ip}/") == (200, "hello\n")
    states = {c.metadata.name: c.state for c in
              node.d.runtime.ListContainers(node.pb.ListContainersRequest()).containers}
    assert states == {"init1": node.pb.CONTAINER_EXITED, "init2": node.pb.CONTAINER_EXITED,
                      "main": node.pb.CONTAINER_RUNNING}


def test_a_crash_after_the_guest_link_leaves_nothing_after_restart(node):
    node.d.failpoints = ["sandbox_run.after_guest_link"]
    node.d.restart()
    with pytest.raises(grpc.RpcError):
        node.run_guest_pod("spt")
    assert node.d.wait_exit() == -signal.SIGKILL
    node.d.failpoints = []
    node.d.start()
    # The pod was never recorded ready: the restart rolls it back by itself.
    assert list(node.d.runtime.ListPodSandbox(node.pb.ListPodSandboxRequest()).items) == []
    assert node.reserved_ips() == []
    assert [link for link in node.links() if link.startswith(("veth", "tap"))] == []
    assert ":CNI-DN-" not in node.nat_rules()
    # The pod network works again at once: the next guest pod serves.
    ref = node.push(guest_image("net", "spt"), "net-spt")
    pod_id, cfg = node.run_guest_pod("spt")
    node.run_container(pod_id, cfg, ref)
    ip = node.pod_status(pod_id).status.network.ip
    assert node.http_get_eventually(f"http://{ip}/") == (200, "hello\n")


# --- refused ---------------------------------------------------------------------------

def test_exec_attach_are_refused_and_port_forward_reaches_the_pod_ip(node):
    ref = node.push(guest_image("sleeper", "spt"), "sleeper-spt")
    pod_id, cfg = node.run_guest_pod("spt")
    cid = node.run_container(pod_id, cfg, ref)
    pb = node.pb
    for call in (lambda: node.d.runtime.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["true"])),
                 lambda: node.d.runtime.Exec(pb.ExecRequest(container_id=cid, cmd=["sh"], stdout=True)),
                 lambda: node.d.runtime.Attach(pb.AttachRequest(container_id=cid, stdout=True))):
        e = rpc_error(call)
        assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "unikernel guests under crius-spt" in e.details(), e.details()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_bad_guest_images_are_refused_and_leave_nothing(node, flavour):
    other = "hvt" if flavour == "spt" else "spt"
    no_elf = oci.Image([oci.Layer().file("/etc/x", b"x")], env=None, annotations={
        "org.crius.unikernel.flavour": flavour, "org.crius.unikernel.binary": "/unikernel/missing"})
    wrong = guest_image("hello", other)
    wrong.annotations["org.crius.unikernel.flavour"] = flavour  # says so, but its ELF is for the other
    plain = oci.busybox_image()
    escape = guest_image("blk", flavour, extra_files=[("symlink", "/unikernel/disk.img", "../../../../etc/passwd")],
                         blocks=None)
    escape.annotations["org.crius.unikernel.block"] = "storage=/unikernel/disk.img"
    dotdot = guest_image("blk", flavour)
    dotdot.annotations["org.crius.unikernel.block"] = "storage=/unikernel/../../etc/passwd"
    cases = [
        (no_elf, {}, grpc.StatusCode.INVALID_ARGUMENT, 'guest binary "/unikernel/missing" is not in the image'),
        (wrong, {}, grpc.StatusCode.INVALID_ARGUMENT, f"built for {other}, not {flavour}"),
        (guest_image("hello", other), {}, grpc.StatusCode.INVALID_ARGUMENT, f"is a {other} guest"),
        (plain, {}, grpc.StatusCode.INVALID_ARGUMENT, "carries no unikernel guest"),
        (guest_image("hello", flavour), {"memory_limit": 20 * MiB}, grpc.StatusCode.INVALID_ARGUMENT,
         "memory_limit_in_bytes: 20 MiB less the tender's reserve of 16 MiB and 1 MiB of page tables leaves 2 MiB"),
        (escape, {}, grpc.StatusCode.INVALID_ARGUMENT, "is or passes through a symlink"),
        (dotdot, {}, grpc.StatusCode.INVALID_ARGUMENT, "is not a clean absolute path"),
    ]
    pod_id, cfg = node.run_guest_pod(flavour)
    for i, (image, kwargs, code, text) in enumerate(cases):
        ref = node.push(image, f"bad{i}-{flavour}")
        e = rpc_error(lambda: node.create_container(pod_id, cfg, ref, name=f"bad{i}", **kwargs))
        assert e.code() == code, (i, e.details())
        assert text in e.details(), (i, e.details())
    assert len(node.d.runtime.ListContainers(node.pb.ListContainersRequest()).containers) == 0
    assert node.tender_pids() == []


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_image_volume_of_a_guest_is_refused(node, flavour):
    ref = node.push(guest_image("hello", flavour), f"hello-{flavour}")
    node.pull(ref)
    pod_id, cfg = node.run_guest_pod(flavour)
    c = node.container_config(ref, name="vol")
    c.mounts.append(node.pb.Mount(container_path="/data", image=node.pb.ImageSpec(image=ref), readonly=True))
    e = rpc_error(lambda: node.d.runtime.CreateContainer(node.pb.CreateContainerRequest(
        pod_sandbox_id=pod_id, config=c, sandbox_config=cfg), timeout=60))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"config.mounts[0].image: an image volume needs a namespace container: a crius-{flavour} guest" \
        in e.details(), e.details()
    assert len(node.d.runtime.ListContainers(node.pb.ListContainersRequest()).containers) == 0
    assert not os.path.exists(f"{node.d.state}/image-volumes") or \
        [n for n in os.listdir(f"{node.d.state}/image-volumes") if not n.startswith(".")] == []


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_second_running_guest_in_a_pod_is_refused_naming_the_rule(node, flavour):
    ref = node.push(guest_image("sleeper", flavour), f"sleeper-{flavour}")
    pod_id, cfg = node.run_guest_pod(flavour)
    first = node.run_container(pod_id, cfg, ref, name="first")
    e = rpc_error(lambda: node.create_container(pod_id, cfg, ref, name="second"))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "runs one unikernel guest at a time" in e.details() and first in e.details()
    node.stop(first, timeout=0)
    node.run_container(pod_id, cfg, ref, name="second")  # one after another is fine


def test_unikernel_pods_refuse_host_network_and_unknown_handlers(node):
    cfg = node.pod_config(name="hostnet", host_network=True)
    e = rpc_error(lambda: node.run_pod(cfg, handler="crius-hvt"))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "namespace_options.network" in e.details()
    e = rpc_error(lambda: node.run_pod(node.pod_config(name="x"), handler="crius-qemu"))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert 'unknown handler "crius-qemu"' in e.details()
    assert len(node.d.runtime.ListPodSandbox(node.pb.ListPodSandboxRequest()).items) == 0
