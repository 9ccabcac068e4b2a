#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, made here from the test harness's own
builders (nothing downloaded): make_seeds.py OUT [CRIUSD] writes
OUT/<target>/<name> for every target of tests/fuzz/CMakeLists.txt."""
import importlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path

import websocket

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from harness import oci  # noqa: E402
from harness.node import conflist  # noqa: E402
from harness import streaming  # noqa: E402
from harness.streaming import SPDY_DICT  # noqa: E402

HEX = "0123456789abcdef" * 4


def references():
    return ["busybox", "busybox:1.36", "docker.io/library/busybox:latest", "library/busybox",
            f"127.0.0.1:5000/a/b@sha256:{HEX}", f"localhost/x:y@sha256:{HEX}", "registry.k8s.io/pause:3.9",
            "[::1]:5000/img:tag", "gcr.io/a-b_c.d/e__f:v1.2-rc", f"sha256:{HEX}", HEX, "UPPER/case",
            "a" * 255 + ":t", "host:99999/x", "x@sha512:" + HEX * 2, "x:"]


def manifests():
    layer = oci.Layer().file("etc/motd", b"hi\n").dir("data", mode=0o700, uid=1000)
    image = oci.Image([layer], cmd=["/bin/sh"], env=["PATH=/bin"], user="1000:1000", stop_signal="SIGINT",
                      labels={"a": "b"}, annotations={"org.crius.x": "y"})
    docker = oci.Image([layer], entrypoint=["/e"], docker=True)
    arm = oci.Image([layer], architecture="arm64", variant="v8")
    zstd = oci.Image([layer], compression="zstd")
    plain = oci.Image([layer], compression=None)
    seeds = {"index": oci.Index([image, arm]).manifest_blob().data,
             "list": oci.Index([docker], docker=True).manifest_blob().data,
             "only-arm": oci.Index([arm]).manifest_blob().data}
    for name, img in (("oci", image), ("docker", docker), ("zstd", zstd), ("plain", plain)):
        seeds[f"manifest-{name}"] = img.manifest_blob().data
        seeds[f"config-{name}"] = img.config_blob().data
    return seeds


def configs(criusd):
    seeds = {"empty": b"", "sections": b'root = "/r"\n[registry]\ninsecure = ["h:1"]\n[events]\nmax_queued = 1\n',
             "bad-duration": b'[registry]\npull_progress_timeout = "5 fortnights"\n'}
    deploy = Path(__file__).resolve().parent.parent.parent / "deploy" / "crius.toml"
    if deploy.exists():
        seeds["deploy"] = deploy.read_bytes()
    if criusd and os.access(criusd, os.X_OK):
        seeds["defaults"] = subprocess.run([criusd, "--print-config"], capture_output=True, check=True).stdout
    return seeds


def seccomp_profiles():
    oci_profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
                   "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                                 "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0,
                                           "op": "SCMP_CMP_MASKED_EQ"}]},
                                {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}
    moby = {"defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                         {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_PTRACE"]}},
                         {"names": ["getpid"], "action": "SCMP_ACT_LOG"}]}
    return {"oci": json.dumps(oci_profile).encode(), "moby": json.dumps(moby).encode(),
            "allow": b'{"defaultAction": "SCMP_ACT_ALLOW"}', "notify": b'{"defaultAction": "SCMP_ACT_NOTIFY"}'}


def cni_configs():
    return {"bridge": conflist("/var/lib/cni/networks").encode(),
            "loopback": b'{"cniVersion": "1.0.0", "name": "lo", "plugins": [{"type": "loopback"}]}',
            "conf": b'{"cniVersion": "0.4.0", "name": "one", "type": "bridge", "ipam": {"type": "host-local"}}'}


def cni_results():
    """ADD results as Debian's plugins print them, in each result version."""
    v1 = {"cniVersion": "1.0.0",
          "interfaces": [{"name": "cni0", "mac": "aa:bb:cc:dd:ee:ff"},
                         {"name": "eth0", "mac": "0a:58:0a:58:00:05", "sandbox": "/run/netns/x"}],
          "ips": [{"interface": 1, "address": "10.88.0.5/16", "gateway": "10.88.0.1"},
                  {"interface": 1, "address": "fd00::5/64", "gateway": "fd00::1"}],
          "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["10.88.0.1"]}}
    v04 = dict(v1, cniVersion="0.4.0", ips=[dict(ip, version="4") for ip in v1["ips"][:1]])
    v02 = {"cniVersion": "0.2.0", "ip4": {"ip": "10.1.0.2/24", "gateway": "10.1.0.1"}, "ip6": {"ip": "fd01::2/64"}}
    return {"v1": json.dumps(v1).encode(), "v04": json.dumps(v04).encode(), "v02": json.dumps(v02).encode(),
            "error": b'{"cniVersion": "1.0.0", "code": 7, "msg": "failed", "details": "why"}'}


def spdy_session(types=("error", "stdin", "stdout", "resize")):
    """A client's SPDY/3.1 frames: streams opened, stdin, a resize, ping, FIN, resets, GOAWAY."""
    comp = zlib.compressobj(zdict=SPDY_DICT)
    control, data = streaming.control_frame, streaming.data_frame

    def headers(h):
        return streaming.header_block(comp, h)

    syn = [control(1, 0, struct.pack(">II", sid, 0) + b"\0\0" + headers({"streamtype": t, "port": "80",
                                                                         "requestid": "0"}))
           for sid, t in zip((1, 3, 5, 7), types)]
    return b"".join(syn) + data(3, b"echo hi\n") + data(7, b'{"Width":80,"Height":24}') + \
        control(6, 0, struct.pack(">I", 1)) + data(3, b"", fin=True) + control(3, 0, struct.pack(">II", 5, 5)) + \
        control(9, 0, struct.pack(">II", 3, 65536)) + control(4, 0, struct.pack(">I", 0)) + \
        control(7, 0, struct.pack(">II", 7, 0))


def spdy_frames():
    session = spdy_session()
    return {f"piece-{p}": bytes([p]) + session for p in (0, 7, 63)}


def layers():
    base = oci.Layer().file("etc/motd", b"hi\n").dir("data", mode=0o700, uid=1000).symlink("lib", "usr/lib") \
        .hardlink("etc/motd2", "etc/motd").file("bin/su", b"x", mode=0o4755)
    upper = oci.Layer().whiteout("etc/motd").opaque("data").file("data/new", b"n\n")
    out = {}
    for name, layer in (("base", base), ("upper", upper)):
        out[f"{name}.tar"] = layer.tar()
        out[f"{name}.tar.gz"] = layer.blob("gzip").data
        out[f"{name}.tar.zst"] = layer.blob("zstd").data
    evil = tarfile.TarInfo("../escape")
    out["dotdot.tar"] = oci.raw_tar((evil, b"x"))
    link = tarfile.TarInfo("up")
    link.type, link.linkname = tarfile.SYMTYPE, "../../.."
    through = tarfile.TarInfo("up/etc/x")
    out["through-symlink.tar"] = oci.raw_tar((link, b""), (through, b"x"))
    dev = tarfile.TarInfo("dev/null")
    dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
    out["device.tar"] = oci.raw_tar((dev, b""))
    return out


def guest_elfs(criusd):
    """The project's own solo5 guests, as the build made them."""
    guests = Path(criusd).parent / "unikernel" / "guests" if criusd else None
    if guests is None or not guests.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(guests.iterdir())
            if p.suffix in (".hvt", ".spt") and p.stem in ("hello", "net", "blk", "shutdown")}


def monitor_stubs():
    """monitor_pb2, generated from proto/monitor.proto as the harness generates its CRI stubs."""
    out = tempfile.mkdtemp(prefix="crius-monitor-stubs-")
    try:
        subprocess.run(["protoc", f"-I{ROOT / 'proto'}", f"--python_out={out}", "monitor.proto"], check=True)
        sys.path.insert(0, out)
        try:
            return importlib.import_module("monitor_pb2")
        finally:
            sys.path.remove(out)
    finally:
        shutil.rmtree(out)


def packet(data, fds=0, flags=0):
    """A packet as the monitor targets read their input: flag byte, 16-bit length, bytes."""
    return bytes([fds | flags]) + struct.pack("<H", len(data)) + data


def wire(msg):
    """A monitor message as sandbox/monitor_wire.cc sends it: version byte 1, then the message."""
    return b"\x01" + msg.SerializeToString()


def container_spec(pb):
    return pb.ContainerSpec(
        id="c1", lower_dirs=["/var/lib/crius/layers/a", "/var/lib/crius/layers/b"],
        upper_dir="/var/lib/crius/containers/c1/upper", work_dir="/var/lib/crius/containers/c1/work",
        rootfs="/run/crius/pods/p/c1/rootfs", args=["/bin/sh", "-c", "echo hi"], env=["PATH=/bin", "HOME=/"],
        cwd="/", user="1000:1000", additional_gids=[10, 20],
        mounts=[pb.Mount(source="/var/lib/kubelet/x", destination="/data", readonly=True, propagation=1,
                         recursive_readonly=True, from_request=True, index=0, idmap=True, nodev=True, nosuid=True),
                pb.Mount(source="/run/crius/pods/p/hosts", destination="/etc/hosts")],
        log_path="/var/log/pods/ns_p_uid/c/0.log", new_pid_namespace=True, readonly_rootfs=True, tty=True,
        stdin=True, shm="/run/crius/pods/p/shm", capabilities=[0, 1, 2, 21], no_new_privs=True,
        masked_paths=["/proc/kcore"], readonly_paths=["/proc/sys"],
        seccomp_bpf=struct.pack("<HBBI", 0x06, 0, 0, 0x7FFF0000), seccomp_log=True, merge_image_groups=True,
        devices=[pb.Device(path="/dev/fuse", dev_major=10, dev_minor=229, mode=0o666, permissions="rwm",
                           host_path="/dev/fuse")],
        cgroup_procs=["/sys/fs/cgroup/kubepods/pod/c1/cgroup.procs"], oom_events="/sys/fs/cgroup/x/memory.events",
        set_oom_score_adj=True, oom_score_adj=-997, nodev=True, user_namespace="/run/crius/pods/p/ns/user",
        userns_root_uid=100000, userns_root_gid=100000, userns_tty_gid=-1, target_pid_namespace="c0",
        tender=pb.Tender(binary="/usr/lib/crius/crius-hvt", flavour="hvt", options=["--mem=64"],
                         guest="/app.hvt", blocks=[pb.Tender.Block(name="storage", path="/disk.img")],
                         guest_args=["ip=10.88.0.5"]))


def monitor_requests(pb):
    """What criusd sends a monitor, one request per packet, as sandbox/monitor_client.cc and cri/ make them."""
    reqs = {"hello": pb.Request(hello=pb.Hello()), "shutdown": pb.Request(shutdown=pb.Shutdown()),
            "create": pb.Request(create=pb.CreateContainer(spec=container_spec(pb))),
            "start": pb.Request(start=pb.StartContainer(id="c1")),
            "signal": pb.Request(signal=pb.SignalContainer(id="c1", signal=15)),
            "remove": pb.Request(remove=pb.RemoveContainer(id="c1")),
            "reopen-log": pb.Request(reopen_log=pb.ReopenLog(id="c1")), "watch": pb.Request(watch=pb.Watch()),
            "attach": pb.Request(attach=pb.AttachContainer(id="c1")),
            "close-stdin": pb.Request(close_stdin=pb.CloseStdin(id="c1"))}
    seeds = {name: packet(wire(r)) for name, r in reqs.items()}
    seeds["session"] = b"".join(packet(wire(r)) for r in reqs.values())
    # Descriptors with a request (kept, and more than the reader has room for), a terminal's
    # master as a container's child sends it, a packet of another version, an empty one.
    seeds["descriptors"] = packet(wire(reqs["hello"]), fds=2, flags=32) + packet(wire(reqs["start"]), fds=12)
    seeds["terminal"] = packet(b"f", fds=1, flags=16) + packet(b"f", flags=16)
    seeds["odd"] = packet(b"\x02" + reqs["hello"].SerializeToString()) + packet(b"")
    return seeds


def container_states(pb):
    return [pb.ContainerState(id="c0", phase=pb.ContainerState.CREATED),
            pb.ContainerState(id="c1", pid=4242, phase=pb.ContainerState.RUNNING, started_at_ns=1764000000000000000,
                              first_output_at_ns=1764000000004000000),
            pb.ContainerState(id="c2", phase=pb.ContainerState.EXITED, started_at_ns=1764000000000000000,
                              finished_at_ns=1764000001000000000, exit_code=255,
                              message="guest fault: PUTS data at 0x7ffff000 (+4096 bytes) is outside guest memory",
                              oom_killed=True, shutdown="halted")]


def monitor_responses(pb):
    """What a monitor answers criusd (sandbox/monitor/monitor.cc): the first byte picks the
    exchange of fuzz_monitor_response.cc (0 hello, 1 signal, 2 attach, 3 watch, 4 exit record)."""
    states = container_states(pb)
    pod = pb.PodState(monitor_pid=4000, pod_init_pid=4001, containers=states,
                      namespaces={kind: f"/run/crius/pods/p/ns/{kind}" for kind in ("net", "ipc", "uts", "pid")})
    return {"hello": b"\0" + packet(wire(pb.Response(pod=pod))),
            "error": b"\0" + packet(wire(pb.Response(error="container c not found in this pod", code=5))),
            "odd-code": b"\1" + packet(wire(pb.Response(error="?", code=-7))),
            "signal": b"\1" + packet(wire(pb.Response(container=states[1]))),
            "attach": b"\2" + packet(wire(pb.Response(fds=2)), fds=2),
            "attach-many": b"\2" + packet(wire(pb.Response(fds=12)), fds=12),
            "watch": b"\3" + packet(wire(pb.Response(pod=pod))) +
                     b"".join(packet(wire(pb.Response(container=st))) for st in states),
            "exit-record": b"\4" + packet(states[2].SerializeToString())}


def ws_frame(opcode, data, fin=True):
    """A client's WebSocket frame (masked), built by websocket-client, which the harness speaks."""
    frame = websocket.ABNF(fin=1 if fin else 0, opcode=opcode, mask=1, data=data)
    frame.get_mask_key = lambda n: b"\x5a\xa5\x0f\xf0"
    return frame.format()


def http_upgrade(path, websocket_protocols=None, spdy_protocols=None):
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1:10010", "User-Agent: kubelet/v1.31.0"]
    if websocket_protocols is not None:
        lines += ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                  "Sec-WebSocket-Version: 13", f"Sec-WebSocket-Protocol: {', '.join(websocket_protocols)}"]
    if spdy_protocols is not None:
        lines += ["Upgrade: SPDY/3.1", "Connection: Upgrade"] + \
            [f"X-Stream-Protocol-Version: {p}" for p in spdy_protocols]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def stream_requests():
    """Clients of the streaming server: piece size (+64: frames right behind the request), request
    flags (fuzz_stream_server.cc), then the bytes, with @E/@A/@P where the token of an exec, attach
    or port-forward goes."""
    BINARY, TEXT, CONT, CLOSE, PING = (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT,
                                       websocket.ABNF.OPCODE_CONT, websocket.ABNF.OPCODE_CLOSE,
                                       websocket.ABNF.OPCODE_PING)
    close = ws_frame(CLOSE, struct.pack(">H", 1000))
    ws_exec = ws_frame(BINARY, b"\0echo hi\n") + ws_frame(BINARY, b'\4{"Width":80,"Height":24}') + \
        ws_frame(PING, b"p") + ws_frame(BINARY, b"\0par", fin=False) + ws_frame(CONT, b"ts\n") + \
        ws_frame(BINARY, b"\xff\0") + close
    stdin, stdout, stderr, tty, ports, peer_closes = 2, 4, 8, 1, 32, 64
    seeds = {
        "not-found": b"\x3f\0" + b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        "bad-method": b"\x3f\0" + b"DELETE /exec/@E HTTP/1.1\r\nHost: x\r\n\r\n",
        "no-upgrade": b"\x10\0" + b"POST /exec/@E HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        "unknown-token": b"\x3f\0" + http_upgrade("/exec/x", ["v5.channel.k8s.io"]),
        "ws-exec-v5": bytes([7, stdin | stdout | stderr]) +
                      http_upgrade("/exec/@E?command=sh&input=1", ["v5.channel.k8s.io", "v4.channel.k8s.io"]) + ws_exec,
        "ws-exec-tty": bytes([63, stdin | stdout | tty]) + http_upgrade("/exec/@E", ["v4.channel.k8s.io"]) + ws_exec,
        "ws-exec-base64": bytes([1, stdin | stdout | stderr | 128]) +
                          http_upgrade("/exec/@E", ["v4.base64.channel.k8s.io"]) +
                          ws_frame(TEXT, b"0ZWNobyBoaQo=") + ws_frame(TEXT, b"0!!") + close,
        "ws-no-protocol": bytes([63, stdout | 16]) + http_upgrade("/exec/@E", ["chat"]),
        "ws-attach": bytes([31, stdin | stdout | stderr]) + http_upgrade("/attach/@A", ["v5.channel.k8s.io"]) +
                     ws_frame(BINARY, b"\0x\n") + close,
        "ws-port-forward": bytes([63, peer_closes]) + http_upgrade("/portforward/@P?port=80&port=1",
                                                                  ["portforward.k8s.io"]) +
                           ws_frame(BINARY, b"\0GET / HTTP/1.0\r\n\r\n") + ws_frame(BINARY, b"\2x") + close,
        "ws-port-forward-request-ports": bytes([63, ports]) + http_upgrade("/portforward/@P", ["portforward.k8s.io"]) +
                                         ws_frame(BINARY, b"\0ping") + close,
        "ws-bad-port": bytes([63, 0]) + http_upgrade("/portforward/@P?port=99999", ["portforward.k8s.io"]),
        "ws-exec-at-once": bytes([64 + 63, stdin | stdout]) + http_upgrade("/exec/@E", ["v5.channel.k8s.io"]) + ws_exec,
        "spdy-exec": bytes([64 + 63, stdin | stdout | tty]) +
                     http_upgrade("/exec/@E", spdy_protocols=["v4.channel.k8s.io", "v3.channel.k8s.io"]) +
                     spdy_session(),
        "spdy-attach-v2": bytes([5, stdout | stderr]) +
                          http_upgrade("/attach/@A", spdy_protocols=["v2.channel.k8s.io"]) +
                          spdy_session(("error", "stdout", "stderr", "stdin")),
        "spdy-no-protocol": bytes([63, stdout]) + http_upgrade("/exec/@E", spdy_protocols=["v9.channel.k8s.io"]),
        "spdy-port-forward": bytes([63, 0]) + http_upgrade("/portforward/@P", spdy_protocols=["portforward.k8s.io"]) +
                             spdy_session(("error", "data", "error", "data")),
    }
    return seeds


# hvt hypercalls (core/abi/hvt_abi.h) and the operations of fuzz_hvt_hypercall.c.
WALLTIME, PUTS, POLL, BLOCK_WRITE, BLOCK_READ, NET_WRITE, NET_READ, HALT = range(1, 9)
END = 4  # op bit: the address counts back from the end of guest memory


def hvt_write(addr, data, op=0):
    out = b""
    for at in range(0, len(data), 255):
        out += bytes([0 | op]) + struct.pack("<IB", addr + at, len(data[at:at + 255])) + data[at:at + 255]
    return out


def hvt_call(nr, addr, op=0):
    return bytes([1 | op, nr]) + struct.pack("<I", addr)


def hvt_frame(handle, data):
    return bytes([2, handle]) + struct.pack("<H", len(data)) + data


def hvt_hypercalls():
    """What a guest does (guests/lib/hvt.c): argument structs in its memory, then the OUT."""
    arg, buf = 0x180000, 0x190000
    ping = bytes(12) + b"\x08\x00" + b"ping" * 10
    puts = hvt_write(buf, b"hello\n") + hvt_write(arg, struct.pack("<QQ", buf, 6)) + hvt_call(PUTS, arg)
    halt = hvt_write(arg + 0x100, struct.pack("<Qi4x", 0, 7)) + hvt_call(HALT, arg + 0x100)
    blk = hvt_write(buf, bytes(range(256)) * 2) + \
        hvt_write(arg, struct.pack("<QQQQi4x", 2, 512, buf, 512, 0)) + hvt_call(BLOCK_WRITE, arg) + \
        hvt_write(arg, struct.pack("<QQQQi4x", 2, 512, buf + 0x1000, 512, 0)) + hvt_call(BLOCK_READ, arg) + \
        hvt_write(arg, struct.pack("<QQQQi4x", 4, 3 * 4096, buf, 4096, 0)) + hvt_call(BLOCK_WRITE, arg) + \
        hvt_write(arg, struct.pack("<QQQQi4x", 4, 4 * 4096, buf, 4096, 0)) + hvt_call(BLOCK_READ, arg)
    net = hvt_frame(1, ping) + hvt_write(arg, struct.pack("<QQi4x", 0, 0, 0)) + hvt_call(POLL, arg) + \
        hvt_write(arg, struct.pack("<QQQi4x", 1, buf, 1518, 0)) + hvt_call(NET_READ, arg) + \
        hvt_call(NET_READ, arg) + \
        hvt_write(arg, struct.pack("<QQQi4x", 3, buf, len(ping), 0)) + hvt_call(NET_WRITE, arg) + \
        hvt_write(arg, struct.pack("<QQQi4x", 3, buf, 1519, 0)) + hvt_call(NET_WRITE, arg)
    return {
        "hello": b"\0" + puts + halt,
        "walltime": b"\0" + hvt_call(WALLTIME, arg) + halt,
        "block": b"\0" + blk + halt,
        "net": b"\0" + net + halt,
        "poll-timeout": b"\0" + hvt_write(arg, struct.pack("<QQi4x", 1000, 0, 0)) + hvt_call(POLL, arg),
        "shutdown": bytes([4 | 8]) + hvt_write(arg, struct.pack("<QQi4x", 10**9, 0, 0)) + hvt_call(POLL, arg) + halt,
        "end-of-memory": b"\1" + hvt_write(24, struct.pack("<QQi4x", 0, 0, 0), END) + hvt_call(POLL, 24, END) +
                         hvt_write(16, struct.pack("<QQ", 0x100000, 16), END) + hvt_call(PUTS, 16, END),
        "big-memory": b"\3" + hvt_write(0xfffff000, b"x" * 16) +
                      hvt_write(0xffffff00, struct.pack("<QQ", 0xfffff000, 16)) + hvt_call(PUTS, 0xffffff00) + halt,
        "default-memory": b"\2" + puts + hvt_call(WALLTIME, 0x1fffff8) + halt,
        "unknown": b"\0" + hvt_call(0, arg) + hvt_call(9, arg),
        "low-memory": b"\0" + hvt_call(WALLTIME, 0x10000),
        "outside": b"\0" + hvt_write(arg, struct.pack("<QQ", 0x1ff000, 0x2000)) + hvt_call(PUTS, arg),
    }


AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, X32 = 0xC000003E, 0x40000003, 0x40000000
RAW = 255  # argument selector of fuzz_spt_syscall.c: the raw value
# Indexes of interesting[] in fuzz_spt_syscall.c.
ONE, EPOLL, TIMER, MONOTONIC, SET_FS, TAP0, BLK0, BS0, LAST0, PAST0, TAP1, BLK1, BS1, LAST1 = \
    1, 3, 4, 6, 7, 11, 12, 13, 14, 15, 17, 18, 19, 20


def spt_call(nr, *args, arch=AUDIT_ARCH_X86_64):
    out = struct.pack("<iIQ", nr, arch, 0x100000)
    for a in list(args) + [(RAW, 0)] * (6 - len(args)):
        sel, raw = a if isinstance(a, tuple) else (a, 0)
        out += struct.pack("<BQ", sel, raw)
    return out


def spt_syscalls():
    """System calls of an spt guest (guests/lib/spt.c and upstream's bindings), allowed and not."""
    buf = (RAW, 0x200000)
    return {
        "write-console": spt_call(1, ONE, buf, (RAW, 6)),
        "write-tap": spt_call(1, TAP0, buf, (RAW, 60)),
        "read-tap": spt_call(0, TAP1, buf, (RAW, 1518)),
        "exit": spt_call(231, (RAW, 3)),
        "epoll-pwait": spt_call(281, EPOLL, buf, (RAW, 64), (RAW, 1000)),
        "timerfd-settime": spt_call(286, TIMER, (RAW, 0), buf, (RAW, 0)),
        "clock": spt_call(228, MONOTONIC, buf),
        "tls": spt_call(158, SET_FS, buf),
        "pread": spt_call(17, BLK0, buf, BS0, LAST0),
        "pwrite-past": spt_call(18, BLK1, buf, BS1, PAST0),
        "pwrite-last": spt_call(18, BLK1, buf, BS1, LAST1),
        "i386": spt_call(4, ONE, buf, (RAW, 6), arch=AUDIT_ARCH_I386),
        "x32": spt_call(X32 | 1, ONE, buf, (RAW, 6)),
        "openat": spt_call(257, (RAW, 0xFFFFFF9C), buf, (RAW, 0)),
        "mmap": spt_call(9, (RAW, 0), (RAW, 4096), (RAW, 7), (RAW, 0x22), (RAW, 2**64 - 1), (RAW, 0)),
    }


def main():
    out = Path(sys.argv[1])
    criusd = sys.argv[2] if len(sys.argv) > 2 else None
    pb = monitor_stubs()
    targets = {"reference": {f"r{i}": r.encode() for i, r in enumerate(references())},
               "manifest": manifests(), "config": configs(criusd), "seccomp": seccomp_profiles(),
               "cni_config": cni_configs(), "cni_result": cni_results(), "spdy": spdy_frames(), "layer": layers(),
               "guest_elf": guest_elfs(criusd), "monitor_request": monitor_requests(pb),
               "monitor_response": monitor_responses(pb), "stream_server": stream_requests(),
               "hvt_hypercall": hvt_hypercalls(), "spt_syscall": spt_syscalls()}
    for target, seeds in targets.items():
        d = out / target
        d.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (d / name).write_bytes(data)
    print(f"seeds: {', '.join(f'{t} {len(s)}' for t, s in targets.items())} in {out}")


if __name__ == "__main__":
    main()
