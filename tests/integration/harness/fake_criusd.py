"""A stand-in criusd for the harness's own tests: same CLI, answers Version only.

Failpoints (CRIUS_FAILPOINTS): fake.before_listen, fake.after_listen make it
SIGKILL itself there. A --config whose TOML has a key other than log_level
is a start-up error, as it is for criusd.
"""
import argparse
import os
import signal
import sys
import threading
import tomllib
from concurrent import futures
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import grpc  # noqa: E402
from harness import cri  # noqa: E402


def failpoint(name):
    if name in os.environ.get("CRIUS_FAILPOINTS", "").split(","):
        print(f"fake-criusd: failpoint {name}: SIGKILL", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--config", "--root", "--state", "--listen", "--metrics-address"):
        parser.add_argument(flag)
    args = parser.parse_args()
    if args.config:
        with open(args.config, "rb") as f:
            unknown = set(tomllib.load(f)) - {"log_level"}
        if unknown:
            print(f"fake-criusd: {args.config}: unknown key {sorted(unknown)[0]}",
                  file=sys.stderr, flush=True)
            return 1
    os.makedirs(args.root, exist_ok=True)
    os.makedirs(args.state, exist_ok=True)
    stubs = cri.load()

    class Runtime(stubs.grpc.RuntimeServiceServicer):
        def Version(self, request, context):
            return stubs.pb.VersionResponse(version="0.1.0", runtime_name="fake-crius",
                                            runtime_version="0.0.0", runtime_api_version="v1")

    failpoint("fake.before_listen")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    stubs.grpc.add_RuntimeServiceServicer_to_server(Runtime(), server)
    server.add_insecure_port(args.listen)
    server.start()
    print(f"fake-criusd: serving on {args.listen}", file=sys.stderr, flush=True)
    failpoint("fake.after_listen")
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(0.2):
        pass
    server.stop(0).wait()
    print("fake-criusd: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
