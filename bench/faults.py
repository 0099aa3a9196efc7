#!/usr/bin/env python3
"""Gray failures against the client's defenses: what one bad replica of three
costs, with each mechanism on or off, in one run.

    python3 bench/faults.py            # 20 s per run, 13 runs: about 5 minutes
    python3 bench/faults.py --quick    # 6 s per run: a smoke run (CI)

Three release servers on 127.0.0.1, and `client bench` over an ipv4: target
with the client's default policy (`--lb` to name one: pick_first, or
round_robin), a 1 s deadline, 500 calls/s (open model, at most 400 in
flight) for 20 s. From 5 s to 15 s the first replica (the one pick_first
sends every call to) is:
  frozen      SIGSTOP, then SIGCONT: the kernel still accepts and ACKs;
  blackhole   every packet to and from its port dropped by iptables (Debian's
              iptables, installed if missing; skipped, and said, when
              netfilter cannot be used here);
  loss        30% of those packets dropped (iptables' statistic match);
  two-frozen  the first two replicas frozen;
  killed      SIGKILL, then a new server on its port;
  slow        behind examples/slow_proxy.rs, which adds 300 ms to everything
              it sends back.
Each fault runs with four clients:
  today          no keepalive, health checking, outlier detection or hedging;
  keepalive+od   keepalive and outlier detection only;
  hedging        hedging only;
  defaults       the client as it ships.
Then the healthy fleet, closed model at full speed, today against defaults,
alternated seven times: the attempts and the throughput the defenses cost
when nothing is wrong.

Figures, not verdicts: nothing here fails on a number (only on a run that does
not happen). Talks to 127.0.0.1 only; every run is bounded in calls and time.
"""

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from cargo_target import DEBUG_BUILD, RELEASE_BUILD, built  # noqa: E402

RELEASE = built("release")
DEBUG = built("debug")
RATE = 500
IN_FLIGHT = 400
DEADLINE = "1s"
SLOW = "300ms"

ROWS = {
    "today": ["--keepalive-time", "off", "--no-health-check", "--no-outlier-detection", "--hedging-delay", "off"],
    "keepalive+od": ["--no-health-check", "--hedging-delay", "off"],
    "hedging": ["--keepalive-time", "off", "--no-health-check", "--no-outlier-detection"],
    "defaults": [],
}


def build():
    print("building the release binaries, and the debug examples...", file=sys.stderr)
    subprocess.run(RELEASE_BUILD, cwd=ROOT, check=True)
    subprocess.run(DEBUG_BUILD, cwd=ROOT, check=True)


class Process:
    """A child process that prints its address on its first line."""

    def __init__(self, command):
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError(f"{command[0]} did not start")

    def signal(self, number):
        self.proc.send_signal(number)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait()


def replicas(n=3):
    return [Process([RELEASE / "server", "--listen", "127.0.0.1:0", "--grace", "1s"]) for _ in range(n)]


# The start of every rule's tag: search-faults-PID-PORT.
TAG = "search-faults-"


def iptables(action, port, loss=None):
    """Adds (-I) or removes (-D) the rules dropping every packet to and from
    `port`, or `loss` (a share, 0.3) of them."""
    share = ["-m", "statistic", "--mode", "random", "--probability", f"{loss:.2f}"] if loss else []
    rules = []
    for way in ("--dport", "--sport"):
        rules.append(["iptables", "-w", action, "INPUT", "-p", "tcp", way, str(port),
                      "-m", "comment", "--comment", f"{TAG}{os.getpid()}-{port}", *share, "-j", "DROP"])
    return all(subprocess.run(rule, stderr=subprocess.DEVNULL).returncode == 0 for rule in rules)


def sweep():
    """Removes the rules of runs that died without removing their own (killed):
    the port they black-holed is free again, and the next server on it would be
    unreachable. The rules of running processes stay."""
    listed = subprocess.run(["iptables", "-w", "-S", "INPUT"], capture_output=True, text=True)
    for line in listed.stdout.splitlines():
        words = line.split()
        tag = next((w[len(TAG):] for w in words if w.startswith(TAG)), None)
        if tag is None:
            continue
        pid = tag.split("-", 1)[0]
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            continue
        print(f"faults: removing a black hole a run left behind: {line}", file=sys.stderr)
        subprocess.run(["iptables", "-w", "-D", *words[1:]], stderr=subprocess.DEVNULL)


def netfilter_usable():
    if shutil.which("iptables") is None and os.geteuid() == 0:
        print("installing iptables (Debian)...", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", "iptables"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    if shutil.which("iptables") is None:
        return False
    return subprocess.run(["iptables", "-w", "-L", "INPUT", "-n"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def bench(target, flags, args, lb=None):
    policy = ["--lb", lb] if lb else []
    command = [RELEASE / "client", "-t", target, *policy, "--timeout", DEADLINE, *flags, "--json", "bench", *args]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"client bench failed ({done.returncode}): {done.stderr.strip()}")
    return json.loads(done.stdout)


LOSS = 0.3


def fault_run(fault, row, length, start, end, lb=None):
    """One open-model run with `fault` on the first replica (the first two
    for two-frozen) from `start` to `end` seconds."""
    fleet = replicas()
    proxy = None
    try:
        addresses = [r.address for r in fleet]
        if fault == "slow":
            proxy = Process([DEBUG / "examples" / "slow_proxy", "127.0.0.1:0", addresses[0], SLOW])
            addresses[0] = proxy.address
        port = int(fleet[0].address.rsplit(":", 1)[1])
        target = "ipv4:" + ",".join(addresses)
        loss = LOSS if fault == "loss" else None

        def apply(on):
            if fault in ("frozen", "two-frozen"):
                for replica in fleet[: 2 if fault == "two-frozen" else 1]:
                    replica.signal(signal.SIGSTOP if on else signal.SIGCONT)
            elif fault in ("blackhole", "loss"):
                if not iptables("-I" if on else "-D", port, loss):
                    print(f"faults: iptables {'-I' if on else '-D'} failed for port {port}", file=sys.stderr)
            elif fault == "killed" and on:
                fleet[0].stop()
            elif fault == "killed":
                fleet[0] = Process([RELEASE / "server", "--listen", fleet[0].address, "--grace", "1s"])
            elif fault == "slow":
                proxy.signal(signal.SIGUSR1)

        timers = [threading.Timer(start, apply, (True,)), threading.Timer(end, apply, (False,))]
        for timer in timers:
            timer.start()
        try:
            report = bench(target, ROWS[row], ["--rate", str(RATE), "-c", str(IN_FLIGHT),
                                               "-n", str(RATE * length), "-z", f"{length}s"], lb)
        finally:
            for timer in timers:
                timer.cancel()
            if fault in ("blackhole", "loss"):
                # Removed even when the run failed, and whether or not the
                # timer got to it (deleting a rule that is gone fails quietly).
                while iptables("-D", port, loss):
                    pass
        return report
    finally:
        for process in [*fleet, *([proxy] if proxy else [])]:
            process.stop()


def cpu_seconds(pid):
    """A process's user and system time so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def healthy_runs(rounds, length):
    """Today and the defaults against one healthy fleet, alternated `rounds`
    times: a machine whose load moves between two runs moves both rows.
    Each run also gets the CPU time it cost, the client's and the servers':
    on a machine the run saturates, throughput is its inverse, and it moves
    less than throughput when a neighbour takes a core."""
    fleet = replicas()
    try:
        target = "ipv4:" + ",".join(r.address for r in fleet)
        runs = {"today": [], "defaults": []}
        for _ in range(rounds):
            for row in runs:
                servers = sum(cpu_seconds(r.proc.pid) for r in fleet)
                client = resource.getrusage(resource.RUSAGE_CHILDREN)
                report = bench(target, ROWS[row], ["-c", "50", "-n", "10000000", "-z", f"{length}s"])
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                client = (after.ru_utime - client.ru_utime) + (after.ru_stime - client.ru_stime)
                servers = sum(cpu_seconds(r.proc.pid) for r in fleet) - servers
                report["cpu_us_per_call"] = (client + servers) / max(report["calls"], 1) * 1e6
                runs[row].append(report)
        return runs
    finally:
        for process in fleet:
            process.stop()


def failed(report):
    codes = {code: n for code, n in report["status_codes"].items() if code != "OK"}
    return ", ".join(f"{code} {n}" for code, n in sorted(codes.items())) or "0"


def ms(us):
    return f"{us / 1000:.1f}"


def row_line(fault, row, report):
    client = report["client"]
    extra = client["attempts"] / max(client["calls"], 1) - 1
    latency = report["latency_us"]
    unknown = report["status_codes"].get("UNKNOWN", 0)
    late = report.get("deadline", {}).get("late", 0)
    return (f"| {fault} | {row} | {report['calls']} | {failed(report)} | {unknown} | {ms(latency['p50'])} "
            f"| {ms(latency['p99'])} | {ms(latency['p999'])} | {late} | {extra:+.1%} "
            f"| {client.get('hedges', 0)} / {client.get('hedges_won', 0)} | {client.get('ejections', 0)} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6 s runs (fault from 2 s to 4 s): a smoke run")
    parser.add_argument("--faults", default="frozen,blackhole,slow",
                        help="which faults: frozen, blackhole, loss, two-frozen, killed, slow (comma-separated; "
                             "empty: only the healthy fleet)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"which clients (comma-separated): {', '.join(ROWS)}")
    parser.add_argument("--lb", choices=["pick_first", "round_robin"],
                        help="the policy (default: none named, the client's own default)")
    parser.add_argument("--no-healthy", action="store_true", help="skip the healthy fleet's runs")
    args = parser.parse_args()
    length, start, end = (6, 2, 4) if args.quick else (20, 5, 15)
    build()
    faults = [fault for fault in args.faults.split(",") if fault]
    netfilter = [fault for fault in ("blackhole", "loss") if fault in faults]
    if netfilter and not netfilter_usable():
        print(f"faults: skipped {', '.join(netfilter)}: iptables cannot add rules here (not installed, or not root)")
        faults = [fault for fault in faults if fault not in netfilter]
    elif netfilter:
        sweep()
    rows = [row for row in args.rows.split(",") if row]

    print(f"The first replica of three faulty from {start} s to {end} s of {length} s; {RATE} calls/s, at most "
          f"{IN_FLIGHT} in flight, {DEADLINE} deadline, {args.lb or 'the default policy'}. Latency in ms (from when "
          f"each call was due); late: ended over 5 ms past the deadline; extra attempts over calls; hedges sent / "
          f"won.\n")
    print("| fault | client | calls | failed | UNKNOWN | p50 | p99 | p99.9 | late | extra attempts | hedges | ejections |")
    print("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for fault in faults:
        for row in rows:
            print(row_line(fault, row, fault_run(fault, row, length, start, end, args.lb)), flush=True)
    if args.no_healthy:
        return

    rounds, healthy = (2, 2) if args.quick else (7, 3)
    print(f"\nHealthy fleet, closed model (50 workers), {rounds} runs of {healthy} s each, alternated; medians:\n")
    print("| client | calls/s | CPU per call, client + servers | attempts per call | hedges per call | p50 | p99 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    runs = healthy_runs(rounds, healthy)
    throughput, cpu = {}, {}
    for row, reports in runs.items():
        throughput[row] = statistics.median(r["throughput"] for r in reports)
        cpu[row] = statistics.median(r["cpu_us_per_call"] for r in reports)
        calls = sum(r["client"]["calls"] for r in reports)
        attempts = sum(r["client"]["attempts"] for r in reports)
        hedges = sum(r["client"].get("hedges", 0) for r in reports)
        p50 = statistics.median(r["latency_us"]["p50"] for r in reports)
        p99 = statistics.median(r["latency_us"]["p99"] for r in reports)
        print(f"| {row} | {throughput[row]:.0f} | {cpu[row]:.1f} us | {attempts / max(calls, 1):.4f} "
              f"| {hedges / max(calls, 1):.4f} | {ms(p50)} | {ms(p99)} |", flush=True)
    pairs = [d["throughput"] / t["throughput"] for t, d in zip(runs["today"], runs["defaults"])]
    print(f"\nDefaults against today, healthy: throughput x{throughput['defaults'] / throughput['today']:.3f} "
          f"(medians; per alternated pair: {', '.join(f'x{p:.2f}' for p in pairs)}); CPU per call "
          f"x{cpu['defaults'] / cpu['today']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
