#!/usr/bin/env python3
"""One server offered more than it can serve: admission control off and on.

    python3 bench/overload.py              # 4 s per point, 9 runs: about a minute
    python3 bench/overload.py --seconds 2  # a smoke run

With 4 busy loops (the default) the server serves about 13,000 calls/s
here, and 4x that is what one client on one CPU can still send; with fewer,
the client, not the server, is what saturates at 2x and 4x.

The server (release build) is held to a known capacity by sharing its CPU:
it is pinned with taskset to the first CPU, beside --busy loops pinned
there too (each takes its share of that CPU from the kernel's scheduler);
the client runs pinned to the second CPU. The capacity is measured first:
a closed-model run (50 workers) against that server, with admission off.
Then, each on a new server, `client bench --rate` offers 0.8x, 1x, 2x and
4x that capacity (open model, 1 s deadline, retries and hedging off), with
`--adaptive-concurrency` off and on.

Per point: goodput (calls that ended OK, per second of the run), p50 and
p99 of the calls that ended OK (from when each was due), the calls shed by
the adaptive limit (the server's search_server_adaptive_shed_total; the
client saw them as UNAVAILABLE), every other failure by code,
and the connections the server closed as abusive (its warnings: h2's
"remotely-reset pending-accept streams" guard and the server's own reset
budget), read from its log at warn level.

Envoy's adaptive concurrency filter in front of the same server is another
row of the same table, left empty here (ENVOY_ROWS).

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
from cargo_target import built  # noqa: E402

RELEASE = built("release")
DEADLINE = "1s"
LOADS = [0.8, 1.0, 2.0, 4.0]
# Rows another setup fills: Envoy's adaptive concurrency filter in front.
ENVOY_ROWS = ["envoy adaptive concurrency (defaults)", "envoy adaptive concurrency (fixed min RTT)"]
NO_RETRIES = ["--retry-max-attempts", "1", "--hedging-delay", "off"]


def build():
    print("building the release binaries...", file=sys.stderr)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bins"], cwd=ROOT, check=True)


class Server:
    """The release server pinned to `cpu`, its warnings in a file."""

    def __init__(self, cpu, flags):
        self.log = tempfile.TemporaryFile(mode="w+")
        env = {**os.environ, "RUST_LOG": "warn"}
        self.metrics = f"127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen(["taskset", "-c", str(cpu), RELEASE / "server", "--listen", "127.0.0.1:0",
                                      "--grace", "1s", "--metrics-listen", self.metrics, *flags],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError("the server did not start")

    def scrape(self, name):
        """One sample of the server's /metrics, 0 when absent."""
        with urllib.request.urlopen(f"http://{self.metrics}/metrics", timeout=10) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return 0.0

    def stop(self):
        """Stops the server; its warnings: (h2's reset guard, the server's own GOAWAYs)."""
        self.proc.kill()
        self.proc.wait()
        self.log.seek(0)
        text = self.log.read()
        return text.count("pending-accept streams reached limit"), text.count("closing an abusive HTTP/2 connection")


def free_port():
    """A port free on 127.0.0.1 now (the metrics'; the server binds it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def busy_loops(cpu, n):
    """`n` processes spinning on `cpu`."""
    return [subprocess.Popen(["taskset", "-c", str(cpu), sys.executable, "-c", "while True: pass"])
            for _ in range(n)]


def bench(cpu, target, args):
    command = ["taskset", "-c", str(cpu), RELEASE / "client", "-t", target, "--timeout", DEADLINE, *NO_RETRIES,
               "--json", "bench", *args]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"client bench failed ({done.returncode}): {done.stderr.strip()}")
    return json.loads(done.stdout)


def capacity(cpus, seconds):
    server = Server(cpus[0], [])
    try:
        report = bench(cpus[1], server.address, ["-c", "50", "-n", "10000000", "-z", f"{seconds}s"])
    finally:
        server.stop()
    return report["ok"] / report["elapsed_seconds"], report["ok_latency_us"]


def point(cpus, rate, seconds, flags):
    server = Server(cpus[0], flags)
    try:
        # At most as many in flight as a deadline's worth of calls: the
        # client never holds back a call the deadline leaves room for.
        in_flight = max(100, int(rate * 1.2))
        report = bench(cpus[1], server.address, ["--rate", str(int(rate)), "-c", str(in_flight),
                                                 "-n", str(int(rate * seconds)), "-z", f"{seconds}s"])
        shed = int(server.scrape("search_server_adaptive_shed_total"))
    finally:
        guard, own = server.stop()
    return report, shed, guard, own


def others(report, shed_calls):
    codes = {code: n for code, n in report["status_codes"].items() if code != "OK"}
    if shed_calls:
        codes["UNAVAILABLE"] = codes.get("UNAVAILABLE", 0) - shed_calls
    return ", ".join(f"{code} {n}" for code, n in sorted(codes.items()) if n) or "0"


def ms(us):
    return f"{us / 1000:.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=4, help="length of each point (default 4)")
    parser.add_argument("--busy", type=int, default=4, help="busy loops sharing the server's CPU (default 4)")
    parser.add_argument("--no-build", action="store_true", help="use the release binaries as they are")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        print("overload: needs two CPUs (the server's and the client's)", file=sys.stderr)
        return 1
    if not args.no_build:
        build()
    cpus = sorted(os.sched_getaffinity(0))[:2]
    loops = busy_loops(cpus[0], args.busy)
    try:
        cap, unloaded = capacity(cpus, args.seconds)
        print(f"Capacity: {cap:.0f} calls/s (closed model, 50 workers, admission off; p50 {ms(unloaded['p50'])} ms, "
              f"p99 {ms(unloaded['p99'])} ms), the server on CPU {cpus[0]} beside {args.busy} busy loop(s), the "
              f"client on CPU {cpus[1]}. Open model, {DEADLINE} deadline, retries and hedging off, {args.seconds} s "
              f"per point, a new server each. Latency in ms, of the calls that ended OK, from when each was due; "
              f"closed as abusive: h2's pending-accept reset guard / the server's own reset budget.\n")
        print("| admission | load | offered/s | goodput/s | goodput / capacity | p50 | p99 | shed | other failures "
              "| closed as abusive |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
        for name, flags in [("off", []), ("adaptive", ["--adaptive-concurrency"])]:
            for load in LOADS:
                report, n, guard, own = point(cpus, cap * load, args.seconds, flags)
                goodput = report["ok"] / report["elapsed_seconds"]
                ok = report["ok_latency_us"]
                print(f"| {name} | {load}x | {cap * load:.0f} | {goodput:.0f} | {goodput / cap:.0%} | {ms(ok['p50'])} "
                      f"| {ms(ok['p99'])} | {n} | {others(report, n)} | {guard} / {own} |", flush=True)
        for name in ENVOY_ROWS:
            print(f"| {name} | (run with Envoy in front) | | | | | | | | |")
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
