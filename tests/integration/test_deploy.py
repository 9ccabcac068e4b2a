"""deploy/ as an operator uses it: every file parses and says what criusd
does, install.sh installs them into a root (idempotently, or not at all with
--dry-run), the unit passes systemd-analyze verify against the installed
binary, criusd reports readiness the way Type=notify expects, and the Grafana
dashboard and the README name only metrics a real criusd serves."""
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import tomllib
import urllib.request

import grpc
import pytest
import yaml

from harness.daemon import Daemon, criusd_path
from harness.util import SOURCE_ROOT, build_dir, free_port, remove_tree, short_tmpdir

pytestmark = pytest.mark.usefixtures("leak_check")

DEPLOY = SOURCE_ROOT / "deploy"
INSTALL = DEPLOY / "install.sh"


def print_config():
    run = subprocess.run([str(criusd_path()), "--print-config"], capture_output=True, text=True,
                         timeout=20, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.fixture(scope="module")
def defaults():
    return tomllib.loads(print_config())


@pytest.fixture
def workdir():
    d = short_tmpdir("crius-t-")
    yield d
    remove_tree(d)


# --- crius.toml, crictl.yaml, runtimeclass.yaml, the CNI network ----------------

def test_shipped_config_is_exactly_print_config():
    assert (DEPLOY / "crius.toml").read_text() == print_config(), \
        "regenerate: build/criusd --print-config > deploy/crius.toml"


def test_crictl_talks_to_the_default_socket(defaults):
    c = yaml.safe_load((DEPLOY / "crictl.yaml").read_text())
    assert c["runtime-endpoint"] == defaults["listen"] == "unix:///run/crius/crius.sock"
    assert c["image-endpoint"] == defaults["listen"]
    assert isinstance(c["timeout"], int) and c["timeout"] > 0
    assert c["debug"] is False


QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi)?$")


def test_runtimeclasses_name_the_configured_handlers(defaults):
    docs = [d for d in yaml.safe_load_all((DEPLOY / "runtimeclass.yaml").read_text()) if d]
    by_name = {d["metadata"]["name"]: d for d in docs}
    assert set(by_name) == {"crius-spt", "crius-hvt"}
    handlers = defaults["runtime_handlers"]
    for name, flavour in (("crius-spt", "spt"), ("crius-hvt", "hvt")):
        rc = by_name[name]
        assert rc["apiVersion"] == "node.k8s.io/v1"
        assert rc["kind"] == "RuntimeClass"
        assert rc["handler"] == handlers[flavour] == name
        fixed = rc["overhead"]["podFixed"]
        assert set(fixed) == {"memory", "cpu"}
        assert all(QUANTITY.match(str(v)) for v in fixed.values()), fixed
        assert rc["scheduling"]["nodeSelector"]["crius.dev/runtime"] == "crius"
    assert by_name["crius-hvt"]["scheduling"]["nodeSelector"]["crius.dev/kvm"] == "true"


def test_cni_network_is_a_bridge_on_10_88_with_portmap(defaults):
    conf = json.loads((DEPLOY / "10-crius-bridge.conflist").read_text())
    assert conf["cniVersion"] == "1.0.0"
    types = [p["type"] for p in conf["plugins"]]
    # loopback last: it always brings up the pod's "lo" (whatever the ifname)
    # and passes the bridge's result through.
    assert types == ["bridge", "portmap", "loopback"]
    bridge = conf["plugins"][0]
    assert bridge["ipam"]["type"] == "host-local"
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.88.0.0/16"}]]
    assert conf["plugins"][1]["capabilities"] == {"portMappings": True}
    # Every plugin it names is in one of criusd's CNI plugin directories.
    for plugin in ("bridge", "host-local", "portmap", "loopback"):
        assert any(os.access(f"{d}/{plugin}", os.X_OK) for d in defaults["network"]["cni_bin_dirs"]), \
            f"CNI plugin {plugin} not in {defaults['network']['cni_bin_dirs']}"


# --- install.sh --------------------------------------------------------------------

def install(root, *args, check=True):
    run = subprocess.run(["bash", str(INSTALL), "--prefix", str(root),
                          "--build-dir", str(build_dir()), *args],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if check:
        assert run.returncode == 0, run.stderr
    return run


def expected_files():
    """Path below the root -> (source, mode)."""
    b = build_dir()
    files = {
        "usr/local/bin/criusd": (b / "criusd", 0o755),
        "etc/systemd/system/crius.service": (DEPLOY / "crius.service", 0o644),
        "etc/crius/crius.toml": (DEPLOY / "crius.toml", 0o644),
        "etc/crictl.yaml": (DEPLOY / "crictl.yaml", 0o644),
        "etc/cni/net.d/10-crius-bridge.conflist": (DEPLOY / "10-crius-bridge.conflist", 0o644),
    }
    if os.access(b / "crius-monitor", os.X_OK):
        files["usr/local/bin/crius-monitor"] = (b / "crius-monitor", 0o755)
    for tender in ("crius-spt", "crius-hvt"):
        if os.access(b / tender, os.X_OK):
            files[f"usr/local/bin/{tender}"] = (b / tender, 0o755)
    for doc in ("kubelet.md", "runtimeclass.yaml", "grafana-dashboard.json"):
        files[f"usr/local/share/doc/crius/{doc}"] = (DEPLOY / doc, 0o644)
    return files


def tree(root):
    """Every file below root: relative path -> (inode, mtime_ns, mode, sha256)."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            with open(p, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(p, root)] = (st.st_ino, st.st_mtime_ns, stat.S_IMODE(st.st_mode),
                                             digest)
    return out


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_install_puts_every_file_with_its_mode(workdir):
    install(workdir)
    got = tree(workdir)
    want = expected_files()
    assert set(got) == set(want)
    for rel, (src, mode) in want.items():
        assert got[rel][2] == mode, rel
        assert got[rel][3] == sha(src), f"{rel} differs from {src}"


def test_second_install_changes_nothing(workdir):
    install(workdir)
    first = tree(workdir)
    run = install(workdir)
    assert tree(workdir) == first
    verbs = {line.split()[0] for line in run.stdout.splitlines()}
    assert verbs <= {"unchanged", "skip"}, run.stdout


def test_dry_run_writes_nothing(workdir):
    run = install(workdir, "--dry-run")
    assert os.listdir(workdir) == []
    for rel in expected_files():
        assert f"{workdir}/{rel}" in run.stdout, rel
    assert "nothing was changed" in run.stdout


def test_dry_run_after_install_reports_nothing_to_do(workdir):
    install(workdir)
    first = tree(workdir)
    os.chmod(f"{workdir}/etc/systemd/system/crius.service", 0o600)
    first["etc/systemd/system/crius.service"] = tree(workdir)["etc/systemd/system/crius.service"]
    run = install(workdir, "--dry-run")
    assert tree(workdir) == first
    assert f"chmod 644 {workdir}/etc/systemd/system/crius.service" in run.stdout


def test_an_operators_config_is_kept_and_a_changed_mode_repaired(workdir):
    install(workdir)
    config = f"{workdir}/etc/crius/crius.toml"
    with open(config, "w") as f:
        f.write('log_level = "debug"\n')
    os.chmod(f"{workdir}/usr/local/bin/criusd", 0o700)
    run = install(workdir)
    assert open(config).read() == 'log_level = "debug"\n'
    assert f"keep {config}" in run.stdout
    assert stat.S_IMODE(os.stat(f"{workdir}/usr/local/bin/criusd").st_mode) == 0o755


def test_a_changed_binary_is_replaced_not_overwritten_in_place(workdir):
    install(workdir)
    binary = f"{workdir}/usr/local/bin/criusd"
    with open(binary, "ab") as f:
        f.write(b"stale")
    inode = os.stat(binary).st_ino
    with open(binary, "rb"):  # held open, as by a running criusd
        install(workdir)
    assert sha(build_dir() / "criusd") == hashlib.sha256(open(binary, "rb").read()).hexdigest()
    assert os.stat(binary).st_ino != inode


def test_install_without_a_build_is_a_clear_error(workdir):
    os.makedirs(f"{workdir}/empty")
    run = subprocess.run(["bash", str(INSTALL), "--prefix", f"{workdir}/root",
                          "--build-dir", f"{workdir}/empty"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert f"no criusd in {workdir}/empty" in run.stderr
    assert not os.path.exists(f"{workdir}/root")


def test_relative_prefix_is_refused(workdir):
    run = install("relative/root", check=False)
    assert run.returncode != 0
    assert "not an absolute path" in run.stderr


@pytest.mark.parametrize("script", ["deploy/install.sh", "build.sh", ".ci/run", "tests/fresh-machine.sh",
                                    "tests/fuzz/run.sh", "tests/fuzz/run-long.sh"])
def test_shell_scripts_pass_shellcheck(script):
    run = subprocess.run(["shellcheck", str(SOURCE_ROOT / script)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout


def test_installed_criusd_reads_the_installed_config(workdir):
    install(workdir)
    run = subprocess.run([f"{workdir}/usr/local/bin/criusd", "--config",
                          f"{workdir}/etc/crius/crius.toml", "--print-config"],
                         capture_output=True, text=True, timeout=20)
    assert run.returncode == 0, run.stderr
    assert run.stdout == (DEPLOY / "crius.toml").read_text()


# --- crius.service --------------------------------------------------------------------

def unit_keys(path):
    """{(section, key): [values]} of a systemd unit file."""
    keys, section = {}, None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        keys.setdefault((section, key.strip()), []).append(value.strip())
    return keys


def test_unit_keeps_pods_alive_across_restarts_and_reports_readiness():
    k = unit_keys(DEPLOY / "crius.service")
    assert k[("Service", "Type")] == ["notify"]
    assert k[("Service", "NotifyAccess")] == ["main"]
    assert k[("Service", "Delegate")] == ["yes"]
    assert k[("Service", "KillMode")] == ["process"]
    assert k[("Service", "Restart")] == ["always"]
    assert int(k[("Service", "LimitNOFILE")][0]) >= 1 << 20
    assert k[("Service", "ExecStart")] == ["/usr/local/bin/criusd"]  # where install.sh puts it
    assert k[("Install", "WantedBy")] == ["multi-user.target"]


def test_unit_passes_systemd_analyze_verify_against_the_installed_binary(workdir):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    install(workdir)
    # verify --root resolves the unit's dependencies (sysinit.target, ...)
    # inside the root: give it the host's system units.
    shutil.copytree("/usr/lib/systemd/system", f"{workdir}/usr/lib/systemd/system", symlinks=True)

    def verify():
        return subprocess.run([analyze, "verify", f"--root={workdir}", "crius.service"],
                              capture_output=True, text=True, timeout=60)

    run = verify()
    assert run.returncode == 0 and run.stderr == "", run.stderr
    # The check can fail: without the installed binary it does.
    os.unlink(f"{workdir}/usr/local/bin/criusd")
    run = verify()
    assert run.returncode != 0
    assert "/usr/local/bin/criusd is not executable" in run.stderr


@pytest.fixture
def notify_socket(workdir):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(f"{workdir}/notify")
    s.settimeout(10)
    yield s
    s.close()


def test_criusd_notifies_systemd_once_it_serves_and_when_it_stops(notify_socket):
    path = notify_socket.getsockname()
    with Daemon(env={"NOTIFY_SOCKET": path}) as d:
        d.start()
        ready = notify_socket.recv(4096).decode()
        assert ready.split("\n") == ["READY=1", f"STATUS=serving CRI v1 on unix://{d.socket}"]
        assert d.stop() == 0
        assert notify_socket.recv(4096).decode() == "STOPPING=1"


def test_criusd_sends_nothing_when_start_up_fails(notify_socket, workdir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run([str(criusd_path()), "--root", f"{workdir}/r", "--state",
                              f"{workdir}/s", "--listen", f"unix://{workdir}/c.sock",
                              "--metrics-address", f"127.0.0.1:{port}"],
                             capture_output=True, text=True, timeout=20,
                             env={**os.environ, "NOTIFY_SOCKET": notify_socket.getsockname()})
    assert run.returncode != 0
    notify_socket.settimeout(0.2)
    with pytest.raises(TimeoutError):
        notify_socket.recv(4096)


# --- the dashboard and the README against a real scrape ------------------------------

@pytest.fixture(scope="module")
def scraped_names():
    """Sample names of one scrape of a criusd that served a few RPCs and ran CNI
    plugins, one of which failed (labelled families show once observed)."""
    address = f"127.0.0.1:{free_port()}"
    net_d = short_tmpdir("crius-net-")
    try:
        # loopback, then tuning failing on a sysctl that does not exist: both act
        # only inside the pod's own netns.
        (net_d / "10-lo.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0", "name": "lo", "plugins": [
                {"type": "loopback"}, {"type": "tuning", "sysctl": {"net.crius.no_such": "1"}}]}))
        with Daemon(config=f'[metrics]\naddress = "{address}"\n'
                           f'[network]\ncni_conf_dir = "{net_d}"\n') as d:
            d.start()
            d.runtime.Status(d.pb.StatusRequest())
            pb = d.pb
            with pytest.raises(grpc.RpcError):
                d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(
                    metadata=pb.PodSandboxMetadata(name="m", namespace="m", uid="m"))), timeout=60)
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as r:
                text = r.read().decode()
            d.stop()
    finally:
        remove_tree(net_d)
    return {re.split(r"[{ ]", line, 1)[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def family(sample):
    return re.sub(r"_(bucket|sum|count)$", "", sample)


def test_dashboard_queries_only_metrics_criusd_serves(scraped_names):
    dash = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert exprs
    queried = {m for e in exprs for m in re.findall(r"\bcrius_[a-z0-9_]+", e)}
    assert queried - scraped_names == set()
    # ... and shows every crius family there is.
    served = {family(n) for n in scraped_names if n.startswith("crius_")}
    assert served - {family(q) for q in queried} == set()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p["datasource"]["uid"] == "${datasource}" for p in dash["panels"])


def test_readme_lists_every_metric(scraped_names):
    readme = (SOURCE_ROOT / "README.md").read_text()
    section = readme.split("## Operating crius", 1)[1].split("\n## ", 1)[0]
    served = {family(n) for n in scraped_names if n.startswith("crius_")}
    missing = {f for f in served if f"`{f}`" not in section}
    assert missing == set()
    for f in ("crictl.yaml", "crius.service", "crius.toml", "runtimeclass.yaml", "install.sh",
              "kubelet.md", "grafana-dashboard.json"):
        assert f"deploy/{f}" in section, f
