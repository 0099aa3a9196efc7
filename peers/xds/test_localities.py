"""Localities and priorities from EDS, in grpcio and in Envoy fed by the same
management server: calls split by locality weight, and failover to the next
priority when every endpoint of the first is reported unhealthy, then back.

    target/xds-venv/bin/python -m pytest peers/xds/test_localities.py -s
"""

import pytest

from conftest import ENVOY_NODE, bootstrap, grpcio, report, wait_for_progress

CALLS = 2000


def one_cluster(fleet, localities: list[dict]) -> dict:
    """Listener `search` (inline routes) sending every call to cluster main."""
    return {
        "listeners": [{"name": "search", "port": fleet.envoy_port, "routes": [{"cluster": "main"}]}],
        "clusters": [{"name": "main", "localities": localities}],
    }


def failover(fleet, health: str) -> dict:
    """Priority 0: the first replica, in `health`; priority 1: the second."""
    return one_cluster(fleet, [
        {"zone": "a", "priority": 0, "endpoints": [{"address": fleet.addresses[0], "health": health}]},
        {"zone": "b", "priority": 1, "endpoints": [{"address": fleet.addresses[1]}]}])


def client(fleet, tmp_path, name: str, *flags: str):
    """A grpcio run over xDS (`name` grpcio) or through Envoy, and the node that takes updates."""
    if name == "grpcio":
        node = f"grpcio-{tmp_path.name[-12:]}"
        return grpcio("xds:///search", *flags, bootstrap_file=bootstrap(tmp_path, fleet.control_plane, node)), node
    return grpcio(f"127.0.0.1:{fleet.envoy_port}", *flags), ENVOY_NODE


@pytest.mark.parametrize("name", ["grpcio", "Envoy"])
def test_locality_weights_1_2_1_split_the_calls_1_2_1(fleet, tmp_path, name):
    fleet.settle(one_cluster(fleet, [
        {"zone": zone, "weight": weight, "endpoints": [{"address": address}]}
        for zone, weight, address in zip("abc", (1, 2, 1), fleet.addresses)]))
    process, _ = client(fleet, tmp_path, name, f"--calls={CALLS}", *fleet.replica_flags())
    run = report(process)
    shares = [run["replicas"][a] / CALLS for a in fleet.addresses]
    fleet.settle(fleet.base)
    print(f"locality weights 1:2:1, {name}: {run['calls']} calls {run['codes']}, shares "
          + " / ".join(f"{s:.1%}" for s in shares))
    assert run["codes"] == {"OK": CALLS}, run
    for share, expected in zip(shares, (0.25, 0.50, 0.25)):
        assert abs(share - expected) <= 0.03, (name, shares)


@pytest.mark.parametrize("name", ["grpcio", "Envoy"])
def test_priority_0_reported_unhealthy_fails_over_to_priority_1_and_back(fleet, tmp_path, name):
    control = fleet.control_plane
    fleet.settle(failover(fleet, "HEALTHY"))
    process, node = client(fleet, tmp_path, name, "--calls=1500", "--rate=100", "--seconds=30", "--progress=10")
    went = []
    try:
        done = wait_for_progress(process, 100)
        for health in ("UNHEALTHY", "HEALTHY"):
            control.answers(node, control.apply(failover(fleet, health)))
            # Where the calls went from the client's ACK on, for 100 calls or more.
            before = fleet.counts()
            done = wait_for_progress(process, done + 150)
            went.append([after - b for after, b in zip(fleet.counts(), before)])
        running = process.poll() is None
        process.terminate()
        run = report(process)
    finally:
        process.kill()
        process.wait()
    fleet.settle(fleet.base)
    print(f"priority failover, {name}: priority 0 unhealthy: calls per replica {went[0]}; healthy again: "
          f"{went[1]}; {run['calls']} calls {run['codes']}")
    assert running, "the run ended before the last phase"
    assert run["codes"] == {"OK": run["calls"]}, run
    for phase, replica in zip(went, (1, 0)):
        assert phase[replica] >= 0.95 * sum(phase) and sum(phase) >= 100, (name, went)
