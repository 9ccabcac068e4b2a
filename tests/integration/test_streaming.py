"""Exec, Attach and PortForward through a real criusd and real containers,
driven as kubelet and crictl drive them: the RPC answers with a one-time URL
on crius's streaming server, and the client speaks remotecommand or
port-forward over SPDY/3.1 or WebSocket to it. Interactive shells on a
terminal with a resize, stdin closed mid-stream, exit codes, attach to a
container's own stdio, a port-forward to a server in the pod; and the bad
inputs: unknown or stopped containers, used and expired tokens, a resize
without a terminal, a port nobody listens on, a client gone mid-stream."""
import json
import os
import time

import grpc
import pytest

from harness import streaming as s

pytestmark = pytest.mark.usefixtures("leak_check")


@pytest.fixture
def d(make_daemon, registry, busybox):
    d = make_daemon(config=f'[registry]\ninsecure = ["{registry.host}"]\n[streaming]\ntoken_ttl = "3s"\n')
    d.image.PullImage(d.pb.PullImageRequest(image=d.pb.ImageSpec(image=busybox.ref)), timeout=60)
    yield d
    for p in d.runtime.ListPodSandbox(d.pb.ListPodSandboxRequest()).items:
        d.runtime.StopPodSandbox(d.pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=30)
        d.runtime.RemovePodSandbox(d.pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=30)


class Pod:
    def __init__(self, d, tmp, image, name="s"):
        pb = self.pb = d.pb
        self.d, self.image = d, image
        self.cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, namespace="e", uid=f"u-{name}"),
                                       hostname="streamhost", log_directory=str(tmp / name))
        self.id = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=self.cfg), timeout=60).pod_sandbox_id

    def run(self, name, script="exec sleep 600", **kw):
        pb = self.pb
        cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=self.image),
                                 command=["sh", "-c", script], log_path=f"{name}.log", **kw)
        cid = self.d.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=self.id, config=cfg, sandbox_config=self.cfg), timeout=60).container_id
        self.d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
        return cid

    def exec_url(self, cid, cmd, stdin=False, stdout=True, stderr=True, tty=False):
        return self.d.runtime.Exec(self.pb.ExecRequest(container_id=cid, cmd=cmd, stdin=stdin, stdout=stdout,
                                                       stderr=stderr and not tty, tty=tty), timeout=10).url

    def attach_url(self, cid, stdin=False, stdout=True, stderr=True, tty=False):
        return self.d.runtime.Attach(self.pb.AttachRequest(container_id=cid, stdin=stdin, stdout=stdout,
                                                           stderr=stderr and not tty, tty=tty), timeout=10).url

    def forward_url(self, ports=()):
        return self.d.runtime.PortForward(self.pb.PortForwardRequest(pod_sandbox_id=self.id, port=list(ports)),
                                          timeout=10).url

    def sync(self, cid, cmd):
        return self.d.runtime.ExecSync(self.pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=30), timeout=60)


SCRIPT = ["sh", "-c", "echo out; echo err >&2; hostname; exit 3"]


# gRPC's own thread pools grow and shrink as they please: not criusd's.
GRPC_THREADS = ("grpc", "event_engine", "timer_manager", "default-executo", "resolver-execut")


def resources(d):
    """criusd's open fds, its own threads (not gRPC's pools) and its children
    (exec helpers)."""
    fds = len(os.listdir(f"/proc/{d.pid}/fd"))
    threads = 0
    for t in os.listdir(f"/proc/{d.pid}/task"):
        try:
            name = open(f"/proc/{d.pid}/task/{t}/comm").read().strip()
        except FileNotFoundError:  # a thread that just ended
            continue
        threads += not name.startswith(GRPC_THREADS)
    children = open(f"/proc/{d.pid}/task/{d.pid}/children").read().split()
    return fds, threads, len(children)


def assert_back_to(d, before, timeout=10):
    """Sessions over, criusd holds what it held before them: no fd, thread or
    exec helper left behind."""
    deadline = time.time() + timeout
    while (now := resources(d)) != before:
        assert time.time() < deadline, f"criusd held {before} (fds, threads, children), now {now}"
        time.sleep(0.1)


def test_exec_over_spdy_reports_output_and_exit_code(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("app")
    url = p.exec_url(cid, SCRIPT)
    assert url.startswith("http://127.0.0.1:") and "/exec/" in url
    c = s.SpdyCommand(url)
    assert c.conn.protocol == "v4.channel.k8s.io"
    out, err, outcome = c.wait()
    assert out == b"out\nstreamhost\n" and err == b"err\n"
    assert s.exit_code(outcome) == 3
    # Success is a Status too.
    out, err, outcome = s.SpdyCommand(p.exec_url(cid, ["true"])).wait()
    assert json.loads(outcome)["status"] == "Success"


@pytest.mark.parametrize("protocol", ["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"])
def test_exec_over_websocket_reports_output_and_exit_code(d, tmp, busybox, protocol):
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("app")
    c = s.WsCommand(p.exec_url(cid, SCRIPT), protocols=[protocol])
    assert c.protocol == protocol
    out, err, outcome = c.wait()
    assert out == b"out\nstreamhost\n" and err == b"err\n"
    assert s.exit_code(outcome) == 3


def test_older_spdy_protocols_report_failure_as_text(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("app")
    c = s.SpdyCommand(p.exec_url(cid, SCRIPT), protocols=["v2.channel.k8s.io"])
    assert c.conn.protocol == "v2.channel.k8s.io"
    out, err, outcome = c.wait()
    assert out == b"out\nstreamhost\n"
    assert outcome == "command terminated with non-zero exit code: exit status 3"


def test_stdin_closed_mid_stream_ends_the_command(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("app")
    c = s.SpdyCommand(p.exec_url(cid, ["sh", "-c", "wc -c; echo done"], stdin=True), stdin=True)
    c.send(b"x" * 100000)
    c.send(b"tail")
    c.close_stdin()
    out, err, outcome = c.wait()
    assert out.split() == [b"100004", b"done"], out
    assert s.exit_code(outcome) == 0
    # WebSocket v5 closes stdin with its close message.
    w = s.WsCommand(p.exec_url(cid, ["cat"], stdin=True))
    w.send(b"hello\n")
    assert w.read_until(s.STDOUT, b"hello\n") == b"hello\n"
    w.close_stdin()
    out, err, outcome = w.wait()
    assert out == b"hello\n" and s.exit_code(outcome) == 0


def test_interactive_shell_on_a_terminal_with_resize(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("app")
    c = s.SpdyCommand(p.exec_url(cid, ["sh"], stdin=True, tty=True), stdin=True, tty=True)
    c.resize(123, 45)
    time.sleep(0.3)
    c.send(b"stty size; tty; echo $((6*7))\n")
    got = b""
    deadline = time.time() + 20
    while b"42" not in got and time.time() < deadline:
        got += c.read(s.STDOUT)
    assert b"45 123" in got and b"42" in got, got
    assert b"/dev/pts/" in got and b"not a tty" not in got, got  # the container's own devpts
    c.resize(80, 24)
    time.sleep(0.3)
    c.send(b"stty size; exit 7\n")
    out, err, outcome = c.wait()
    assert b"24 80" in got + out
    assert s.exit_code(outcome) == 7
    # Over WebSocket too.
    w = s.WsCommand(p.exec_url(cid, ["sh"], stdin=True, tty=True))
    w.resize(99, 33)
    time.sleep(0.3)
    w.send(b"stty size\n")
    assert b"33 99" in w.read_until(s.STDOUT, b"33 99")
    w.send(b"exit\n")
    out, err, outcome = w.wait()
    assert s.exit_code(outcome) == 0


def test_a_resize_without_a_terminal_is_ignored(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("app")
    w = s.WsCommand(p.exec_url(cid, ["sh", "-c", "sleep 0.5; echo fine"]))
    w.resize(10, 10)
    out, err, outcome = w.wait()
    assert out == b"fine\n" and s.exit_code(outcome) == 0
    # Over SPDY the resize stream of a session without a terminal is refused.
    c = s.SpdyClient(p.exec_url(cid, ["true"]), ["v4.channel.k8s.io"])
    st = c.open({"streamtype": "resize"})
    assert st.reset is not None
    c.close()


def test_exec_of_a_missing_binary_reports_why(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("app")
    out, err, outcome = s.SpdyCommand(p.exec_url(cid, ["/no/such/thing"])).wait()
    status = json.loads(outcome)
    assert status["status"] == "Failure" and "/no/such/thing" in status["message"], status


def test_a_client_gone_mid_stream_ends_the_command(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("app")
    p.sync(cid, ["true"])
    before = resources(d)
    for make in (lambda u: s.SpdyCommand(u), lambda u: s.WsCommand(u)):
        c = make(p.exec_url(cid, ["sh", "-c", "echo up; exec sleep 777"]))
        if isinstance(c, s.SpdyCommand):
            assert c.read(s.STDOUT) == b"up\n"
        else:
            c.read_until(s.STDOUT, b"up\n")
        assert "sleep 777" in p.sync(cid, ["ps", "-o", "args="]).stdout.decode()
        c.close()
        deadline = time.time() + 10
        while "sleep 777" in p.sync(cid, ["ps", "-o", "args="]).stdout.decode():
            assert time.time() < deadline, "the exec'd process outlived its client"
            time.sleep(0.1)
    assert_back_to(d, before)


def test_attach_to_a_containers_stdio(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("echo", "while read l; do echo got:$l; echo err:$l >&2; done; echo bye", stdin=True)
    before = resources(d)
    w = s.WsCommand(p.attach_url(cid, stdin=True))
    w.send(b"one\n")
    assert w.read_until(s.STDOUT, b"got:one\n")
    assert w.read_until(s.STDERR, b"err:one\n")
    w.close()
    # A second client over SPDY, after the first left.
    c = s.SpdyCommand(p.attach_url(cid, stdin=True), stdin=True)
    c.send(b"two\n")
    assert c.read(s.STDOUT) == b"got:two\n"
    c.close_stdin()  # not stdin_once: the container's stdin stays open
    time.sleep(0.3)
    c.close()
    w = s.WsCommand(p.attach_url(cid, stdin=True))
    w.send(b"three\n")
    assert w.read_until(s.STDOUT, b"got:three\n")
    w.close()
    assert_back_to(d, before)
    # What attach showed is in the log too.
    log = (tmp / "s" / "echo.log").read_text()
    assert "got:one" in log and "got:two" in log and "got:three" in log


def test_attach_with_stdin_once_closes_the_containers_stdin(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("cat", "cat; echo eof; sleep 600", stdin=True, stdin_once=True)
    c = s.SpdyCommand(p.attach_url(cid, stdin=True), stdin=True)
    c.send(b"line\n")
    assert c.read(s.STDOUT) == b"line\n"
    c.close_stdin()
    assert c.read(s.STDOUT) == b"eof\n"
    c.close()


def test_attach_to_a_terminal_container_ends_when_it_exits(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("tty", "read l; tty; stty size; echo bye:$l; exit 0", stdin=True, tty=True)
    c = s.SpdyCommand(p.attach_url(cid, stdin=True, tty=True), stdin=True, tty=True)
    c.resize(70, 20)
    time.sleep(0.3)
    c.send(b"now\n")
    out, err, outcome = c.wait()
    assert b"20 70" in out and b"bye:now" in out and b"/dev/pts/0" in out, out
    assert json.loads(outcome)["status"] == "Success"


HTTPD = "mkdir -p /www && echo served-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"
GET = b"GET /index.html HTTP/1.0\r\n\r\n"


def test_port_forward_over_spdy(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    p.run("web", HTTPD)
    time.sleep(0.5)
    before = resources(d)
    conn = s.SpdyClient(p.forward_url([8080]), ["portforward.k8s.io"])
    assert conn.protocol == "portforward.k8s.io"
    for rid in ("0", "1"):  # two connections over one session
        err = conn.open({"streamtype": "error", "port": "8080", "requestid": rid})
        data = conn.open({"streamtype": "data", "port": "8080", "requestid": rid})
        conn.write(data, GET)
        reply = conn.read_all(data)
        assert b"200 OK" in reply and b"served-from-pod" in reply, reply
        assert conn.read_all(err) == b""
    # A port nobody listens on: the error stream says so.
    err = conn.open({"streamtype": "error", "port": "9", "requestid": "2"})
    data = conn.open({"streamtype": "data", "port": "9", "requestid": "2"})
    why = conn.read_all(err).decode()
    assert "port 9" in why and "refused" in why.lower(), why
    conn.close()
    assert_back_to(d, before)


def test_port_forward_over_websocket(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    p.run("web", HTTPD)
    time.sleep(0.5)
    import websocket
    ws = websocket.create_connection(s.ws_url(p.forward_url([8080])) + "?port=8080&port=9",
                                     subprotocols=["portforward.k8s.io"], timeout=30)
    first = {}
    while len(first) < 4:
        op, m = ws.recv_data()
        first.setdefault(m[0], m[1:])
    assert first == {0: b"\x90\x1f", 1: b"\x90\x1f", 2: b"\x09\x00", 3: b"\x09\x00"}
    ws.send_binary(b"\x00" + GET)
    got, errors = b"", b""
    while b"served-from-pod" not in got or b"refused" not in errors.lower():
        op, m = ws.recv_data()
        if m[0] == 0:
            got += m[1:]
        elif m[0] == 3:
            errors += m[1:]
    assert b"200 OK" in got
    ws.close()
    ws.shutdown()


def test_bad_requests_are_refused_naming_the_field(d, tmp, busybox):
    pb, rt = d.pb, d.runtime
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("app")
    stopped = p.run("stopped", "exit 0")
    plain = cid

    def code(call, req):
        with pytest.raises(grpc.RpcError) as e:
            call(req, timeout=10)
        return e.value.code(), e.value.details()

    assert code(rt.Exec, pb.ExecRequest(container_id="nope", cmd=["true"], stdout=True))[0] == \
        grpc.StatusCode.NOT_FOUND
    assert code(rt.Exec, pb.ExecRequest(container_id="", cmd=["true"], stdout=True))[1].startswith("container_id")
    assert code(rt.Exec, pb.ExecRequest(container_id=cid, cmd=[], stdout=True))[1].startswith("cmd")
    c, why = code(rt.Exec, pb.ExecRequest(container_id=cid, cmd=["true"]))
    assert c == grpc.StatusCode.INVALID_ARGUMENT and "stdin, stdout, stderr" in why
    c, why = code(rt.Exec, pb.ExecRequest(container_id=cid, cmd=["true"], tty=True, stderr=True))
    assert c == grpc.StatusCode.INVALID_ARGUMENT and why.startswith("tty")
    deadline = time.time() + 10
    while rt.ContainerStatus(pb.ContainerStatusRequest(container_id=stopped)).status.state != \
            pb.CONTAINER_EXITED:
        assert time.time() < deadline
        time.sleep(0.1)
    assert code(rt.Exec, pb.ExecRequest(container_id=stopped, cmd=["true"], stdout=True))[0] == \
        grpc.StatusCode.FAILED_PRECONDITION
    assert code(rt.Attach, pb.AttachRequest(container_id=stopped, stdout=True))[0] == \
        grpc.StatusCode.FAILED_PRECONDITION
    c, why = code(rt.Attach, pb.AttachRequest(container_id=plain, stdin=True, stdout=True))
    assert c == grpc.StatusCode.INVALID_ARGUMENT and why.startswith("stdin"), why
    c, why = code(rt.Attach, pb.AttachRequest(container_id=plain, tty=True, stdout=True))
    assert c == grpc.StatusCode.INVALID_ARGUMENT and why.startswith("tty"), why
    assert code(rt.Attach, pb.AttachRequest(container_id="nope", stdout=True))[0] == grpc.StatusCode.NOT_FOUND
    for port in (0, 70000, -1):
        c, why = code(rt.PortForward, pb.PortForwardRequest(pod_sandbox_id=p.id, port=[80, port]))
        assert c == grpc.StatusCode.INVALID_ARGUMENT and why.startswith("port[1]"), why
    assert code(rt.PortForward, pb.PortForwardRequest(pod_sandbox_id="nope"))[0] == grpc.StatusCode.NOT_FOUND
    assert code(rt.PortForward, pb.PortForwardRequest())[1].startswith("pod_sandbox_id")


def test_tokens_are_good_once_and_expire(d, tmp, busybox):
    p = Pod(d, tmp, busybox.ref)
    cid = p.run("app")
    url = p.exec_url(cid, ["true"])
    s.SpdyCommand(url).wait()
    for attempt in (lambda: s.SpdyCommand(url), lambda: s.WsCommand(url)):
        with pytest.raises((s.UpgradeRefused, Exception)) as e:
            attempt()
        assert "404" in str(e.value), e.value
    # Unknown tokens and paths; an exec token on the attach path.
    base = url.rsplit("/", 2)[0]
    assert s.http_get(base + "/exec/madeup")[0] == 404
    assert s.http_get(base + "/other/x")[0] == 404
    token = p.exec_url(cid, ["true"]).rsplit("/", 1)[1]
    assert s.http_get(f"{base}/attach/{token}")[0] == 404
    # A token unused past its lifetime (3 s here) is gone.
    late = p.exec_url(cid, ["true"])
    time.sleep(3.5)
    with pytest.raises(s.UpgradeRefused) as e:
        s.SpdyCommand(late)
    assert e.value.status == 404
    # Without an upgrade: a clear 400.
    status, body = s.http_get(p.exec_url(cid, ["true"]))
    assert status == 400 and "upgrade" in body, body
    # A protocol nobody speaks.
    with pytest.raises(s.UpgradeRefused) as e:
        s.SpdyCommand(p.exec_url(cid, ["true"]), protocols=["v9.channel.k8s.io"])
    assert e.value.status == 403 and "v4.channel.k8s.io" in e.value.body
