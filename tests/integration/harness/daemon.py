"""A real criusd on a private socket, root and state dir.

    with Daemon(config='[section]\\nkey = 1\\n', failpoints=["x"]) as d:
        d.start()                       # returns once Version answers
        d.runtime.Status(d.pb.StatusRequest())
        d.kill9(); d.start()            # crash and restart on the same dirs
        d.stop()                        # SIGTERM, expects exit 0
"""
import os
import signal
import subprocess
import time
from pathlib import Path

import grpc

from . import cri, leaks
from .util import HarnessError, build_dir, remove_tree, short_tmpdir, tail


class DaemonError(HarnessError):
    pass


def criusd_path():
    """$CRIUS_CRIUSD, else $CRIUS_BUILD_DIR/criusd, else None."""
    if os.environ.get("CRIUS_CRIUSD"):
        return Path(os.environ["CRIUS_CRIUSD"])
    if build_dir():
        return build_dir() / "criusd"
    return None


class Daemon:
    """One criusd process; every start reuses the same dirs, so restarts see old state.

    binary: a path, or a list (a command prefix, e.g. [python, fake_criusd.py]).
    config: TOML text written to workdir/crius.toml and passed with --config.
    failpoints: names for CRIUS_FAILPOINTS (criusd SIGKILLs itself there).
    loopback_cni: (default: when binary is the real criusd) unless the config has a [network] section, point criusd at a
        CNI directory of workdir holding one network of the loopback plugin
        alone, so pods get a network that touches nothing outside their netns.
    netns: a harness.netns.Netns (or a path): criusd runs inside it (nsenter),
        and so do the CNI plugins it runs.
    cgroup_procs: cgroup.procs files (e.g. of a test-made memory cgroup) that
        criusd's process joins before it execs criusd, so that all its memory
        is charged there from its first page.
    """

    def __init__(self, binary=None, config=None, args=(), env=None, failpoints=(),
                 workdir=None, start_timeout=30, loopback_cni=None, netns=None, cgroup_procs=()):
        if loopback_cni is None:
            loopback_cni = binary is None
        binary = binary or criusd_path()
        if binary is None:
            raise DaemonError("no criusd: set CRIUS_CRIUSD or CRIUS_BUILD_DIR")
        self.command_prefix = [str(b) for b in binary] if isinstance(binary, (list, tuple)) \
            else [str(binary)]
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else short_tmpdir("crius-d-")
        leaks.own_path(self.workdir)
        self.root = self.workdir / "root"
        self.state = self.workdir / "state"
        self.socket = self.workdir / "crius.sock"
        self.log_path = self.workdir / "criusd.log"
        self.config_path = None
        self.netns_path = getattr(netns, "path", netns)
        self.cgroup_procs = [str(f) for f in cgroup_procs]
        if loopback_cni and "[network]" not in (config or ""):
            net_d = self.workdir / "net.d"
            net_d.mkdir()
            (net_d / "10-loopback.conflist").write_text(
                '{"cniVersion": "1.0.0", "name": "crius-test-lo", '
                '"plugins": [{"type": "loopback"}]}\n')
            config = (config or "") + f'\n[network]\ncni_conf_dir = "{net_d}"\n'
        if config is not None:
            self.config_path = self.workdir / "crius.toml"
            self.config_path.write_text(config)
        self.args = list(args)
        self.env = dict(env or {})
        self.failpoints = list(failpoints)
        self.start_timeout = start_timeout
        self.proc = None
        self.starts = 0
        self._client = None

    # -- process ------------------------------------------------------------

    def command(self):
        prefix = ["nsenter", f"--net={self.netns_path}"] if self.netns_path else []
        cmd = prefix + self.command_prefix + ["--root", str(self.root), "--state", str(self.state),
                                     "--listen", f"unix://{self.socket}"]
        if self.config_path:
            cmd += ["--config", str(self.config_path)]
        # Daemons of concurrent tests must not fight over the default metrics
        # port: metrics stay off unless the test asks for them.
        asks = any(a.startswith("--metrics-address") for a in self.args) or (
            self.config_path is not None and "[metrics]" in self.config_path.read_text())
        if not asks:
            cmd += ["--metrics-address="]
        cmd += self.args
        if self.cgroup_procs:
            join = 'while [ "$1" != -- ]; do echo 0 > "$1" || exit 126; shift; done; shift; exec "$@"'
            cmd = ["sh", "-c", join, "join-cgroups"] + self.cgroup_procs + ["--"] + cmd
        return cmd

    def environment(self):
        env = dict(os.environ)
        env.pop("CRIUS_FAILPOINTS", None)
        if self.failpoints:
            env["CRIUS_FAILPOINTS"] = ",".join(self.failpoints)
        env.update(self.env)
        return env

    def start(self, timeout=None):
        """Spawn criusd and wait until Version answers; raise with the log tail if not."""
        if self.running:
            raise DaemonError(f"criusd pid {self.proc.pid} is already running")
        self._close_client()
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"==== harness: start #{self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=self.environment())
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while True:
            if self.proc.poll() is not None:
                raise DaemonError(self._why(f"criusd exited with {self.proc.returncode} "
                                            "before answering Version"))
            last = "no socket yet"
            if self.socket.exists():
                # A fresh channel per probe: a channel that saw the socket refuse
                # connections can sit in reconnect backoff for seconds.
                probe = cri.Client(self.socket)
                try:
                    probe.version(timeout=1)
                    self._client = probe
                    return self
                except grpc.RpcError as e:
                    last = e.code()
                    probe.close()
            if time.monotonic() >= deadline:
                self._end()
                raise DaemonError(self._why(f"criusd did not answer Version within "
                                            f"{timeout or self.start_timeout}s ({last})"))
            time.sleep(0.05)

    def stop(self, timeout=15, check=True):
        """SIGTERM and wait; with check, raise unless it exited 0. Returns the exit code."""
        if self.proc is None:
            return None
        self._close_client()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._end()
                raise DaemonError(self._why(f"criusd ignored SIGTERM for {timeout}s; killed"))
        if check and self.proc.returncode != 0:
            raise DaemonError(self._why(f"criusd exited with {self.proc.returncode} on SIGTERM"))
        return self.proc.returncode

    def kill9(self):
        """SIGKILL (a crash); returns the exit status (-9)."""
        self._close_client()
        return self._end()

    def wait_exit(self, timeout=15):
        """Wait for criusd to exit on its own (a failpoint); returns its exit status."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise DaemonError(self._why(f"criusd still running after {timeout}s")) from None

    def restart(self, kill=False, timeout=None):
        """stop() (or kill9() with kill) then start() on the same dirs."""
        self.kill9() if kill else self.stop()
        return self.start(timeout)

    def close(self):
        """Teardown: end the process if it still runs, drop the channel, remove the dirs."""
        self._close_client()
        self._end()
        if self._own_workdir:
            remove_tree(self.workdir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self):
        return self.proc.poll() if self.proc else None

    # -- CRI ----------------------------------------------------------------

    @property
    def client(self):
        if self._client is None:
            self._client = cri.Client(self.socket)
        return self._client

    @property
    def runtime(self):
        return self.client.runtime

    @property
    def image(self):
        return self.client.image

    @property
    def pb(self):
        return self.client.pb

    # -- logs ---------------------------------------------------------------

    @property
    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines=40):
        return tail(self.log_path, lines)

    def _why(self, message):
        return f"{message}\n--- {self.log_path} (tail) ---\n{self.log_tail()}"

    def _end(self):
        # Only ever signals the pid we spawned, and reaps it.
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait()

    def _close_client(self):
        if self._client is not None:
            self._client.close()
            self._client = None
