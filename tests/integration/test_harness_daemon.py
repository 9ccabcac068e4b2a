"""harness.Daemon starts, stops, crashes and restarts a daemon, and explains failures.

Each test runs against the stand-in harness/fake_criusd.py (always) and the real
criusd (when built: CRIUS_CRIUSD or CRIUS_BUILD_DIR).
"""
import os
import signal
import sys
import textwrap

import pytest

import harness

pytestmark = pytest.mark.usefixtures("leak_check")
pytest_plugins = ["pytester"]
FAKE = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     "harness", "fake_criusd.py")]


@pytest.fixture(params=["fake", "criusd"])
def binary(request):
    if request.param == "fake":
        return FAKE
    path = harness.criusd_path()
    if path is None or not path.exists():
        pytest.skip(f"criusd not built ({path or 'set CRIUS_CRIUSD or CRIUS_BUILD_DIR'})")
    return path


def test_start_answers_version_and_stop_exits_0(make_daemon, binary):
    d = make_daemon(binary=binary)
    assert d.running and d.socket.exists()
    v = d.runtime.Version(d.pb.VersionRequest(version="v1"), timeout=5)
    assert v.runtime_api_version == "v1"
    assert v.runtime_name in ("crius", "fake-crius")
    assert d.stop() == 0
    assert not d.running and "harness: start #1" in d.log


def test_restart_serves_again_on_the_same_dirs(make_daemon, binary):
    d = make_daemon(binary=binary)
    (d.root / "kept").write_text("x")
    first = d.pid
    d.restart()
    assert d.pid != first and (d.root / "kept").read_text() == "x"
    assert d.client.version().runtime_api_version == "v1"


def test_kill9_then_start_replaces_the_stale_socket(make_daemon, binary):
    d = make_daemon(binary=binary)
    assert d.kill9() == -signal.SIGKILL
    assert d.socket.exists()
    d.start()
    assert d.client.version().runtime_api_version == "v1"


def test_start_failure_raises_with_the_log_tail(make_daemon, binary):
    d = make_daemon(binary=binary, start=False, config="no_such_key_for_harness = 1\n")
    with pytest.raises(harness.DaemonError, match=r"(?s)exited with .*no_such_key_for_harness"):
        d.start(timeout=10)
    assert not d.running


def test_failpoint_reaches_the_daemon(make_daemon):
    d = make_daemon(binary=FAKE, start=False, failpoints=["fake.before_listen"])
    with pytest.raises(harness.DaemonError, match=r"(?s)exited with -9.*failpoint fake.before"):
        d.start()
    assert d.environment()["CRIUS_FAILPOINTS"] == "fake.before_listen"


def test_failpoint_after_start_is_seen_by_wait_exit(make_daemon):
    d = make_daemon(binary=FAKE, start=False, failpoints=["fake.after_listen"])
    try:
        d.start()
    except harness.DaemonError:
        pass  # it may die before Version answers
    assert d.wait_exit() == -signal.SIGKILL


def test_no_failpoints_leak_in_from_the_environment(monkeypatch):
    monkeypatch.setenv("CRIUS_FAILPOINTS", "inherited")
    with harness.Daemon(binary=FAKE, env={"EXTRA": "1"}) as d:
        env = d.environment()
    assert "CRIUS_FAILPOINTS" not in env and env["EXTRA"] == "1"


def test_start_times_out_and_kills_a_silent_daemon(make_daemon):
    d = make_daemon(binary=[sys.executable, "-c", "import time; time.sleep(60)"], start=False)
    with pytest.raises(harness.DaemonError, match="did not answer Version within 1s"):
        d.start(timeout=1)
    assert not d.running and d.returncode == -signal.SIGKILL


def test_close_ends_the_process_and_removes_the_dirs():
    d = harness.Daemon(binary=FAKE).start()
    pid, workdir = d.pid, d.workdir
    d.close()
    assert not os.path.exists(f"/proc/{pid}/stat") or "Z" in open(f"/proc/{pid}/stat").read()
    assert not workdir.exists()


def test_failed_test_shows_the_daemon_log(pytester, monkeypatch):
    here = os.path.dirname(os.path.abspath(__file__))
    monkeypatch.setenv("PYTHONPATH", here)
    pytester.makeconftest(open(os.path.join(here, "conftest.py")).read())
    pytester.makepyfile(test_inner=textwrap.dedent(f"""
        import pytest

        @pytest.mark.daemon(binary={FAKE!r})
        def test_fails(daemon):
            assert daemon.running
            assert False, "on purpose"
    """))
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*criusd log */criusd.log (tail)*", "*fake-criusd: serving on*"])
