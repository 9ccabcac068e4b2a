"""CRI v1 Python stubs and a client over criusd's unix socket.

The stubs come from $CRIUS_PY_STUBS, else $CRIUS_BUILD_DIR/python (CMake
generates them there), else protoc generates them from proto/api.proto into
/tmp/crius-stubs-<hash of api.proto>, shared by every test process.
"""
import hashlib
import importlib
import os
import subprocess
import sys
import types

import grpc

from .util import SOURCE_ROOT, HarnessError, build_dir, remove_tree, short_tmpdir

PROTO_DIR = SOURCE_ROOT / "proto"
_loaded = None


def generate(out_dir):
    """Run protoc (python + grpc plugin) on proto/api.proto into out_dir."""
    cmd = ["protoc", f"-I{PROTO_DIR}", f"--python_out={out_dir}", f"--grpc_out={out_dir}",
           "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin", "api.proto"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        raise HarnessError(f"generate CRI stubs: {' '.join(cmd)}: {run.stderr.strip()}")
    return out_dir


def stub_dir():
    """The directory holding api_pb2.py and api_pb2_grpc.py (generated if need be)."""
    explicit = os.environ.get("CRIUS_PY_STUBS")
    candidates = [explicit] if explicit else []
    if build_dir():
        candidates.append(str(build_dir() / "python"))
    for d in candidates:
        if os.path.exists(os.path.join(d, "api_pb2_grpc.py")):
            return d
    # A temp dir per version of api.proto, kept: every test process reuses it.
    key = hashlib.sha256((PROTO_DIR / "api.proto").read_bytes()).hexdigest()[:12]
    out = f"/tmp/crius-stubs-{key}"
    if not os.path.exists(os.path.join(out, "api_pb2_grpc.py")):
        partial = short_tmpdir("crius-stubs-partial-")
        generate(partial)
        try:
            os.rename(partial, out)
        except OSError:  # another process won the race
            remove_tree(partial)
    return out


def load():
    """The stub modules: .pb (messages, api_pb2) and .grpc (api_pb2_grpc)."""
    global _loaded
    if _loaded is None:
        d = stub_dir()
        if d not in sys.path:
            sys.path.insert(0, d)
        _loaded = types.SimpleNamespace(pb=importlib.import_module("api_pb2"),
                                        grpc=importlib.import_module("api_pb2_grpc"))
        warm_up_grpc()
    return _loaded


_warm = False


def warm_up_grpc():
    """gRPC core opens its poller fds (epoll, eventfd) on first use and keeps
    them; the leak checker calls this first so it never blames a test for them."""
    global _warm
    if _warm:
        return
    _warm = True
    channel = grpc.insecure_channel("unix:///nonexistent/crius-warm-up.sock")
    try:
        grpc.channel_ready_future(channel).result(timeout=0.05)
    except grpc.FutureTimeoutError:
        pass
    channel.close()


class Client:
    """RuntimeService and ImageService stubs on one channel to a unix socket."""

    def __init__(self, socket_path):
        stubs = load()
        self.pb = stubs.pb
        # Short reconnect backoff: tests restart and crash the daemon all the
        # time. Messages up to 16 MiB, as kubelet takes them.
        self.channel = grpc.insecure_channel(f"unix://{os.path.abspath(socket_path)}", options=[
            ("grpc.initial_reconnect_backoff_ms", 50),
            ("grpc.max_reconnect_backoff_ms", 500),
            ("grpc.max_receive_message_length", 16 << 20)])
        self.runtime = stubs.grpc.RuntimeServiceStub(self.channel)
        self.image = stubs.grpc.ImageServiceStub(self.channel)

    def version(self, timeout=5):
        return self.runtime.Version(self.pb.VersionRequest(version="v1"), timeout=timeout)

    def close(self):
        self.channel.close()


def create_container(d, pod_id, pod_cfg, image, name="c", **kw):
    """CreateContainer of `image` in the pod, its log at <name>/0.log of the
    pod's log directory; kw are more ContainerConfig fields. Its id."""
    pb = d.pb
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=image),
                             log_path=f"{name}/0.log", **kw)
    return d.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod_id, config=cfg, sandbox_config=pod_cfg), timeout=60).container_id


def start_container(d, cid):
    d.runtime.StartContainer(d.pb.StartContainerRequest(container_id=cid), timeout=60)


def container_status(d, cid):
    return d.runtime.ContainerStatus(d.pb.ContainerStatusRequest(container_id=cid)).status


def remove_all(d):
    """Every container, then every pod, of the daemon removed."""
    pb = d.pb
    for c in d.runtime.ListContainers(pb.ListContainersRequest()).containers:
        d.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=c.id), timeout=30)
    for p in d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items:
        d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=30)
