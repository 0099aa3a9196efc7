"""grpcio (the reference xDS client) and Envoy, fed by one management server
(control_plane.py) over ADS, in front of three replicas of our server.

Replica 0 is cluster main, replica 1 (or 2) cluster canary; listener
`search` splits calls between them by weight (RDS). grpcio calls
xds:///search; a plain grpcio client calls Envoy's listener, which the same
management server gave it. A last test serves every part of the scenario
schema at once: both ACK all of it, and route by header, path and regular
expression, ring hash and weighted round robin alike. Every run is bounded in
calls and seconds, on 127.0.0.1 only; the figures are printed (pytest -s).

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


def every_feature(fleet) -> dict:
    """A scenario with every part of resources.py's schema: header, exact path and
    regular expression matches, a retry policy, timeouts, a hash policy; round robin
    over weighted localities and priorities with an endpoint draining, ring hash,
    weighted round robin, outlier detection, a max_requests circuit breaker."""
    r = fleet.addresses
    retry = {"retry_on": "unavailable", "num_retries": 2,
             "retry_back_off": {"base_interval": "0.01s", "max_interval": "0.1s"}}
    routes = [
        {"match": {"prefix": "/", "headers": [{"name": "x-canary", "string_match": {"exact": "1"}}]},
         "cluster": "canary", "retry_policy": retry, "timeout": "5s", "max_stream_duration": "5s"},
        {"match": {"path": "/search.v1.SearchService/Search", "headers": [{"name": "x-user", "present_match": True}]},
         "cluster": "hashed", "hash_policy": [{"header": {"header_name": "x-user"}}]},
        {"match": {"safe_regex": {"regex": "/search[.]v1[.]SearchService/.*"},
                   "headers": [{"name": "x-weighted", "string_match": {"exact": "1"}}]},
         "cluster": "weighted"},
        {"match": {"prefix": "/"}, "cluster": "main"},
    ]

    def at(*addresses, health="HEALTHY"):
        return [{"address": a, "health": health} for a in addresses]
    return {
        "listeners": [{"name": "search", "port": fleet.envoy_port, "rds": "search-routes", "routes": routes}],
        "clusters": [
            {"name": "main", "lb_policy": "round_robin", "max_requests": 1000,
             "outlier_detection": {"consecutive_5xx": 5, "interval": "1s", "base_ejection_time": "1s",
                                   "max_ejection_percent": 50},
             "localities": [{"zone": "a", "weight": 1, "endpoints": at(r[0])},
                            {"zone": "b", "weight": 2, "endpoints": at(r[1], health="DRAINING")},
                            {"zone": "c", "priority": 1, "endpoints": at(r[2])}]},
            {"name": "canary", "localities": [{"zone": "a", "endpoints": at(r[1])}]},
            {"name": "hashed", "lb_policy": "ring_hash", "ring_hash": {"minimum_ring_size": 64,
                                                                        "maximum_ring_size": 1024},
             "localities": [{"zone": "a", "endpoints": at(r[0], r[1], r[2])}]},
            {"name": "weighted", "lb_policy": "weighted_round_robin",
             "localities": [{"zone": "a", "endpoints": at(r[1], r[2])}]},
        ],
    }


def test_every_part_of_the_schema_is_acked_by_both_and_routes_alike(fleet, tmp_path):
    control = fleet.control_plane
    seen = len(control.records())
    fleet.settle(every_feature(fleet))
    node = bootstrap(tmp_path, control, "grpcio-features")
    targets = {"grpcio": ("xds:///search", node), "Envoy": (f"127.0.0.1:{fleet.envoy_port}", None)}
    headers = {"none": [], "x-canary": ["--metadata=x-canary=1"], "x-user": ["--metadata=x-user=ada"],
               "x-weighted": ["--metadata=x-weighted=1"]}
    runs = {}
    for name, (target, node_file) in targets.items():
        for header, flags in headers.items():
            runs[name, header] = report(grpcio(target, "--calls=60", *flags, *fleet.replica_flags(),
                                               bootstrap_file=node_file))
    answers = [r for r in control.records()[seen:] if r["event"] in ("ack", "nack")
               and r["node"] in ("grpcio-features", ENVOY_NODE)]
    fleet.settle(fleet.base)
    for (name, header), run in runs.items():
        print(f"every feature, {name}, header {header}: {run['codes']}, calls per replica "
              f"{[run['replicas'][a] for a in fleet.addresses]}")
    assert [a for a in answers if a["event"] == "nack"] == [], "refused: " + str(answers)
    # grpcio subscribed to all four; Envoy had the listener already, and took the rest.
    acked = {(a["node"], a["type"]) for a in answers}
    assert acked >= {("grpcio-features", t) for t in ("lds", "rds", "cds", "eds")}, answers
    assert acked >= {(ENVOY_NODE, t) for t in ("rds", "cds", "eds")}, answers
    for (name, header), run in runs.items():
        assert run["codes"] == {"OK": 60}, (name, header, run)
    for name in targets:
        # The header route to the canary, and a ring hash on one user: one replica each.
        assert runs[name, "x-canary"]["replicas"][fleet.addresses[1]] == 60, runs[name, "x-canary"]
        assert sorted(runs[name, "x-user"]["replicas"].values()) == [0, 0, 60], runs[name, "x-user"]
        # Weighted round robin over the second and third replicas only.
        assert runs[name, "x-weighted"]["replicas"][fleet.addresses[0]] == 0, runs[name, "x-weighted"]
