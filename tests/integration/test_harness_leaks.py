"""The leak checker sees what a test leaves behind, and nothing when it leaves nothing.

Each test makes one leak on purpose, checks that it is reported, and removes it
in a finally block, then checks the report is empty again.
"""
import os
import secrets
import subprocess
import textwrap

import pytest

import harness
from harness.leaks import LeakChecker

pytest_plugins = ["pytester"]


def assert_reported(checker, *words):
    found = checker.leaks()
    assert len(found) >= 1, "leak not seen"
    assert all(any(w in line for line in found) for w in words), found
    return found


def test_clean_test_reports_nothing(tmp):
    checker = LeakChecker()
    subprocess.run(["true"], check=True)
    with open(tmp / "f", "w") as f:
        f.write("x")
    harness.Netns().create().delete()
    assert checker.leaks() == []
    checker.check(settle=0)


def test_detects_a_named_netns():
    checker = LeakChecker()
    ns = harness.Netns().create()
    try:
        assert_reported(checker, f"netns: /run/netns/{ns.name}")
        with pytest.raises(harness.LeakError, match=ns.name):
            checker.check(settle=0.2)
    finally:
        ns.delete()
    checker.check()


def test_detects_a_tmpfs_mount(tmp):
    checker = LeakChecker()
    subprocess.run(["mount", "-t", "tmpfs", "crius-leak-test", tmp], check=True)
    try:
        assert assert_reported(checker, f"mount: {tmp} (tmpfs from crius-leak-test)")
        with pytest.raises(harness.HarnessError, match="still mounted"):
            harness.util.remove_tree(tmp)
    finally:
        subprocess.run(["umount", tmp], check=True)
    checker.check()


def test_detects_a_process_left_running():
    checker = LeakChecker()
    proc = subprocess.Popen([harness.fixture_binary("sleeper")], stdout=subprocess.DEVNULL)
    try:
        assert_reported(checker, f"process: pid {proc.pid} ", "sleeper")
        checker.ignore_pid(proc.pid)
        assert checker.leaks() == []
    finally:
        proc.kill()
        proc.wait()
    checker.check()


def test_detects_an_orphan_that_carries_the_session(tmp):
    # Daemonized (reparented away from us): found by CRIUS_HARNESS_SESSION.
    checker = LeakChecker()
    pidfile = tmp / "pid"
    subprocess.run(["setsid", "-f", "sh", "-c", f'echo $$ > {pidfile}; exec sleep 60'],
                   check=True)
    pid = int(harness.util.wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 5))
    try:
        assert_reported(checker, f"process: pid {pid} ")
    finally:
        os.kill(pid, 9)
    checker.check()


def test_a_stranger_process_counts_only_when_strict(tmp):
    # Reparented away from us, without our session variable: not ours (another
    # test or a developer on the machine), unless the checker is strict.
    checker, strict = LeakChecker(), LeakChecker(strict=True)
    pidfile = tmp / "pid"
    subprocess.run(["setsid", "-f", "env", "-i", "sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"],
                   check=True)
    pid = int(harness.util.wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 5))
    try:
        assert checker.leaks() == []
        assert_reported(strict, f"process: pid {pid} ")
    finally:
        os.kill(pid, 9)
    harness.util.wait_for(lambda: not any(f"pid {pid} " in x for x in strict.leaks()), 5)


def test_detects_a_stranger_that_names_an_owned_path(tmp):
    # A monitor that criusd started with an empty environment, reparented to
    # init: found because its command line names the daemon's workdir.
    checker = LeakChecker()
    harness.leaks.own_path(tmp)
    subprocess.run(["setsid", "-f", "env", "-i", harness.fixture_binary("sleeper"),
                    f"{tmp}/pod"], check=True, stdout=subprocess.DEVNULL)
    found = harness.util.wait_for(lambda: [x for x in checker.leaks() if f"{tmp}/pod" in x], 5)
    pid = int(found[0].split()[2])
    try:
        assert found[0].startswith(f"process: pid {pid} ")
    finally:
        os.kill(pid, 9)
    checker.check()


def test_detects_a_netns_held_only_by_a_process():
    checker = LeakChecker()
    proc = subprocess.Popen(["unshare", "--net", harness.fixture_binary("sleeper")],
                            stdout=subprocess.PIPE)
    try:
        proc.stdout.readline()  # the sleeper runs: unshare has made the netns
        assert_reported(checker, f"held by pids [{proc.pid}]", f"process: pid {proc.pid} ")
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    checker.check()


def test_detects_a_cgroup():
    checker = LeakChecker()
    path = f"/sys/fs/cgroup/pids/crius-leak-{secrets.token_hex(3)}"
    if not os.path.isdir("/sys/fs/cgroup/pids"):
        path = f"/sys/fs/cgroup/crius-leak-{secrets.token_hex(3)}"
    os.mkdir(path)
    try:
        assert_reported(checker, f"cgroup: {path}")
    finally:
        os.rmdir(path)
    checker.check()


def test_detects_veth_links():
    checker = LeakChecker()
    name = f"crl{secrets.token_hex(3)}"
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"],
                   check=True)
    try:
        assert_reported(checker, f"link: {name}", f"link: {name}p")
    finally:
        subprocess.run(["ip", "link", "del", name], check=True)
    checker.check()


def test_detects_an_open_fd(tmp):
    checker = LeakChecker()
    f = open(tmp / "kept-open", "w")
    try:
        assert_reported(checker, f"fd: {f.fileno()} -> {tmp}/kept-open")
    finally:
        f.close()
    checker.check()


def test_ignores_the_session_registry(registry):
    checker = LeakChecker()
    with harness.Registry(long_lived=True) as extra:
        assert checker.leaks() == []
        assert extra.pid not in [p for p in checker.before.procs]
    checker.check()


def test_leak_check_fixture_fails_the_test(pytester, monkeypatch):
    # A child pytest with our conftest: the leaking test must error at teardown.
    here = os.path.dirname(os.path.abspath(__file__))
    monkeypatch.setenv("PYTHONPATH", here)
    pytester.makeconftest(open(os.path.join(here, "conftest.py")).read())
    pytester.makepyfile(test_leaky=textwrap.dedent("""
        import subprocess
        import harness
        KEEP = []

        def test_leaks_a_netns_and_an_fd(leak_check):
            ns = harness.Netns().create()
            open("leaked-netns", "w").write(ns.name)
            KEEP.append(open("/proc/self/status"))

        def test_clean(leak_check):
            pass

        def test_ignored_pid(leak_check):
            p = subprocess.Popen(["sleep", "60"])
            open("ignored-pid", "w").write(str(p.pid))
            leak_check.ignore_pid(p.pid)
    """))
    try:
        result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    finally:
        leaked = pytester.path / "leaked-netns"
        if leaked.exists():
            subprocess.run(["ip", "netns", "delete", leaked.read_text()], check=True)
        ignored = pytester.path / "ignored-pid"
        if ignored.exists():
            os.kill(int(ignored.read_text()), 9)  # a child of the finished child pytest
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*left behind:*", "*netns: /run/netns/crius-test-*",
                                 "*fd: * -> /proc/*/status*"])
