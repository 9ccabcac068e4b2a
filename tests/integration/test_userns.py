"""Pods in user namespaces, as kubelet asks for them (userns_options, the
mounts' uidMappings and gidMappings: KEP-127), through a real criusd: root in
the container is an unprivileged host ID outside, the image's files are root's
inside through idmapped lower layers, an idmapped volume shows its files with
the pod's IDs, the namespace survives a criusd restart, and bad options are
refused naming the field with nothing left behind."""
import fcntl
import json
import os
import time

import grpc
import pytest

from harness import oci

pytestmark = pytest.mark.usefixtures("leak_check")

CG = "/sys/fs/cgroup"
# A range per test process, far from the node's own IDs (and the overflow ID).
HOST = 0x10000000 + (os.getpid() % 256) * 0x10000
LENGTH = 65536


@pytest.fixture(scope="module")
def image(registry):
    layer = oci.Layer().dir("home/app", mode=0o750, uid=1000, gid=1000) \
                       .file("home/app/note", "mine\n", mode=0o600, uid=1000, gid=1000)
    return oci.push(registry, oci.Image([oci.busybox_layer(), layer], cmd=["sh"], env=["PATH=/bin"]),
                    "userns").ref


@pytest.fixture
def d(make_daemon, registry, image):
    d = make_daemon(config=f'[registry]\ninsecure = ["{registry.host}"]\n')
    if not d.runtime.Status(d.pb.StatusRequest()).runtime_handlers[0].features.user_namespaces:
        pytest.fail("criusd says this node cannot run user namespace pods; see its log")
    d.image.PullImage(d.pb.PullImageRequest(image=d.pb.ImageSpec(image=image)), timeout=60)
    yield d
    if d.running:
        for p in d.runtime.ListPodSandbox(d.pb.ListPodSandboxRequest()).items:
            d.runtime.StopPodSandbox(d.pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=30)
            d.runtime.RemovePodSandbox(d.pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=30)


def mappings(pb, host=HOST, length=LENGTH, container=0):
    return [pb.IDMapping(host_id=host, container_id=container, length=length)]


def userns(pb, **kw):
    return pb.UserNamespace(mode=pb.POD, uids=mappings(pb, **kw), gids=mappings(pb, **kw))


class Pod:
    def __init__(self, d, tmp, image, ns=None, host_network=False, name="u"):
        pb = self.pb = d.pb
        self.d, self.image, self.logs = d, image, tmp / name
        self.cfg = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, namespace="u", uid=f"u-{name}"),
            log_directory=str(self.logs))
        options = self.cfg.linux.security_context.namespace_options
        if ns is not None:
            options.userns_options.CopyFrom(ns)
        if host_network:
            options.network = pb.NODE
        self.id = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=self.cfg), timeout=60).pod_sandbox_id
        self.n = 0

    def create(self, script, user=None, mounts=(), ns=None):
        pb = self.pb
        self.n += 1
        cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=f"c{self.n}"),
                                 image=pb.ImageSpec(image=self.image), command=["sh", "-c", script],
                                 log_path=f"c{self.n}.log", mounts=list(mounts))
        options = self.cfg.linux.security_context.namespace_options
        cfg.linux.security_context.namespace_options.userns_options.CopyFrom(
            ns if ns is not None else options.userns_options)
        if user is not None:
            cfg.linux.security_context.run_as_user.value = user
        return self.d.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=self.id, config=cfg, sandbox_config=self.cfg), timeout=60).container_id

    def run(self, script, **kw):
        cid = self.create(script, **kw)
        self.d.runtime.StartContainer(self.pb.StartContainerRequest(container_id=cid), timeout=60)
        return cid

    def wait_log(self, n, text, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            path = self.logs / f"c{n}.log"
            out = path.read_text() if path.exists() else ""
            if text in out:
                return out
            assert time.monotonic() < deadline, f"no {text!r} in the log of c{n}:\n{out}"
            time.sleep(0.05)

    def pid(self, cid):
        cgroup = f"/crius/{self.id}/{cid}"
        v2 = os.path.exists(f"{CG}/cgroup.controllers")
        procs = f"{CG}{cgroup}/cgroup.procs" if v2 else f"{CG}/memory{cgroup}/cgroup.procs"
        return int(open(procs).read().split()[0])

    def dir(self, cid):
        info = self.d.runtime.ContainerStatus(self.pb.ContainerStatusRequest(container_id=cid, verbose=True)).info
        return json.loads(info["info"])["dir"]


def owner_of(ns_path):
    """The inode of the user namespace that owns a namespace (NS_GET_USERNS)."""
    fd = os.open(ns_path, os.O_RDONLY)
    try:
        owner = fcntl.ioctl(fd, 0xB701)
    finally:
        os.close(fd)
    try:
        return os.fstat(owner).st_ino
    finally:
        os.close(owner)


def host_ids(pid):
    """The real uid and gid of a process, as the node sees them."""
    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return int(status["Uid"].split()[0]), int(status["Gid"].split()[0])


def test_the_runtime_handler_says_it_supports_user_namespaces(d):
    handlers = d.runtime.Status(d.pb.StatusRequest()).runtime_handlers
    assert [h.features.user_namespaces for h in handlers if h.name == ""] == [True]


def test_root_inside_is_an_unprivileged_host_id_outside(d, tmp, image):
    p = Pod(d, tmp, image, ns=userns(d.pb))
    cid = p.run("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; stat -c 'owner %u:%g' /bin/sh /; "
                "stat -c 'app %u:%g' /home/app/note; echo x > /made && echo made; echo ready; sleep 30")
    out = p.wait_log(1, "ready")
    lines = [l.split(" ", 3)[-1] for l in out.splitlines()]  # the CRI log's text
    assert lines[:2] == ["0", "0"], out
    assert [l.split() for l in lines[2:4]] == [["0", str(HOST), str(LENGTH)]] * 2, out
    assert "owner 0:0" in lines and "app 1000:1000" in lines and "made" in lines, out
    assert lines.count("owner 0:0") == 2, out  # the image's files and "/" are root's
    assert host_ids(p.pid(cid)) == (HOST, HOST)
    # What it wrote carries its host IDs on the node.
    made = os.stat(os.path.join(p.dir(cid), "upper", "made"))
    assert (made.st_uid, made.st_gid) == (HOST, HOST)
    # An exec joins the user namespace too.
    r = d.runtime.ExecSync(d.pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", "id -u; cat /proc/self/uid_map"]))
    assert r.exit_code == 0 and r.stdout.decode().split() == ["0", "0", str(HOST), str(LENGTH)], r
    # The pod's network, IPC and UTS namespaces belong to its user namespace.
    pid = p.pid(cid)
    user = os.stat(f"/proc/{pid}/ns/user").st_ino
    for kind in ("net", "ipc", "uts"):
        assert owner_of(f"/proc/{pid}/ns/{kind}") == user, kind


def test_a_container_user_is_mapped_too(d, tmp, image):
    p = Pod(d, tmp, image, ns=userns(d.pb))
    cid = p.run("id -u; cat /home/app/note; echo ready; sleep 30", user=1000)
    out = p.wait_log(1, "ready")
    assert "1000" in out and "mine" in out, out
    assert host_ids(p.pid(cid))[0] == HOST + 1000


def test_an_idmapped_volume_shows_the_pods_ids(d, tmp, image):
    vol = tmp / "vol"
    vol.mkdir()
    (vol / "root-file").write_text("r\n")
    (vol / "user-file").write_text("u\n")
    os.chown(vol / "user-file", 1000, 1000)
    pb = d.pb
    p = Pod(d, tmp, image, ns=userns(pb))
    mapped = pb.Mount(container_path="/mapped", host_path=str(vol), uidMappings=mappings(pb),
                      gidMappings=mappings(pb))
    plain = pb.Mount(container_path="/plain", host_path=str(vol))
    p.run("stat -c 'mapped %n %u' /mapped/root-file /mapped/user-file; stat -c 'plain %u' /plain/root-file; "
          "echo w > /mapped/written && echo ready", mounts=[mapped, plain])
    out = p.wait_log(1, "ready")
    assert "mapped /mapped/root-file 0" in out and "mapped /mapped/user-file 1000" in out, out
    assert "plain 65534" in out, out  # the node's root is nobody in the pod
    # Root of the pod writes as the node's root through the idmapped mount.
    assert os.stat(vol / "written").st_uid == 0


def test_an_idmapped_image_volume_shows_the_images_owners(d, tmp, image):
    pb = d.pb
    p = Pod(d, tmp, image, ns=userns(pb))
    mapped = pb.Mount(container_path="/vol", image=pb.ImageSpec(image=image), readonly=True,
                      uidMappings=mappings(pb), gidMappings=mappings(pb))
    plain = pb.Mount(container_path="/plain", image=pb.ImageSpec(image=image), readonly=True,
                     image_sub_path="home")
    p.run("stat -c 'mapped %n %u:%g' /vol/bin/busybox /vol/home/app/note; stat -c 'plain %u' /plain/app; "
          "cat /vol/home/app/note; echo ready", mounts=[mapped, plain], user=1000)
    out = p.wait_log(1, "ready")
    assert "mapped /vol/bin/busybox 0:0" in out and "mapped /vol/home/app/note 1000:1000" in out, out
    assert "mine" in out, out  # user 1000 of the pod reads its own 0600 file
    assert "plain 65534" in out, out


def test_the_user_namespace_outlives_a_criusd_restart(d, tmp, image):
    p = Pod(d, tmp, image, ns=userns(d.pb))
    first = p.run("echo ready; sleep 60")
    p.wait_log(1, "ready")
    before = os.readlink(f"/proc/{p.pid(first)}/ns/user")
    d.restart(kill=True)
    second = p.run("echo ready; sleep 60")
    p.wait_log(2, "ready")
    assert os.readlink(f"/proc/{p.pid(second)}/ns/user") == before
    assert os.readlink(f"/proc/{p.pid(first)}/ns/user") == before
    assert before != os.readlink("/proc/self/ns/user")


BAD_POD_OPTIONS = [
    (lambda pb: pb.UserNamespace(mode=pb.CONTAINER), "userns_options.mode"),
    (lambda pb: pb.UserNamespace(mode=pb.TARGET), "userns_options.mode"),
    (lambda pb: pb.UserNamespace(mode=pb.POD), "userns_options.uids"),
    (lambda pb: pb.UserNamespace(mode=pb.POD, uids=mappings(pb)), "userns_options.gids"),
    (lambda pb: userns(pb, length=0), "userns_options.uids"),
    (lambda pb: userns(pb, host=0xFFFFFFF0), "userns_options.uids"),
    (lambda pb: userns(pb, container=1), "userns_options.uids"),
    (lambda pb: pb.UserNamespace(mode=pb.POD, uids=mappings(pb) + mappings(pb, container=65536),
                                 gids=mappings(pb)), "userns_options.uids"),
    (lambda pb: pb.UserNamespace(mode=pb.NODE, uids=mappings(pb)), "userns_options.uids"),
]


@pytest.mark.parametrize("options,field", BAD_POD_OPTIONS)
def test_bad_pod_userns_options_are_refused_naming_the_field(d, tmp, image, options, field):
    with pytest.raises(grpc.RpcError) as e:
        Pod(d, tmp, image, ns=options(d.pb))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert f"config.linux.security_context.namespace_options.{field}" in e.value.details()
    assert list(d.runtime.ListPodSandbox(d.pb.ListPodSandboxRequest()).items) == []


def test_a_user_namespace_on_the_node_network_is_refused(d, tmp, image):
    with pytest.raises(grpc.RpcError) as e:
        Pod(d, tmp, image, ns=userns(d.pb), host_network=True)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "namespace_options.userns_options" in e.value.details()
    assert list(d.runtime.ListPodSandbox(d.pb.ListPodSandboxRequest()).items) == []


def test_bad_container_options_and_mounts_are_refused(d, tmp, image):
    pb = d.pb
    p = Pod(d, tmp, image, ns=userns(pb))
    bad = [
        (dict(ns=userns(pb, host=HOST + LENGTH)), "namespace_options.userns_options"),
        (dict(mounts=[pb.Mount(container_path="/v", host_path=str(tmp),
                               uidMappings=mappings(pb, host=HOST + LENGTH), gidMappings=mappings(pb))]),
         "config.mounts[0].uidMappings"),
        (dict(mounts=[pb.Mount(container_path="/v", host_path=str(tmp), uidMappings=mappings(pb),
                               gidMappings=mappings(pb, host=1))]), "config.mounts[0].gidMappings"),
    ]
    for kw, field in bad:
        with pytest.raises(grpc.RpcError) as e:
            p.create("true", **kw)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
        assert field in e.value.details(), e.value.details()
    # Mappings on a mount of a pod without a user namespace.
    plain = Pod(d, tmp, image, name="plain")
    with pytest.raises(grpc.RpcError) as e:
        plain.create("true", ns=d.pb.UserNamespace(mode=d.pb.NODE), mounts=[pb.Mount(container_path="/v", host_path=str(tmp), uidMappings=mappings(pb),
                                              gidMappings=mappings(pb))])
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.mounts[0].uidMappings" in e.value.details()
    assert list(d.runtime.ListContainers(d.pb.ListContainersRequest()).containers) == []


def _kernel_at_least(major, minor):
    release = os.uname().release.split("-")[0].split(".")
    return (int(release[0]), int(release[1])) >= (major, minor)


def _fs_type(path):
    """The filesystem type of the mount holding path (the longest mount point that is its prefix)."""
    best, kind = "", ""
    path = os.path.realpath(path)
    for line in open("/proc/self/mounts"):
        _, point, fstype = line.split()[:3]
        if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, fstype
    return kind


def test_user_namespace_pods_need_idmapped_image_layers(make_daemon, registry, tmp, image):
    """Where the kernel cannot idmap the filesystem holding the image layers
    (tmpfs before Linux 6.3, anything before 5.19: the v2 guest runs this
    with its root on tmpfs), the handler says so and such a pod is refused,
    naming the field, with nothing made."""
    d = make_daemon(config=f'[registry]\ninsecure = ["{registry.host}"]\n')
    fstype = _fs_type(d.root)
    expected = _kernel_at_least(6, 3) or (_kernel_at_least(5, 19) and fstype != "tmpfs")
    handler = [h for h in d.runtime.Status(d.pb.StatusRequest()).runtime_handlers if h.name == ""][0]
    assert handler.features.user_namespaces == expected, (fstype, os.uname().release)
    if expected:
        return  # the tests above run such pods
    with pytest.raises(grpc.RpcError) as e:
        Pod(d, tmp, image, ns=userns(d.pb))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "namespace_options.userns_options" in e.value.details() and "idmapped" in e.value.details()
    assert list(d.runtime.ListPodSandbox(d.pb.ListPodSandboxRequest()).items) == []
