"""criusd as kubelet and an operator meet it: start-up, the runtime RPCs of
the Foundation (Version, Status, RuntimeConfig, UpdateRuntimeConfig), every
other RPC answering Unimplemented by name, the socket, and clean stops."""
import json
import os
import sqlite3
import stat
import subprocess
import tomllib

import grpc
import pytest

from harness import cri
from harness.daemon import Daemon, criusd_path
from harness.util import short_tmpdir, remove_tree

pytestmark = pytest.mark.usefixtures("leak_check")


@pytest.fixture
def daemon():
    with Daemon() as d:
        d.start()
        yield d
        d.stop()


@pytest.fixture
def workdir():
    d = short_tmpdir("crius-t-")
    yield d
    remove_tree(d)


def run_criusd(*args, timeout=20):
    """Runs criusd to completion (for start-up failures and one-shot flags)."""
    return subprocess.run([str(criusd_path()), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


# Metrics off: start-up failures after the metrics step must not depend on
# the default metrics port being free on this machine.
NO_METRICS = ["--metrics-address="]


def private_args(workdir):
    return ["--root", f"{workdir}/root", "--state", f"{workdir}/state",
            "--listen", f"unix://{workdir}/run/crius.sock", *NO_METRICS]


def assert_one_line_error(run, *needles):
    assert run.returncode != 0, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line error, got:\n{run.stderr}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def assert_nothing_made(workdir, keep=()):
    left = sorted(p for p in os.listdir(workdir) if p not in keep)
    assert left == [], f"criusd left {left} behind in {workdir}"


# --- the RPCs ---------------------------------------------------------------

def test_version_names_crius_and_cri_v1(daemon):
    v = daemon.client.version()
    assert v.runtime_name == "crius"
    assert v.runtime_api_version == "v1"
    printed = run_criusd("--version").stdout
    assert v.runtime_version and v.runtime_version in printed


def test_status_reports_both_conditions_with_reasons(make_daemon, tmp):
    # A node without any CNI config: the network is not ready, and says why.
    d = make_daemon(config=f'[network]\ncni_conf_dir = "{tmp}/none"\n')
    s = d.runtime.Status(d.pb.StatusRequest())
    conditions = {c.type: c for c in s.status.conditions}
    assert conditions["RuntimeReady"].status is True
    network = conditions["NetworkReady"]
    assert network.status is False
    assert network.reason == "NetworkPluginNotReady" and network.message
    assert dict(s.info) == {}, "info is only for verbose requests"


def test_status_lists_default_and_unikernel_handlers(daemon):
    s = daemon.runtime.Status(daemon.pb.StatusRequest())
    assert [h.name for h in s.runtime_handlers] == ["", "crius-spt", "crius-hvt"]
    for h in s.runtime_handlers:
        assert h.HasField("features")


def test_handler_names_come_from_config():
    with Daemon(config='[runtime_handlers]\nspt = "uk-spt"\nhvt = "uk-hvt"\n') as d:
        d.start()
        s = d.runtime.Status(d.pb.StatusRequest())
        assert [h.name for h in s.runtime_handlers] == ["", "uk-spt", "uk-hvt"]
        d.stop()


def test_verbose_status_info_is_json(make_daemon):
    daemon = make_daemon(loopback_cni=False)
    s = daemon.runtime.Status(daemon.pb.StatusRequest(verbose=True))
    config = json.loads(s.info["config"])
    assert config["root"] == str(daemon.root)
    assert config["network"]["cni_conf_dir"] == "/etc/cni/net.d"
    runtime = json.loads(s.info["runtime"])
    assert runtime["name"] == "crius"
    assert runtime["cgroupDriver"] == "cgroupfs"
    assert runtime["stateDatabase"] == f"{daemon.root}/state.db"


def test_runtime_config_reports_cgroupfs(daemon):
    r = daemon.runtime.RuntimeConfig(daemon.pb.RuntimeConfigRequest())
    assert r.linux.cgroup_driver == daemon.pb.CGROUPFS


def pod_cidr(d):
    s = d.runtime.Status(d.pb.StatusRequest(verbose=True))
    return json.loads(s.info["runtime"])["podCIDR"]


def update_cidr(d, cidr):
    pb = d.pb
    return d.runtime.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(
        runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr=cidr))))


def test_pod_cidr_is_stored_and_survives_restart(daemon):
    update_cidr(daemon, "10.88.0.0/16,fd00:88::/64")
    assert pod_cidr(daemon) == "10.88.0.0/16,fd00:88::/64"
    daemon.restart()
    assert pod_cidr(daemon) == "10.88.0.0/16,fd00:88::/64"
    update_cidr(daemon, "")  # empty means no change
    assert pod_cidr(daemon) == "10.88.0.0/16,fd00:88::/64"


@pytest.mark.parametrize("bad", ["10.0.0.0", "10.0.0.0/40", "nonsense/8", "10.0.0.0/8,x"])
def test_bad_pod_cidr_is_invalid_argument_naming_the_field(daemon, bad):
    with pytest.raises(grpc.RpcError) as e:
        update_cidr(daemon, bad)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "runtime_config.network_config.pod_cidr" in e.value.details()
    assert pod_cidr(daemon) == ""


# Every RPC of the pinned proto is served, but one, which is refused with
# its reason (README: "Refused RPCs").
REFUSED = {"CheckpointContainer": "CRIU"}


def all_rpcs(pb):
    for service in pb.DESCRIPTOR.services_by_name.values():
        for m in service.methods:
            yield service.full_name, m


def test_pinned_proto_has_all_41_rpcs(daemon):
    assert len(list(all_rpcs(daemon.pb))) == 41


def test_refused_rpcs_answer_unimplemented_with_their_name_and_reason(daemon):
    pb = daemon.pb
    channel = daemon.client.channel
    for service, m in all_rpcs(pb):
        if m.name not in REFUSED:
            continue
        path = f"/{service}/{m.name}"
        request = getattr(pb, m.input_type.name)()
        response = getattr(pb, m.output_type.name)
        call = (channel.unary_stream if m.server_streaming else channel.unary_unary)(
            path, request_serializer=lambda r: r.SerializeToString(),
            response_deserializer=response.FromString)
        with pytest.raises(grpc.RpcError) as e:
            result = call(request, timeout=5)
            if m.server_streaming:
                list(result)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, path
        assert m.name in e.value.details() and REFUSED[m.name] in e.value.details(), path
    # The daemon is still there after all of that.
    daemon.client.version()


def test_failed_rpcs_are_logged_with_method_and_ids(daemon):
    with pytest.raises(grpc.RpcError):
        daemon.runtime.ContainerStatus(daemon.pb.ContainerStatusRequest(container_id="c0ffee"))
    assert "rpc ContainerStatus failed" in daemon.log
    assert "container_id=c0ffee" in daemon.log


# --- the socket and the process ----------------------------------------------

def test_socket_is_0660_and_owned_by_root(daemon):
    st = os.stat(daemon.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_sigterm_stops_cleanly_and_removes_the_socket():
    with Daemon() as d:
        d.start()
        assert d.stop() == 0
        assert not os.path.exists(d.socket)
        assert "criusd stopped" in d.log


def test_stale_socket_from_a_crash_is_replaced():
    with Daemon() as d:
        d.start()
        d.kill9()
        assert stat.S_ISSOCK(os.stat(d.socket).st_mode), "a crash leaves the socket"
        d.start()
        assert "removing stale socket" in d.log
        d.client.version()
        d.stop()


def test_second_criusd_on_the_same_socket_is_refused(daemon, workdir):
    run = run_criusd("--root", f"{workdir}/root", "--state", f"{workdir}/state",
                     "--listen", f"unix://{daemon.socket}")
    assert_one_line_error(run, "already using", str(daemon.socket), f"pid {daemon.pid}")
    assert_nothing_made(workdir)
    daemon.client.version()  # the first one still serves


def test_second_criusd_on_the_same_root_is_refused(daemon, workdir):
    run = run_criusd("--root", str(daemon.root), "--state", f"{workdir}/state",
                     "--listen", f"unix://{workdir}/crius.sock")
    assert_one_line_error(run, "already using", f"root directory {daemon.root}")
    assert_nothing_made(workdir)


def test_a_file_at_the_socket_path_is_not_replaced(workdir):
    os.makedirs(f"{workdir}/run")
    with open(f"{workdir}/run/crius.sock", "w") as f:
        f.write("precious")
    run = run_criusd(*private_args(workdir))
    assert_one_line_error(run, "is not a socket")
    assert open(f"{workdir}/run/crius.sock").read() == "precious"


# --- configuration ------------------------------------------------------------

def test_print_config_is_the_embedded_defaults_as_toml():
    run = run_criusd("--config", "/nonexistent-is-fine-only-by-default.toml", "--print-config")
    assert run.returncode != 0  # an explicit --config must exist
    run = run_criusd("--print-config")
    assert run.returncode == 0, run.stderr
    config = tomllib.loads(run.stdout)
    assert config["root"] == "/var/lib/crius"
    assert config["listen"] == "unix:///run/crius/crius.sock"
    assert config["state_db"]["synchronous"] == "full"
    assert config["runtime_handlers"] == {"spt": "crius-spt", "hvt": "crius-hvt"}


def test_print_config_shows_file_and_flag_overrides(workdir):
    path = f"{workdir}/c.toml"
    with open(path, "w") as f:
        f.write('log_level = "debug"\n[network]\ncni_bin_dirs = ["/x"]\n')
    run = run_criusd("--config", path, "--root", "/elsewhere", "--print-config")
    assert run.returncode == 0, run.stderr
    config = tomllib.loads(run.stdout)
    assert config["log_level"] == "debug"
    assert config["network"]["cni_bin_dirs"] == ["/x"]
    assert config["root"] == "/elsewhere"


@pytest.mark.parametrize("text,needles", [
    ('[network]\ncni_confdir = "/x"\n', ['unknown key "network.cni_confdir"']),
    ('log_level = 3\n', ['key "log_level"', "expected a string, got an integer"]),
    ('[runtime_handlers]\nspt = ["a"]\n', ['key "runtime_handlers.spt"', "expected a string"]),
    ('cgroup_driver = "systemd"\n', ['key "cgroup_driver"', '"systemd"']),
    ('root = "relative/dir"\n', ['key "root"', "not an absolute path"]),
    ('containers_dir = "relative/dir"\n', ['key "containers_dir"', "not an absolute path"]),
    ('listen = "tcp://127.0.0.1:9"\n', ['key "listen"', "unix://"]),
    ('root = \n', ["line 1"]),
])
def test_bad_config_is_a_one_line_error_naming_the_key(workdir, text, needles):
    path = f"{workdir}/c.toml"
    with open(path, "w") as f:
        f.write(text)
    # Flags override the file: give only those the file does not set.
    args = private_args(workdir)
    for flag in ("root", "listen"):
        if text.startswith(f"{flag} ="):
            i = args.index(f"--{flag}")
            del args[i:i + 2]
    run = run_criusd("--config", path, *args)
    assert_one_line_error(run, path, *needles)
    assert_nothing_made(workdir, keep=["c.toml"])


def test_unknown_flag_is_a_usage_error():
    run = run_criusd("--no-such-flag", "x")
    assert run.returncode == 2
    assert "unknown flag --no-such-flag" in run.stderr


# --- start-up failures leave nothing half-made ---------------------------------

@pytest.fixture
def readonly_mount(workdir):
    point = f"{workdir}/ro"
    os.makedirs(point)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", point], check=True)
    yield point
    subprocess.run(["umount", point], check=True)
    os.rmdir(point)


def test_root_that_cannot_be_created_is_named(workdir, readonly_mount):
    run = run_criusd("--root", f"{readonly_mount}/root", "--state", f"{workdir}/state",
                     "--listen", f"unix://{workdir}/run/crius.sock")
    assert_one_line_error(run, f"create root directory {readonly_mount}/root",
                          "Read-only file system")
    assert_nothing_made(workdir, keep=["ro"])


def test_unwritable_root_fails_at_the_state_database(workdir, readonly_mount):
    run = run_criusd("--root", readonly_mount, "--state", f"{workdir}/state",
                     "--listen", f"unix://{workdir}/run/crius.sock", *NO_METRICS)
    assert_one_line_error(run, readonly_mount)
    assert_nothing_made(workdir, keep=["ro"])


def test_socket_directory_that_cannot_be_created_is_named(workdir):
    with open(f"{workdir}/afile", "w"):
        pass
    run = run_criusd("--root", f"{workdir}/root", "--state", f"{workdir}/state",
                     "--listen", f"unix://{workdir}/afile/sub/crius.sock")
    assert_one_line_error(run, f"create socket directory {workdir}/afile/sub", "Not a directory")
    assert_nothing_made(workdir, keep=["afile"])


def test_state_database_of_a_newer_schema_is_refused(workdir):
    os.makedirs(f"{workdir}/root")
    db = sqlite3.connect(f"{workdir}/root/state.db")
    db.execute("PRAGMA user_version=999")
    db.close()
    run = run_criusd(*private_args(workdir))
    assert_one_line_error(run, "schema version 999", f"{workdir}/root/state.db")
    # Refused, not changed.
    db = sqlite3.connect(f"{workdir}/root/state.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 999
    assert db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    db.close()
    assert not os.path.exists(f"{workdir}/run/crius.sock")
    assert not os.path.exists(f"{workdir}/state")
    assert os.listdir(f"{workdir}/root") == ["state.db"]


def test_state_directory_that_cannot_be_created_is_named(workdir, readonly_mount):
    run = run_criusd("--root", f"{workdir}/root", "--state", f"{readonly_mount}/state",
                     "--listen", f"unix://{workdir}/run/crius.sock")
    assert_one_line_error(run, f"create state directory {readonly_mount}/state",
                          "Read-only file system")
    assert_nothing_made(workdir, keep=["ro"])


def test_network_readiness_says_what_cni_config_the_node_has(workdir):
    os.makedirs(f"{workdir}/net.d")
    config = f'[network]\ncni_conf_dir = "{workdir}/net.d"\ncni_bin_dirs = ["/usr/lib/cni"]\n'
    with Daemon(config=config) as d:
        d.start()

        def network():
            s = d.runtime.Status(d.pb.StatusRequest())
            return {c.type: c for c in s.status.conditions}["NetworkReady"]

        assert network().status is False
        assert f"no valid CNI network config in {workdir}/net.d" in network().message
        with open(f"{workdir}/net.d/10-pods.conflist", "w") as f:
            f.write('{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"loopback"}]}')
        assert network().status is True
        assert network().reason == "" and network().message == ""
        info = json.loads(d.runtime.Status(d.pb.StatusRequest(verbose=True)).info["runtime"])
        assert info["cni"]["network"] == "pods"
        assert info["cni"]["file"] == f"{workdir}/net.d/10-pods.conflist"
        # Removed while criusd runs: noticed at once.
        os.unlink(f"{workdir}/net.d/10-pods.conflist")
        assert network().status is False
        d.stop()
