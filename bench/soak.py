#!/usr/bin/python3
"""Soak: many pod cycles against criusd at concurrency 4 on the CNI bridge,
counting everything a leak would grow, and the same driver against
containerd+runc for scale.

    bench/soak.py [--smoke] [--cycles N] [--concurrency N] [--checkpoint N]
                  [--warmup N] [--unikernel-every K] [--containerd-cycles N]
                  [--network deploy|bridge] [--out results.json]

A cycle is RunPodSandbox, CreateContainer, StartContainer, ExecSync (`echo`,
namespace containers only: a guest has no process tree to exec in),
StopContainer, RemoveContainer, StopPodSandbox and RemovePodSandbox, with
what kubelet does around them: the pod cgroup made in every v1 hierarchy
before and removed after, the pod's log directory removed. Each pod maps a
host port (one per worker), so the portmap plugin writes its chains. Every
Kth cycle is a unikernel pod, crius-spt and crius-hvt in turn (hvt only
where /dev/kvm opens); containerd runs namespace pods only.

After warm-up cycles (the baseline), every checkpoint and at the end, with no
pod in flight, the driver counts: mounts (all in the daemon's mount
namespace but other test runs', which live under /tmp/crius-* and
/run/netns/crius-*; and those under its root and state), nsfs mounts
(namespace pins), /run/netns entries, cgroups under the pod parent in every
hierarchy, veths and taps in the netns, iptables chains and rules of the
CNI-* chains, host-local IP reservations and libcni's result cache, files
under root and state, the processes the runtime runs for pods, the daemon's
fds, threads, RSS (and its anonymous part) and PSS, and the state database's
pages. A count above the baseline at the end is growth (RSS: more than
1 MiB); growth, a failed RPC or a daemon that died makes the exit status 1
(crius's; containerd's are reported).

Everything runs in a network namespace this script makes, on the CNI network
deploy/ installs (Debian's bridge with masquerade, host-local, portmap,
loopback; a bridge and subnet per runtime) or, with --network bridge,
bench/run.py's bare bridge and host-local; images come from a
docker-registry on loopback in that netns, pod cgroups go under
/crius-soak-<pid>.
containerd, runc and their shim come unpacked from Debian's .debs, as for
bench/run.py. The runtimes run one after the other, crius first. Everything
made is removed at the end, also on failure or Ctrl-C. Not part of CI: the
full run takes minutes.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import grpc

# common puts the tests' harness on sys.path.
from common import (BUILD, CGROUP_ROOT, TOP, V2, CniCache, Containerd, bridge_network, close_run,
                    confine, cpu_ns, hierarchies, pct, remove_pods)
from harness import oci
from harness.daemon import Daemon
from harness.fixtures import fixture_binary
from harness.netns import Netns
from harness.registry import Registry
from resources import Target, growth, new_items, settled, snapshot

# Per run: what one run removes at its end is never another's.
CGROUP_PARENT = f"/crius-soak-{os.getpid()}"
DAEMONS = f"/crius-soak-daemons-{os.getpid()}"
HOST_PORT = 30080  # worker k's pods map HOST_PORT + k


def kvm_usable():
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC))
        return True
    except OSError:
        return False


def deploy_network(conf_dir, name, bridge, subnet, ipam_dir):
    """The CNI network deploy/ installs (bridge with masquerade and hairpin,
    host-local, portmap, loopback) under its own name, bridge, subnet and
    IPAM directory, into conf_dir."""
    conf = json.loads((TOP / "deploy" / "10-crius-bridge.conflist").read_text())
    conf["name"] = name
    first = conf["plugins"][0]
    first["bridge"] = bridge
    first["ipam"]["ranges"] = [[{"subnet": subnet}]]
    first["ipam"]["dataDir"] = str(ipam_dir)
    conf_dir.mkdir(parents=True)
    (conf_dir / "10-soak.conflist").write_text(json.dumps(conf, indent=1))


class SessionDaemon(Daemon):
    """criusd in a session of its own (setsid execs it, same pid): a Ctrl-C at
    the terminal reaches this driver alone, which then takes the pods down
    and stops the daemon."""

    def command(self):
        return ["setsid"] + super().command()


def interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def take_down(name, daemon):
    """Stops and removes the pods a daemon still has (a run cut short); a
    daemon that died is started again on its dirs first, to recover them."""
    try:
        if daemon.proc is None:
            return
        if daemon.proc.poll() is not None:
            print(f"soak: {name} is gone (exit {daemon.proc.returncode}): starting it again to remove its pods",
                  file=sys.stderr)
            daemon.start()
        remove_pods(daemon.client)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - keep cleaning
        print(f"soak: {name} cleanup: {e}", file=sys.stderr)


def kill_pods_left(parent):
    """The last resort: SIGKILL, by pid, what is left in this run's pod
    cgroups (named for this process) after their daemon could not remove them."""
    top = kubelet_hierarchies()[0] / parent.strip("/")
    killed = 0
    for procs in top.glob(f"pod*-{os.getpid()}-*/**/cgroup.procs"):
        for pid in procs.read_text().split():
            print(f"soak: killing pid {pid}, left in {procs.parent}", file=sys.stderr)
            try:
                os.kill(int(pid), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    if killed:
        time.sleep(1)  # for the kernel to let go of their cgroups


# --- kubelet's part: pod cgroups ---------------------------------------------------

def kubelet_hierarchies():
    """Where kubelet's cgroupfs driver (libcontainer's) makes pod cgroups:
    every v1 hierarchy, the named systemd one too (runc makes the container's
    there), but not a hybrid host's unified one."""
    if V2:
        return [CGROUP_ROOT]
    return [h for h in hierarchies() if h.name != "unified"]


def make_cgroup(path):
    """mkdir `path` in every hierarchy kubelet uses; a new cpuset gets its
    parent's cpus and mems (v1 leaves them empty); on v2 the controllers are
    passed down, as kubelet does."""
    for h in kubelet_hierarchies():
        d = h / path.strip("/")
        if d.is_dir():
            continue
        d.mkdir()
        if V2:
            (d / "cgroup.subtree_control").write_text(
                " ".join("+" + c for c in (d / "cgroup.controllers").read_text().split()))
        elif h.name == "cpuset":
            for f in ("cpuset.cpus", "cpuset.mems"):
                (d / f).write_text((d.parent / f).read_text())


def remove_cgroup(path, timeout=1.0):
    """rmdir `path` in every hierarchy kubelet uses, retried while the kernel
    still releases tasks that just died (EBUSY). One that stays is counted."""
    for h in kubelet_hierarchies():
        d = h / path.strip("/")
        deadline = time.monotonic() + timeout
        while True:
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)


# --- the cycles ---------------------------------------------------------------------

STEPS = ("RunPodSandbox", "CreateContainer", "StartContainer", "ExecSync", "StopContainer",
         "RemoveContainer", "StopPodSandbox", "RemovePodSandbox")


class Soak:
    def __init__(self, t, concurrency, logs):
        self.t, self.concurrency, self.logs = t, concurrency, logs
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []
        self.failures = []  # {"cycle", "kind", "step", "code", "message"}
        self.failed = 0
        self.kinds = Counter()
        self.reset_window()

    def reset_window(self):
        self.latencies = []
        self.step_seconds = Counter()

    def cycle(self, k, slot):
        t, pb, rt = self.t, self.t.pb, self.t.client.runtime
        kind = t.kind(k)
        uid = f"{t.name}-{os.getpid()}-{k}"
        parent = f"{CGROUP_PARENT}/pod{uid}"
        logs = self.logs / uid
        cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=f"s{k}", namespace="soak", uid=uid),
                                  hostname=f"s{k}", log_directory=str(logs))
        cfg.linux.cgroup_parent = parent
        cfg.port_mappings.add(host_port=HOST_PORT + slot, container_port=8080, protocol=pb.TCP)
        ccfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="app"), image=pb.ImageSpec(image=t.images[kind]),
                                  log_path="app.log")
        if kind == "ns":
            cfg.linux.security_context.namespace_options.pid = pb.CONTAINER
            ccfg.linux.security_context.namespace_options.pid = pb.CONTAINER
        else:
            ccfg.linux.resources.memory_limit_in_bytes = 64 << 20
        pod = cid = None
        step = "kubelet: make the pod cgroup"
        start = time.perf_counter()
        try:
            make_cgroup(parent)
            for step in STEPS:
                if step == "ExecSync" and kind != "ns":
                    continue
                t0 = time.perf_counter()
                if step == "RunPodSandbox":
                    pod = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg, runtime_handler=t.handler(kind)),
                                           timeout=120).pod_sandbox_id
                elif step == "CreateContainer":
                    cid = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=ccfg,
                                                                       sandbox_config=cfg), timeout=120).container_id
                elif step == "StartContainer":
                    rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=120)
                elif step == "ExecSync":
                    r = rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["echo", "soak"], timeout=30), timeout=60)
                    if r.exit_code != 0 or r.stdout != b"soak\n":
                        raise ValueError(f"exit code {r.exit_code}, stdout {r.stdout!r}, stderr {r.stderr!r}")
                elif step == "StopContainer":
                    rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=10), timeout=120)
                elif step == "RemoveContainer":
                    rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=120)
                elif step == "StopPodSandbox":
                    rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=120)
                else:
                    rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=120)
                    pod = None
                with self.lock:
                    self.step_seconds[step] += time.perf_counter() - t0
            with self.lock:
                self.latencies.append(time.perf_counter() - start)
                self.kinds[kind] += 1
        except Exception as e:  # noqa: BLE001 - every failure is counted, the soak goes on
            code = e.code().name if isinstance(e, grpc.RpcError) else type(e).__name__
            message = e.details() if isinstance(e, grpc.RpcError) else str(e)
            with self.lock:
                self.failed += 1
                if len(self.failures) < 20:
                    self.failures.append({"cycle": k, "kind": kind, "step": step, "code": code, "message": message})
            if pod is not None:  # as kubelet would: take the pod down, whatever it holds
                try:
                    rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=120)
                    rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=120)
                except Exception:  # noqa: BLE001 - what stays is counted at the checkpoint
                    pass
        finally:
            shutil.rmtree(logs, ignore_errors=True)
            remove_cgroup(parent)

    def run(self, first, last):
        """Cycles first..last on `concurrency` workers; the wall time."""
        todo = iter(range(first, last + 1))

        def worker(slot):
            while not self.stopping.is_set() and self.t.alive():
                with self.lock:
                    k = next(todo, None)
                if k is None:
                    return
                self.cycle(k, slot)

        self.threads = [threading.Thread(target=worker, args=(s,), name=f"soak-{s}") for s in range(self.concurrency)]
        start = time.perf_counter()
        for th in self.threads:
            th.start()
        for th in self.threads:
            th.join()
        return time.perf_counter() - start

    def stop(self):
        """Lets every worker finish the cycle it is in (its pod taken down), then returns."""
        self.stopping.set()
        for th in self.threads:
            th.join(300)


def soak(t, cycles, concurrency, checkpoint, warmup, logs, settle=5.0):
    """Warm-up, baseline, then windows of `checkpoint` cycles, each followed
    by a snapshot: the rows, the failures and the verdict."""
    s = Soak(t, concurrency, logs)
    t.soak = s
    if warmup:
        s.run(1, warmup)
    time.sleep(1)
    base = snapshot(t)
    failed_in_warmup = s.failed
    rows = [{"cycles": 0, "counts": base[0], "load": os.getloadavg()[0]}]
    print(f"soak {t.name}: warm-up of {warmup} cycles done ({failed_in_warmup} failed); baseline taken", flush=True)
    done, total_seconds = 0, 0.0
    cpu0 = cpu_ns(t.daemon_cgroup) + cpu_ns(CGROUP_PARENT)
    died = False
    while done < cycles and not s.stopping.is_set():
        n = min(checkpoint, cycles - done)
        s.reset_window()
        failed_before = s.failed
        seconds = s.run(warmup + done + 1, warmup + done + n)
        done += n
        total_seconds += seconds
        if not t.alive():
            died = True
            print(f"soak {t.name}: the daemon (pid {t.pid}) is gone after {done} cycles; see its log", flush=True)
            break
        cpu1 = cpu_ns(t.daemon_cgroup) + cpu_ns(CGROUP_PARENT)
        counts, items = settled(t, base, settle)
        grew = growth(base, counts)
        row = {"cycles": done, "seconds": seconds, "cycles_per_s": n / seconds, "failures": s.failed - failed_before,
               "cycle_p50_ms": pct(s.latencies, 50) * 1000, "cycle_p99_ms": pct(s.latencies, 99) * 1000,
               "step_mean_ms": {k: v * 1000 / n for k, v in s.step_seconds.items()},
               "cpu_ms_per_cycle": (cpu1 - cpu0) / 1e6 / n, "load": os.getloadavg()[0],
               "counts": counts, "grew": grew, "new": new_items(base, items, grew)}
        cpu0 = cpu1
        rows.append(row)
        print(f"soak {t.name}: {done}/{cycles} cycles, {row['cycles_per_s']:.1f}/s, "
              f"{row['failures']} failed, grew: {grew or 'nothing'}", flush=True)
    end = rows[-1]
    return {"cycles": done, "concurrency": concurrency, "warmup": warmup, "warmup_failures": failed_in_warmup,
            "seconds": total_seconds, "cycles_per_s": done / total_seconds if total_seconds else 0.0,
            "kinds": dict(s.kinds), "failures": s.failed - failed_in_warmup, "first_failures": s.failures, "rows": rows,
            "grew": end.get("grew", {}), "new": end.get("new", {}), "daemon_died": died}


# --- the report --------------------------------------------------------------------------

COLUMNS = [("mounts", "mounts"), ("mounts_under", "under root/state"), ("ns_pins", "nsfs"),
           ("run_netns", "/run/netns"), ("cgroups", "cgroups"), ("veths", "veths"), ("taps", "taps"),
           ("iptables_chains", "CNI chains"), ("iptables_rules", "CNI rules"), ("ipam", "IPs"),
           ("cni_cache", "CNI cache"),
           ("files_root", "files root"), ("files_state", "files state"), ("processes", "pod procs"),
           ("fds", "fds"), ("threads", "threads"), ("rss_kib", "RSS MiB"), ("rss_anon_kib", "anon MiB"), ("pss_kib", "PSS MiB"),
           ("db_pages", "db pages")]


def table(name, result):
    head = ["cycles", "cycles/s", "failed", "CPU ms/cycle", "load"] + [title for _, title in COLUMNS]
    lines = [f"| {name} | " + " | ".join(head[1:]) + " |", "|" + " --- |" * len(head)]
    base = result["rows"][0]["counts"]
    for row in result["rows"]:
        cells = [f"{row['cycles']}" if row["cycles"] else "baseline",
                 f"{row['cycles_per_s']:.1f}" if "cycles_per_s" in row else "-",
                 f"{row['failures']}" if "failures" in row else f"({result['warmup_failures']} in warm-up)",
                 f"{row['cpu_ms_per_cycle']:.1f}" if "cpu_ms_per_cycle" in row else "-", f"{row['load']:.1f}"]
        for key, _ in COLUMNS:
            v, d = row["counts"].get(key, 0), row["counts"].get(key, 0) - base.get(key, 0)
            if key.endswith("_kib"):
                cells.append(f"{v / 1024:.1f}" + (f" ({d / 1024:+.1f})" if row["cycles"] else ""))
            else:
                cells.append(f"{v}" + (f" ({d:+d})" if d else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(name, result):
    grew = ", ".join(f"{k} {'+%.1f MiB' % (d / 1024) if k.endswith('_kib') else '%+d' % d}"
                     for k, d in result["grew"].items())
    return (f"{name}: {result['cycles']} cycles at {result['cycles_per_s']:.1f}/s, {result['failures']} failed, "
            + ("the daemon died, " if result["daemon_died"] else "") + (f"grew: {grew}" if grew else "nothing grew"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="40 cycles, checkpoint 20: shows the driver works")
    ap.add_argument("--cycles", type=int, default=None, help="crius pod cycles after warm-up (10000)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--checkpoint", type=int, default=None, help="cycles between snapshots (1000)")
    ap.add_argument("--warmup", type=int, default=None, help="cycles before the baseline (200)")
    ap.add_argument("--unikernel-every", type=int, default=4, help="every Kth cycle a unikernel pod (0: none)")
    ap.add_argument("--containerd-cycles", type=int, default=None, help="containerd+runc cycles (500; 0 skips)")
    ap.add_argument("--network", choices=("deploy", "bridge"), default="deploy",
                    help="deploy/'s CNI network (masquerade, portmap), or bench/run.py's bare bridge")
    ap.add_argument("--out", default=None, help="JSON results (default: build/soak-results.json)")
    args = ap.parse_args()
    cycles = args.cycles or (40 if args.smoke else 10000)
    checkpoint = args.checkpoint or (20 if args.smoke else 1000)
    warmup = args.warmup if args.warmup is not None else (8 if args.smoke else 200)
    ctrd_cycles = args.containerd_cycles if args.containerd_cycles is not None else (20 if args.smoke else 500)
    out_path = Path(args.out) if args.out else BUILD / "soak-results.json"
    flavours = ("spt", "hvt") if kvm_usable() else ("spt",)
    signal.signal(signal.SIGTERM, interrupted)

    work = Path(tempfile.mkdtemp(prefix="crius-soak-"))
    cni_cache = CniCache()
    ns, registry, crius, ctrd, targets = Netns(prefix="crius-soak"), None, None, None, []
    results, ctrd_skipped, taken_down = {}, None, set()
    try:
        ns.create()
        registry = Registry(netns=ns).start()
        app_layer = oci.busybox_layer().file("sleeper", fixture_binary("sleeper").read_bytes(), mode=0o755)
        images = {"ns": oci.push(registry, oci.Image([app_layer], entrypoint=["/sleeper"], env=["PATH=/bin"]),
                                 "soak/app").ref}
        pause = oci.push(registry, oci.sleeper_image(), "soak/pause")
        for flavour in flavours:
            elf = (BUILD / "unikernel" / "guests" / f"sleeper.{flavour}").read_bytes()
            images[flavour] = oci.push(registry, oci.unikernel_image("sleeper", elf, flavour),
                                       f"soak/sleeper-{flavour}").ref
        for name, bridge, subnet in (("crius", "soak-crius0", "10.211.0.0/16"),
                                     ("containerd", "soak-ctrd0", "10.212.0.0/16")):
            network = deploy_network if args.network == "deploy" else bridge_network
            network(work / f"net-{name}", f"soak-{name}", bridge, subnet, work / "ipam")
        make_cgroup(CGROUP_PARENT)
        logs = work / "logs"
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        machine = f"{os.cpu_count()} cores, Linux {platform.release()}"

        (work / "crius").mkdir()
        crius = SessionDaemon(netns=ns, workdir=work / "crius", config=(
            f'[registry]\ninsecure = ["{registry.host}"]\n'
            f'[network]\ncni_conf_dir = "{work}/net-crius"\ncni_bin_dirs = ["/usr/lib/cni"]\n'))
        crius.start()
        t = Target("crius", crius, crius.client, crius.pid, crius.workdir, crius.root, crius.state, ns, work / "ipam",
                   "soak-crius", images, confine(crius.pid, f"{DAEMONS}/crius"), CGROUP_PARENT,
                   lambda kind: "" if kind == "ns" else f"crius-{kind}", args.unikernel_every, flavours)
        targets.append(t)
        for ref in images.values():
            crius.image.PullImage(crius.pb.PullImageRequest(image=crius.pb.ImageSpec(image=ref)), timeout=120)
        results["crius"] = soak(t, cycles, args.concurrency, checkpoint, warmup, logs)
        targets.clear()
        remove_pods(crius.client)  # none, unless a cycle's own clean-up failed
        results["crius"]["daemon_exit"] = crius.stop(check=False)
        taken_down.add("crius")

        try:
            if not ctrd_cycles:
                raise RuntimeError("--containerd-cycles 0")
            (work / "containerd").mkdir()
            ctrd = Containerd(work / "containerd", ns, registry, pause.ref, work / "net-containerd")
            ctrd.command = ["setsid"] + ctrd.command  # as SessionDaemon: Ctrl-C is the driver's alone
            ctrd.start()
            c = Target("containerd", ctrd, ctrd.client, ctrd.pid, ctrd.workdir, ctrd.workdir / "root",
                       ctrd.workdir / "state", ns, work / "ipam", "soak-containerd", images,
                       confine(ctrd.pid, f"{DAEMONS}/containerd"), CGROUP_PARENT,
                       lambda kind: "runc")
            targets.append(c)
            ctrd.client.image.PullImage(c.pb.PullImageRequest(image=c.pb.ImageSpec(image=images["ns"])), timeout=120)
            results["containerd+runc"] = soak(c, ctrd_cycles, args.concurrency,
                                              min(checkpoint, max(1, ctrd_cycles // 2)), min(warmup, 50), logs)
            targets.clear()
        except (Exception, SystemExit) as e:  # noqa: BLE001 - crius's figures stand without it
            print(f"soak: containerd+runc not measured: {e}", file=sys.stderr)
            ctrd_skipped = str(e)

        mix = (f"1 cycle in {args.unikernel_every} a unikernel pod ({', '.join(flavours)})"
               if args.unikernel_every else "namespace pods only")
        print(f"\ncrius soak, {when}, {machine}, concurrency {args.concurrency}, {mix}, {args.network} network"
              f"{' (smoke)' if args.smoke else ''}\n")
        for name, result in results.items():
            print(table(name, result) + "\n")
            for f in result["first_failures"][:5]:
                print(f"  {name} cycle {f['cycle']} ({f['kind']}): {f['step']}: {f['code']}: {f['message']}")
            for k, new in result["new"].items():
                print(f"  {name} {k} new since the baseline: {new}")
        c = results["crius"]
        if c["daemon_exit"] != 0:
            print(f"  criusd exited with {c['daemon_exit']} on SIGTERM")
        for name, result in results.items():
            print("verdict: " + verdict(name, result))
        if ctrd_skipped:
            print(f"containerd+runc: not measured: {ctrd_skipped}")
        out_path.write_text(json.dumps({"when": when, "machine": machine, "args": vars(args), "cycles": cycles,
                                        "checkpoint": checkpoint, "flavours": flavours, "results": results,
                                        "containerd_skipped": ctrd_skipped}, indent=1))
        print(f"\nJSON: {out_path}")
        bad = (c["failures"] or c["warmup_failures"] or c["grew"] or c["cycles"] < cycles or c["daemon_died"]
               or c["daemon_exit"] != 0)
        return 1 if bad else 0
    finally:
        for t in targets:
            if t.soak:
                t.soak.stop()
        for name, daemon in (("crius", crius), ("containerd", ctrd)):
            if daemon is not None and name not in taken_down:
                take_down(name, daemon)
        kill_pods_left(CGROUP_PARENT)
        if crius is not None:
            crius.stop(check=False)
        if ctrd is not None:
            ctrd.stop()
        close_run(registry, ns, cni_cache, work, CGROUP_PARENT, DAEMONS)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:  # main's clean-up has run
        print(f"soak: interrupted ({e or 'Ctrl-C'}); what it made is removed", file=sys.stderr)
        sys.exit(130)
