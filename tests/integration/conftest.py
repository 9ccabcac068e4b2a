"""pytest fixtures over the harness (tests/integration/harness).

daemon        a started criusd (function scope); @pytest.mark.daemon(config=..., args=...,
              env=..., failpoints=[...]) configures it. Skipped if criusd is not built.
make_daemon   factory: make_daemon(start=False, config=...) for several or unstarted daemons
registry      docker-registry on 127.0.0.1 for the whole session
busybox       busybox_image() pushed there once per session: a harness.oci.Pushed
              (.ref "127.0.0.1:PORT/busybox:latest", .digest, .ref_by_digest)
sleeper       sleeper_image() pushed likewise ("127.0.0.1:PORT/sleeper:latest")
netns         a fresh named netns (crius-test-XXXX), deleted afterwards
leak_check    fails the test if it left mounts, cgroups, netns, links, processes or fds;
              leak_check.ignore_pid(pid) for what should outlive it. Per module:
              pytestmark = pytest.mark.usefixtures("leak_check")
tmp           a fresh short dir under /tmp, removed afterwards

Under CTest, PATH holds only the programs of build.sh's packages (tests/path_guard.py);
a test that ran any other program fails, naming it and its package, even when it
ignored the program's exit status.

On failure, the tail of every criusd log the test used is added to the report.
"""
import os
import tempfile
from pathlib import Path

import pytest

import harness
from harness.util import remove_tree, short_tmpdir


def pytest_configure(config):
    config.addinivalue_line("markers", "daemon(**kwargs): keyword arguments for the daemon "
                                       "fixture's harness.Daemon")
    fd, path = tempfile.mkstemp(prefix="crius-path-guard.", suffix=".log")
    os.close(fd)
    os.environ["CRIUS_PATH_GUARD_LOG"] = config._crius_guard_log = path
    config._crius_guard_seen = 0


def _path_guard_news(config):
    """What the PATH guard logged since the last look."""
    try:
        with open(config._crius_guard_log, "rb") as f:
            f.seek(config._crius_guard_seen)
            news = f.read()
    except OSError:
        return ""
    config._crius_guard_seen += len(news)
    return news.decode(errors="replace").strip()


@pytest.fixture(autouse=True)
def path_guard(request):
    yield
    news = _path_guard_news(request.config)
    if news:
        pytest.fail(f"{request.node.nodeid} ran programs a fresh machine lacks:\n{news}", pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    news = _path_guard_news(session.config)  # from session-wide fixtures
    if news:
        print(f"\nprograms a fresh machine lacks were run:\n{news}")
        session.exitstatus = 1
    try:
        os.unlink(session.config._crius_guard_log)
    except OSError:
        pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for d in getattr(item, "_crius_daemons", []):
            report.sections.append((f"criusd log {d.log_path} (tail)", d.log_tail(60)))


def _leak_check_first(request):
    # A leak check must snapshot before, and check after, every other fixture.
    if "leak_check" in request.fixturenames:
        request.getfixturevalue("leak_check")


@pytest.fixture
def leak_check(request):
    checker = harness.LeakChecker()
    yield checker
    try:
        checker.check()
        return
    except harness.LeakError as e:
        message = f"{request.node.nodeid}: {e}"
    pytest.fail(message, pytrace=False)


@pytest.fixture
def tmp(request):
    _leak_check_first(request)
    path = short_tmpdir("crius-t-")
    yield path
    remove_tree(path)


@pytest.fixture
def make_daemon(request):
    _leak_check_first(request)
    made = []
    request.node._crius_daemons = made

    def make(start=True, **kwargs):
        binary = kwargs.get("binary") or harness.criusd_path()
        if binary is None or (not isinstance(binary, list) and not Path(binary).exists()):
            pytest.skip(f"criusd not built ({binary or 'set CRIUS_CRIUSD or CRIUS_BUILD_DIR'})")
        d = harness.Daemon(**kwargs)
        made.append(d)
        return d.start() if start else d

    yield make
    errors = []
    for d in made:
        try:
            d.close()
        except Exception as e:  # close every daemon even if one fails
            errors.append(e)
    if errors:
        raise errors[0]


@pytest.fixture
def daemon(request, make_daemon):
    marker = request.node.get_closest_marker("daemon")
    return make_daemon(**(marker.kwargs if marker else {}))


@pytest.fixture(scope="session")
def registry():
    with harness.Registry(long_lived=True) as reg:
        yield reg


@pytest.fixture(scope="session")
def busybox(registry):
    return harness.push(registry, harness.busybox_image(), "busybox")


@pytest.fixture(scope="session")
def sleeper(registry):
    return harness.push(registry, harness.sleeper_image(), "sleeper")


@pytest.fixture
def netns(request):
    _leak_check_first(request)
    with harness.Netns() as ns:
        yield ns
