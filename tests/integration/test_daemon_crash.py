"""criusd killed with SIGKILL at a crash point restarts into a consistent view:
what an RPC reported done is kept, what it did not finish is not half-kept."""
import json

import grpc
import pytest

from harness.daemon import Daemon

pytestmark = pytest.mark.usefixtures("leak_check")


def pod_cidr(d):
    s = d.runtime.Status(d.pb.StatusRequest(verbose=True))
    return json.loads(s.info["runtime"])["podCIDR"]


def update_cidr(d, cidr):
    pb = d.pb
    return d.runtime.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(
        runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr=cidr))),
        timeout=10)


@pytest.mark.parametrize("point,kept", [
    ("runtime_config_update.before_store", False),
    ("runtime_config_update.after_store", True),
])
def test_crash_during_update_runtime_config(point, kept):
    with Daemon(failpoints=[point]) as d:
        d.start()
        with pytest.raises(grpc.RpcError) as e:
            update_cidr(d, "10.99.0.0/16")
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert d.wait_exit() == -9, "the crash point kills criusd with SIGKILL"
        assert f"failpoint {point} reached" in d.log
        d.failpoints = []
        d.start()
        assert pod_cidr(d) == ("10.99.0.0/16" if kept else "")
        # And the restarted daemon takes the change normally.
        update_cidr(d, "10.98.0.0/16")
        assert pod_cidr(d) == "10.98.0.0/16"
        d.stop()


def test_nth_hit_of_a_crash_point():
    with Daemon(failpoints=["runtime_config_update.after_store:2"]) as d:
        d.start()
        update_cidr(d, "10.1.0.0/16")
        with pytest.raises(grpc.RpcError):
            update_cidr(d, "10.2.0.0/16")
        assert d.wait_exit() == -9
        d.failpoints = []
        d.start()
        assert pod_cidr(d) == "10.2.0.0/16"
        d.stop()
