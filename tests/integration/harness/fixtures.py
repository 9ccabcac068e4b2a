"""Static test programs compiled from tests/fixtures/*.c at test time.

    path = fixture_binary("sleeper")     # gcc -static -O2, cached by source hash

Binaries go to $CRIUS_BUILD_DIR/test-fixtures/ (kept across runs), else to a
temp dir removed when the process exits; never into the source tree.
"""
import atexit
import hashlib
import os
import subprocess
import threading
from pathlib import Path

from .util import FIXTURES_DIR, HarnessError, build_dir, remove_tree, short_tmpdir

_lock = threading.Lock()
_tmp_cache = None


def _cache_dir():
    global _tmp_cache
    if build_dir():
        d = build_dir() / "test-fixtures"
        d.mkdir(parents=True, exist_ok=True)
        return d
    if _tmp_cache is None:
        _tmp_cache = short_tmpdir("crius-fixtures-")
        atexit.register(remove_tree, _tmp_cache)
    return _tmp_cache


def fixture_binary(name):
    """Path of tests/fixtures/<name>.c compiled statically (built once per source)."""
    source = FIXTURES_DIR / f"{name}.c"
    if not source.exists():
        raise HarnessError(f"no fixture source {source}")
    key = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    with _lock:
        out = Path(_cache_dir()) / f"{name}-{key}"
        if not out.exists():
            partial = out.with_name(f"{out.name}.{os.getpid()}.tmp")
            run = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(partial),
                                  str(source)], capture_output=True, text=True)
            if run.returncode != 0:
                raise HarnessError(f"compile {source}: {run.stderr.strip()}")
            os.replace(partial, out)  # atomic: parallel test processes may race here
    return out
