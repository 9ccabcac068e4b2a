"""A container fenced as runc fences it under containerd: capabilities,
no_new_privs, privileged, masked and read-only paths, users and groups,
seccomp, and the pod's sysctls; each request checked from inside a real
container, and each bad request refused before anything is made."""
import json
import os
import subprocess
import time

import grpc
import pytest

from harness import oci
from harness.fixtures import fixture_binary

pytestmark = pytest.mark.usefixtures("leak_check")

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "app:x:1000:1000:app:/home/app:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = ("root:x:0:\napp:x:1000:\naudio:x:29:app\nvideo:x:44:other,app\nstaff:x:50:other\n"
         "nogroup:x:65534:\n")


@pytest.fixture(scope="module")
def fenced_image(registry):
    with open(fixture_binary("euid"), "rb") as f:
        euid = f.read()
    extra = (oci.Layer()
             .file("etc/passwd", PASSWD).file("etc/group", GROUP)
             .file("bin/euid", euid, mode=0o4755)  # setuid root
             .file("etc/secret", "s3cret\n").file("etc/neighbour", "hello\n")
             .dir("srv/data").file("srv/data/file", "data\n")
             .dir("home/app", uid=1000, gid=1000)
             .symlink("escape", "../../../../../tmp").symlink("varrun", "/srv"))
    image = oci.Image([oci.busybox_layer(), extra], cmd=["sh"], env=["PATH=/bin"])
    return oci.push(registry, image, "fenced").ref


@pytest.fixture
def d(make_daemon, registry, fenced_image):
    d = make_daemon(config=f'[registry]\ninsecure = ["{registry.host}"]\n')
    d.image.PullImage(d.pb.PullImageRequest(image=d.pb.ImageSpec(image=fenced_image)), timeout=60)
    yield d
    if d.running:
        pb = d.pb
        for p in d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items:
            d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=30)
            d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=30)


class Pod:
    def __init__(self, d, tmp, image, privileged=False, sysctls=None, host_network=False):
        pb = self.pb = d.pb
        self.d, self.image, self.logs = d, image, tmp / "logs"
        self.cfg = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="fenced", namespace="iso", uid="u-iso"),
            log_directory=str(self.logs))
        self.cfg.linux.security_context.privileged = privileged
        if host_network:
            self.cfg.linux.security_context.namespace_options.network = pb.NODE
        for k, v in (sysctls or {}).items():
            self.cfg.linux.sysctls[k] = v
        self.id = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=self.cfg),
                                          timeout=60).pod_sandbox_id
        self.n = 0

    def config(self, script, **sc):
        pb = self.pb
        self.n += 1
        cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=f"c{self.n}"),
                                 image=pb.ImageSpec(image=self.image),
                                 command=["sh", "-c", script], log_path=f"c{self.n}.log")
        sec = cfg.linux.security_context
        for key, value in sc.items():
            if key == "mounts":
                cfg.mounts.extend(value)
            elif key == "devices":
                cfg.devices.extend(value)
            elif key in ("add", "drop"):
                getattr(sec.capabilities, f"{key}_capabilities").extend(value)
            elif key in ("masked_paths", "readonly_paths", "supplemental_groups"):
                getattr(sec, key).extend(value)
            elif key in ("run_as_user", "run_as_group"):
                getattr(sec, key).value = value
            elif key == "seccomp":
                sec.seccomp.CopyFrom(value)
            else:
                setattr(sec, key, value)
        return cfg

    def create(self, cfg):
        return self.d.runtime.CreateContainer(self.pb.CreateContainerRequest(
            pod_sandbox_id=self.id, config=cfg, sandbox_config=self.cfg), timeout=60).container_id

    def run(self, script, **sc):
        """Runs `script` under the security context `sc`: (exit code, stdout+stderr)."""
        cfg = self.config(script, **sc)
        cid = self.create(cfg)
        self.d.runtime.StartContainer(self.pb.StartContainerRequest(container_id=cid), timeout=60)
        deadline = time.monotonic() + 20
        while True:
            s = self.d.runtime.ContainerStatus(self.pb.ContainerStatusRequest(container_id=cid)).status
            if s.state == self.pb.CONTAINER_EXITED:
                break
            assert time.monotonic() < deadline, f"{script!r} still running"
            time.sleep(0.05)
        text = (self.logs / cfg.log_path).read_text()
        out = "".join(line.split(" ", 3)[3] + "\n" for line in text.splitlines())
        return s.exit_code, out


@pytest.fixture
def pod(d, tmp, fenced_image):
    return Pod(d, tmp, fenced_image)


# --- capabilities ----------------------------------------------------------------

def cap_eff(out):
    line = next(l for l in out.splitlines() if l.startswith("CapEff:"))
    return int(line.split()[1], 16)


def test_default_capabilities_are_containerds(pod):
    code, out = pod.run("grep -E '^Cap(Eff|Bnd|Amb)' /proc/self/status")
    assert code == 0
    default = sum(1 << c for c in (0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31))
    assert cap_eff(out) == default
    assert f"CapBnd:\t{default:016x}" in out and "CapAmb:\t0000000000000000" in out


def test_dropping_chown_makes_chown_fail(pod):
    assert pod.run("chown 1000 /etc/neighbour")[0] == 0
    code, out = pod.run("chown 1000 /etc/neighbour", drop=["CHOWN"])
    assert code != 0 and "Operation not permitted" in out


def test_dropping_net_raw_makes_ping_fail(pod):
    assert pod.run("ping -c1 -W2 127.0.0.1")[0] == 0
    code, out = pod.run("ping -c1 -W2 127.0.0.1", drop=["CAP_NET_RAW"])
    assert code != 0 and "permission denied" in out.lower()


def node_bounding_set():
    """ALL is every capability the node lets its processes have."""
    line = next(l for l in open("/proc/self/status") if l.startswith("CapBnd:"))
    return int(line.split()[1], 16)


def test_add_and_drop_all(pod):
    _, out = pod.run("grep CapEff /proc/self/status", drop=["ALL"], add=["NET_ADMIN"])
    assert cap_eff(out) == 1 << 12
    _, out = pod.run("grep CapEff /proc/self/status", add=["ALL"])
    assert cap_eff(out) == node_bounding_set()


def test_a_non_root_user_has_no_effective_capabilities(pod):
    code, out = pod.run("grep -E '^Cap(Eff|Prm)' /proc/self/status; id -u", run_as_user=1000)
    assert "CapEff:\t0000000000000000" in out and "CapPrm:\t0000000000000000" in out
    assert out.strip().endswith("1000")


# --- no_new_privs, privileged ---------------------------------------------------------

def test_no_new_privs_stops_a_setuid_binary_gaining_root(pod):
    _, out = pod.run("/bin/euid", run_as_user=1000)
    assert "ruid=1000 euid=0" in out  # setuid works without it...
    _, out = pod.run("/bin/euid; grep NoNewPrivs /proc/self/status", run_as_user=1000, no_new_privs=True)
    assert "ruid=1000 euid=1000" in out and "NoNewPrivs:\t1" in out


def test_privileged_has_every_capability_and_a_writable_sys(d, tmp, fenced_image):
    p = Pod(d, tmp, fenced_image, privileged=True)
    code, out = p.run("grep CapEff /proc/self/status; grep ' /sys ' /proc/mounts",
                      privileged=True, masked_paths=["/etc/secret"])
    assert code == 0
    assert cap_eff(out) == node_bounding_set()
    assert " /sys sysfs rw," in out
    assert p.run("cat /etc/secret", privileged=True, masked_paths=["/etc/secret"])[1] == "s3cret\n"
    # The node's devices, as containerd gives them (one the node can open and
    # no default list has: this VM's disk cannot be read even by the node).
    dev = next(d for d in ("/dev/kvm", "/dev/fuse", "/dev/loop-control") if os.path.exists(d))
    code, out = p.run(f"[ -c {dev} ] && exec 3<>{dev} && echo opened", privileged=True)
    assert code == 0 and "opened" in out, out
    code, out = p.run(f"ls {dev}")
    assert code != 0


def test_a_privileged_container_needs_a_privileged_pod(pod):
    with pytest.raises(grpc.RpcError) as e:
        pod.create(pod.config("true", privileged=True))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.linux.security_context.privileged" in e.value.details()


# --- masked and read-only paths ---------------------------------------------------

def test_masked_paths_are_unreadable_while_their_neighbours_work(pod):
    code, out = pod.run("cat /etc/secret; echo; cat /etc/neighbour; ls /srv/data | wc -l; cat /proc/kallsyms | wc -c",
                        masked_paths=["/etc/secret", "/srv/data", "/proc/kallsyms", "/no/such/path"])
    assert code == 0
    assert out == "\nhello\n0\n0\n"


def test_readonly_paths_refuse_writes(pod):
    code, out = pod.run("echo x > /srv/data/new && echo wrote; cat /srv/data/file; echo y > /etc/neighbour && echo ok",
                        readonly_paths=["/srv/data", "/proc/sys"])
    assert "wrote" not in out and "Read-only file system" in out
    assert "data\n" in out and out.strip().endswith("ok")


def test_readonly_rootfs(pod):
    code, out = pod.run("touch /x", readonly_rootfs=True)
    assert code != 0 and "Read-only file system" in out


# --- mounts --------------------------------------------------------------------------

@pytest.fixture
def mounts(tmp):
    """Mount points made by a test, unmounted (deepest first) whatever happens."""
    made = []

    def mount(*args):
        target = args[-1]
        subprocess.run(["mount", *args], check=True)
        made.append(target)
        return target
    yield mount
    for target in reversed(made):
        subprocess.run(["umount", "-R", str(target)], check=False)


def mount_spec(pb, host, container, **kw):
    return pb.Mount(host_path=str(host), container_path=container, **kw)


def test_recursive_read_only_reaches_submounts(pod, tmp, mounts):
    (tmp / "vol").mkdir()
    mounts("-t", "tmpfs", "tmpfs", str(tmp / "vol"))
    (tmp / "vol" / "sub").mkdir()
    mounts("-t", "tmpfs", "tmpfs", str(tmp / "vol" / "sub"))
    pb = pod.pb
    _, out = pod.run("touch /v/sub/x && echo sub-writable; touch /v/y || true",
                     mounts=[mount_spec(pb, tmp / "vol", "/v", readonly=True)])
    assert "sub-writable" in out  # plain read-only stops at the top mount
    _, out = pod.run("touch /v/sub/z && echo sub-writable; true",
                     mounts=[mount_spec(pb, tmp / "vol", "/v", readonly=True, recursive_read_only=True)])
    assert "sub-writable" not in out and "Read-only file system" in out
    conditions = pod.d.runtime.Status(pb.StatusRequest()).runtime_handlers
    assert conditions[0].name == "" and conditions[0].features.recursive_read_only_mounts


def test_host_to_container_propagation(pod, tmp, mounts):
    (tmp / "prop").mkdir()
    mounts("-t", "tmpfs", "tmpfs", str(tmp / "prop"))
    subprocess.run(["mount", "--make-shared", str(tmp / "prop")], check=True)
    (tmp / "prop" / "sub").mkdir()
    pb = pod.pb
    cfg = pod.config("for i in $(seq 100); do [ -e /p/sub/flag ] && cat /p/sub/flag && exit 0; sleep 0.1; done; exit 1",
                     mounts=[mount_spec(pb, tmp / "prop", "/p", propagation=pb.PROPAGATION_HOST_TO_CONTAINER)])
    cid = pod.create(cfg)
    pod.d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
    mounts("-t", "tmpfs", "tmpfs", str(tmp / "prop" / "sub"))  # after the container started
    (tmp / "prop" / "sub" / "flag").write_text("from the node\n")
    deadline = time.monotonic() + 20
    while pod.d.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status.state != pb.CONTAINER_EXITED:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert pod.d.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status.exit_code == 0
    assert "from the node" in (pod.logs / cfg.log_path).read_text()


def test_bidirectional_propagation_shows_container_mounts_on_the_node(d, tmp, fenced_image, mounts):
    (tmp / "bi").mkdir()
    mounts("-t", "tmpfs", "tmpfs", str(tmp / "bi"))
    subprocess.run(["mount", "--make-shared", str(tmp / "bi")], check=True)
    (tmp / "bi" / "sub").mkdir()
    p = Pod(d, tmp, fenced_image, privileged=True)
    pb = p.pb
    node_mounts = {l.split()[4] for l in open("/proc/self/mountinfo")}
    code, out = p.run("mount -t tmpfs -o size=1m made-in-container /b/sub && echo mounted",
                      privileged=True,
                      mounts=[mount_spec(pb, tmp / "bi", "/b", propagation=pb.PROPAGATION_BIDIRECTIONAL)])
    assert code == 0, out
    try:
        seen = [l.split()[1] for l in open("/proc/self/mounts") if l.startswith("made-in-container ")]
        assert str(tmp / "bi" / "sub") in seen
        # ... and the container's teardown of its copies unmounted nothing here.
        assert node_mounts - {l.split()[4] for l in open("/proc/self/mountinfo")} == set()
    finally:
        subprocess.run(["umount", str(tmp / "bi" / "sub")], check=False)


def test_propagation_needs_the_host_side_to_propagate(pod, tmp, mounts):
    (tmp / "priv").mkdir()
    mounts("-t", "tmpfs", "tmpfs", str(tmp / "priv"))
    subprocess.run(["mount", "--make-private", str(tmp / "priv")], check=True)
    pb = pod.pb
    with pytest.raises(grpc.RpcError) as e:
        pod.create(pod.config("true", mounts=[
            mount_spec(pb, tmp / "priv", "/p", propagation=pb.PROPAGATION_BIDIRECTIONAL)]))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.mounts[0]" in e.value.details() and "mount --make-rshared" in e.value.details()
    assert_nothing_made(pod.d, 1)


@pytest.mark.parametrize("container_path,mount_kw,why", [
    ("/escape/x", {}, "leads out of the root filesystem through the image's symlink /escape"),
    ("/v", {"recursive_read_only": True}, "recursive_read_only needs readonly"),
    ("/v", {"readonly": True, "recursive_read_only": True, "propagation": 1},
     "recursive_read_only needs private propagation"),
    ("relative", {}, "is not absolute"),
    ("/a/../../etc", {}, "has a \"..\" part"),
])
def test_bad_mounts_are_refused_naming_the_mount(pod, tmp, container_path, mount_kw, why):
    pb = pod.pb
    with pytest.raises(grpc.RpcError) as e:
        pod.create(pod.config("true", mounts=[mount_spec(pb, tmp, container_path, **mount_kw)]))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.mounts[0]" in e.value.details() and why in e.value.details(), e.value.details()
    assert_nothing_made(pod.d, 1)


def test_a_host_path_that_does_not_exist_is_refused(pod, tmp):
    with pytest.raises(grpc.RpcError) as e:
        pod.create(pod.config("true", mounts=[mount_spec(pod.pb, tmp / "nope", "/n")]))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.mounts[0]" in e.value.details() and "does not exist" in e.value.details()
    assert_nothing_made(pod.d, 1)


def test_an_absolute_image_symlink_resolves_inside_the_root(pod, tmp):
    (tmp / "vol2").mkdir()
    (tmp / "vol2" / "f").write_text("mounted\n")
    code, out = pod.run("cat /srv/m/f", mounts=[mount_spec(pod.pb, tmp / "vol2", "/varrun/m")])
    assert code == 0 and out == "mounted\n"


# --- seccomp -----------------------------------------------------------------------------

def profile(pb, kind, path=""):
    return pb.SecurityProfile(profile_type=getattr(pb.SecurityProfile, kind), localhost_ref=path)


def test_runtime_default_seccomp_blocks_unshare_and_mount(pod):
    pb = pod.pb
    # A user namespace needs no capability: only the filter can stop it.
    code, out = pod.run("unshare -U true && echo unshared; grep Seccomp: /proc/self/status",
                        seccomp=profile(pb, "Unconfined"))
    assert "unshared" in out and "Seccomp:\t0" in out
    code, out = pod.run("unshare -U true && echo unshared; mount -t tmpfs t /mnt && echo mounted; "
                        "grep Seccomp: /proc/self/status; echo alive",
                        seccomp=profile(pb, "RuntimeDefault"))
    assert "unshared" not in out and "mounted" not in out
    assert "Operation not permitted" in out and "Seccomp:\t2" in out and "alive" in out


def test_nothing_asked_is_unconfined_as_under_containerd(pod):
    assert "Seccomp:\t0" in pod.run("grep Seccomp: /proc/self/status")[1]


def test_the_deprecated_profile_path_still_works(pod):
    _, out = pod.run("grep Seccomp: /proc/self/status", seccomp_profile_path="runtime/default")
    assert "Seccomp:\t2" in out


def test_a_localhost_profile_is_enforced(pod, tmp):
    path = tmp / "deny-mkdir.json"
    path.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}))
    code, out = pod.run("mkdir /tmp/x && echo made; echo alive",
                        seccomp=profile(pod.pb, "Localhost", str(path)))
    assert "made" not in out and "Operation not permitted" in out and "alive" in out
    _, out = pod.run("mkdir /tmp/x && echo made", seccomp_profile_path=f"localhost/{path}")
    assert "made" not in out


@pytest.mark.parametrize("text,why", [
    (None, "cannot be read"),
    ("{not json", "not valid JSON"),
    ('{"defaultAction": "SCMP_ACT_EXPLODE"}', "SCMP_ACT_EXPLODE"),
])
def test_bad_localhost_profiles_are_refused_naming_the_field(pod, tmp, text, why):
    path = tmp / "profile.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(grpc.RpcError) as e:
        pod.create(pod.config("true", seccomp=profile(pod.pb, "Localhost", str(path))))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.linux.security_context.seccomp.localhost_ref" in e.value.details()
    assert why in e.value.details(), e.value.details()
    assert_nothing_made(pod.d, 1)


# --- devices ---------------------------------------------------------------------------

def test_a_cri_device_is_a_node_in_the_containers_dev(pod):
    pb = pod.pb
    st = os.stat("/dev/zero")
    code, out = pod.run("ls -ln /dev/myzero; head -c 4 /dev/myzero | wc -c",
                        devices=[pb.Device(host_path="/dev/zero", container_path="/dev/myzero",
                                           permissions="rw")])
    assert code == 0, out
    mode, _, uid, gid, numbers = out.split()[:5]
    assert mode.startswith("c") and numbers.rstrip(",") == str(os.major(st.st_rdev))
    assert out.split()[-1] == "4"


def test_device_nodes_the_container_makes_cannot_be_opened(pod, tmp):
    """Even ones the device policy allows (null): the rootfs, /dev and the CRI
    mounts are nodev, a second fence beside the device policy."""
    (tmp / "vol").mkdir()
    code, out = pod.run("mknod /tmp/mynull c 1 3 && echo made; echo x > /tmp/mynull && echo opened; "
                        "mknod /dev/mynull c 1 3; echo y > /dev/mynull && echo opened-dev; "
                        "mknod /v/mynull c 1 3; echo z > /v/mynull && echo opened-vol; echo x > /dev/null && echo null-ok",
                        mounts=[pod.pb.Mount(host_path=str(tmp / "vol"), container_path="/v")])
    assert "made" in out and "null-ok" in out
    assert "opened" not in out.replace("null-ok", ""), out


@pytest.mark.parametrize("device,why", [
    (dict(host_path="/dev/crius-no-such-device", container_path="/dev/x"), "does not exist"),
    (dict(host_path="/etc/hostname", container_path="/dev/x"), "is not a device"),
    (dict(host_path="/dev/zero", container_path="/dev/x", permissions="rx"), "are not a subset of rwm"),
    (dict(host_path="/dev/zero", container_path="dev/x"), "is not a clean absolute path"),
])
def test_bad_devices_are_refused_naming_the_device(pod, device, why):
    with pytest.raises(grpc.RpcError) as e:
        pod.create(pod.config("true", devices=[pod.pb.Device(**device)]))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.devices[0]" in e.value.details() and why in e.value.details()
    assert_nothing_made(pod.d, 1)


# --- users and groups -------------------------------------------------------------

def test_run_as_user_and_group_with_supplemental_groups_merged_from_the_image(pod):
    _, out = pod.run("id -u; id -g; id -G", run_as_user=1000, supplemental_groups=[2000])
    uid, gid, groups = out.split("\n")[:3]
    assert (uid, gid) == ("1000", "1000")
    assert sorted(int(g) for g in groups.split()) == [29, 44, 1000, 2000]
    _, out = pod.run("id -u; id -g", run_as_user=1000, run_as_group=3000)
    assert out.split("\n")[:2] == ["1000", "3000"]


def test_strict_supplemental_groups_ignore_the_image(pod):
    _, out = pod.run("id -G", run_as_user=1000, supplemental_groups=[2000],
                     supplemental_groups_policy=pod.pb.Strict)
    assert sorted(int(g) for g in out.split()) == [1000, 2000]


def test_run_as_username_is_looked_up_in_the_image(pod):
    _, out = pod.run("id -u; echo $HOME", run_as_username="app")
    assert out.split("\n")[:2] == ["1000", "/home/app"]


# --- sysctls ----------------------------------------------------------------------

def test_namespaced_sysctls_are_set_in_the_pod_only(d, tmp, fenced_image):
    node_value = open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read()
    p = Pod(d, tmp, fenced_image, sysctls={"net.ipv4.ip_unprivileged_port_start": "80",
                                           "kernel.shmmni": "1234"})
    _, out = p.run("cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni")
    assert out == "80\n1234\n"
    assert open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read() == node_value


# --- bad input ----------------------------------------------------------------------

def assert_nothing_made(d, pods_before):
    pb = d.pb
    assert list(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == []
    assert len(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items) == pods_before
    path = d.root / "containers"
    assert not path.exists() or os.listdir(path) == []


@pytest.mark.parametrize("sc,field", [
    (dict(add=["CAP_NO_SUCH"]), 'capabilities.add_capabilities[0]: unknown capability "CAP_NO_SUCH"'),
    (dict(drop=["CHOWN", "bogus"]), 'capabilities.drop_capabilities[1]: unknown capability "bogus"'),
    (dict(masked_paths=["relative"]), 'masked_paths[0]: "relative" is not a clean absolute path'),
    (dict(readonly_paths=["/a/../b"]), 'readonly_paths[0]: "/a/../b"'),
    (dict(supplemental_groups=[-1]), "supplemental_groups[0]: -1 is not a group id"),
    (dict(run_as_user=-5), "run_as_user: -5 is not a user id"),
    (dict(run_as_group=3000), "run_as_group: is set without run_as_user or run_as_username"),
])
def test_bad_security_contexts_are_refused_naming_the_field(pod, sc, field):
    with pytest.raises(grpc.RpcError) as e:
        pod.create(pod.config("true", **sc))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"config.linux.security_context.{field}" in e.value.details()
    assert_nothing_made(pod.d, 1)


@pytest.mark.parametrize("sysctls,host_network,why", [
    ({"vm.swappiness": "10"}, False, "is not a namespaced sysctl"),
    ({"kernel.pid_max": "100000"}, False, "is not a namespaced sysctl"),
    ({"net.ipv4.ip_forward": "1"}, True, "the pod uses the node's network namespace"),
    ({"net/../../vm/swappiness": "1"}, False, "is not a sysctl name"),
    ({"net.ipv4.ip_forward": "1\n"}, False, "has a newline"),
])
def test_bad_sysctls_are_refused_naming_the_key(d, tmp, fenced_image, sysctls, host_network, why):
    with pytest.raises(grpc.RpcError) as e:
        Pod(d, tmp, fenced_image, sysctls=sysctls, host_network=host_network)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    key = next(iter(sysctls))
    assert f'config.linux.sysctls["{key}"]' in e.value.details() and why in e.value.details()
    assert_nothing_made(d, 0)
    assert not (d.state / "pods").exists() or os.listdir(d.state / "pods") == []
