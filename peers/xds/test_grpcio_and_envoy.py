"""grpcio (the reference xDS client) and Envoy, fed by one management server
(control_plane.py) over ADS, in front of three replicas of our server.

Replica 0 is cluster main, replica 1 (or 2) cluster canary; listener
`search` splits calls between them by weight (RDS). grpcio calls
xds:///search; a plain grpcio client calls Envoy's listener, which the same
management server gave it. Every run is bounded in calls and seconds, on
127.0.0.1 only; the figures are printed (pytest -s).

    bash peers/xds/venv.sh && cargo build --bin server
    target/xds-venv/bin/python -m pytest peers/xds -s
"""

from conftest import ENVOY_NODE, Traffic, bootstrap, grpcio, report, scenario

CALLS = 3000


def shares(run: dict, addresses: list[str]) -> list[float]:
    total = sum(run["replicas"].values())
    return [run["replicas"][a] / max(total, 1) for a in addresses]


def test_weighted_clusters_split_80_20_in_grpcio_and_in_envoy(fleet, tmp_path):
    fleet.settle(fleet.base)
    node = bootstrap(tmp_path, fleet.control_plane, "grpcio-weighted")
    runs = {
        "grpcio (xds:///search)": report(grpcio("xds:///search", f"--calls={CALLS}", *fleet.replica_flags(),
                                                bootstrap_file=node)),
        "Envoy (ADS)": report(grpcio(f"127.0.0.1:{fleet.envoy_port}", f"--calls={CALLS}", *fleet.replica_flags())),
    }
    for name, run in runs.items():
        main, canary, idle = shares(run, fleet.addresses)
        print(f"weighted clusters 80/20, {name}: {run['calls']} calls {run['codes']}, shares main {main:.1%} "
              f"canary {canary:.1%} (other replica {idle:.1%}), {run['elapsed_s']} s")
        assert run["codes"] == {"OK": CALLS}, run
        assert sum(run["replicas"].values()) == CALLS, run
        assert abs(main - 0.80) <= 0.03 and abs(canary - 0.20) <= 0.03, (name, run)
        assert idle == 0, (name, run)


def test_an_invalid_update_is_nacked_by_both_and_a_valid_one_then_acked(fleet, tmp_path):
    control = fleet.control_plane
    fleet.settle(fleet.base)
    node = "grpcio-nack"
    with Traffic(fleet, tmp_path, node) as traffic:
        invalid = control.apply(scenario(fleet.addresses, fleet.envoy_port, {"main": 80, "canary": 20},
                                         invalid="ring_hash_sizes"))
        refused = {who: control.answers(who, invalid) for who in (node, ENVOY_NODE)}
        before = fleet.counts()
        # Valid again, and the canary now the third replica.
        valid = control.apply(scenario(fleet.addresses, fleet.envoy_port, {"main": 80, "canary": 20}, canary=2))
        taken = {who: control.answers(who, valid) for who in (node, ENVOY_NODE)}
        running = traffic.running()
        runs = traffic.reports()
    moved = fleet.counts()[2] - before[2]
    for who in (node, ENVOY_NODE):
        print(f"invalid cluster (version {invalid}), {who}: " + ", ".join(
            f"{kind} {answer['event']}: {answer.get('error', '')!r}" for kind, answer in refused[who].items()))
        print(f"valid update (version {valid}), {who}: " + ", ".join(
            f"{kind} {answer['event']}" for kind, answer in taken[who].items()))
    for name, run in runs.items():
        print(f"calls through both updates, {name}: {run['calls']} {run['codes']}")
    print(f"calls to the new canary (the third replica) after the valid update: {moved}")
    for who in (node, ENVOY_NODE):
        assert refused[who]["cds"]["event"] == "nack", refused[who]
        assert "maximum_ring_size" in refused[who]["cds"]["error"], refused[who]
        assert {answer["event"] for answer in taken[who].values()} == {"ack"}, taken[who]
        assert "cds" in taken[who] and "eds" in taken[who], taken[who]
    assert running, "the traffic ended before the valid update was taken"
    for name, run in runs.items():
        assert run["codes"] == {"OK": Traffic.CALLS}, (name, run)
    assert moved > 0, "nobody called the canary of the valid update"


def test_the_management_server_killed_and_restarted_mid_traffic_fails_no_call(fleet, tmp_path):
    control = fleet.control_plane
    fleet.settle(fleet.base)
    node = "grpcio-restart"
    with Traffic(fleet, tmp_path, node) as traffic:
        control.kill()
        seen = len(control.records())
        control.start()
        # Both come back on their own and subscribe again; the restarted server then drives them.
        back = control.wait_for("grpcio and Envoy back on the restarted server", lambda records: (
            {r["node"] for r in records[seen:] if r["event"] == "ack" and r["type"] == "eds"} >= {node, ENVOY_NODE}
            and records[seen:]))
        reconnected = {who: min(r["time"] for r in back if r["event"] == "connect" and r["node"] == who)
                       for who in (node, ENVOY_NODE)}
        version = control.apply(scenario(fleet.addresses, fleet.envoy_port, {"main": 80, "canary": 20}, canary=2))
        taken = {who: control.answers(who, version) for who in (node, ENVOY_NODE)}
        running = traffic.running()
        runs = traffic.reports()
    restarted = back[0]["time"]
    for who in (node, ENVOY_NODE):
        print(f"management server restarted: {who} subscribed again {reconnected[who] - restarted:.2f} s after it "
              f"started, took the next version: " + ", ".join(f"{k} {a['event']}" for k, a in taken[who].items()))
    for name, run in runs.items():
        print(f"calls across the kill and restart, {name}: {run['calls']} {run['codes']}")
    assert running, "the traffic ended before the restarted server's update was taken"
    for who in (node, ENVOY_NODE):
        assert taken[who]["eds"]["event"] == "ack", taken[who]
    for name, run in runs.items():
        assert run["codes"] == {"OK": Traffic.CALLS}, (name, run)
