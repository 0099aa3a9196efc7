#!/usr/bin/env python3
"""The soak: the release server at its defaults, but for a limit of 64 calls
in flight (so that the bursts are shed), driven by `client soak` for a given
time with all four RPC kinds, disconnects mid-call, deadlines mid-stream and
bursts of 100 held streams, the server's memory and descriptors sampled each
second.

    python3 bench/soak.py                 # 30 s
    python3 bench/soak.py --duration 10m  # the figure in docs/deploying.md
    python3 bench/soak.py --duration 60s --max-connection-age 2s --max-connection-age-grace 60s
                                          # connections rotated every 2 s under the calls, as CI runs it

With --max-connection-age the server sends each connection its GOAWAY at that
age, and the calls that cross it must still end as their traffic allows.

Exits with the client's code: 0 when every call ended with a code its traffic
allows and none was lost, 1 otherwise. Talks to 127.0.0.1 only.
"""

import argparse
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from cargo_target import RELEASE_BUILD, built  # noqa: E402

RELEASE = built("release")
MAX_CONCURRENT_CALLS = "64"
BURST = "100"
WORKERS = "8"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", default="30s", help="how long to soak (humantime: 30s, 10m)")
    parser.add_argument("--json", type=pathlib.Path, help="also write the client's JSON report here")
    parser.add_argument("--max-connection-age", help="the server's --max-connection-age (default: the server's, 30m)")
    parser.add_argument("--max-connection-age-grace",
                        help="the server's --max-connection-age-grace (default: the server's, 1m)")
    args = parser.parse_args()
    rotation = []
    for flag in ("max_connection_age", "max_connection_age_grace"):
        if getattr(args, flag):
            rotation += ["--" + flag.replace("_", "-"), getattr(args, flag)]

    print("building the release binaries...", file=sys.stderr)
    subprocess.run(RELEASE_BUILD, cwd=ROOT, check=True)
    server = subprocess.Popen(
        [RELEASE / "server", "--listen", "127.0.0.1:0", "--max-concurrent-calls", MAX_CONCURRENT_CALLS, *rotation],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # The server prints its bound address, and only that, on stdout.
        address = server.stdout.readline().strip()
        if not address:
            print("soak: the server did not start", file=sys.stderr)
            return 1
        soak = [
            RELEASE / "client", "-t", address, "--json", "soak", "--duration", args.duration,
            "--concurrency", WORKERS, "--burst", BURST, "--server-pid", str(server.pid),
        ]
        done = subprocess.run(soak, stdout=subprocess.PIPE, text=True)
        if args.json:
            args.json.write_text(done.stdout)
        try:
            report = json.loads(done.stdout)
        except json.JSONDecodeError:
            print(f"soak: no report (exit {done.returncode})", file=sys.stderr)
            return done.returncode or 1
        show(report)
        return done.returncode
    finally:
        server.terminate()
        server.wait(timeout=30)


def show(report: dict) -> None:
    calls, seconds = report["ended"], report["seconds"]
    print(f"soak: {seconds:.0f} s, {calls} calls ({calls / seconds:.0f}/s); "
          f"started {report['started']}, unexpected {report['unexpected']}, lost {report['lost']}; "
          f"sent again unprocessed {report.get('client', {}).get('resent', 0)}")
    for scenario, outcomes in report["outcomes"].items():
        print(f"  {scenario:<10} " + ", ".join(f"{name} {n}" for name, n in outcomes.items()))
    rss, fds = report.get("rss_kib"), report.get("fds")
    if rss:
        print(f"server RSS: first {rss['first'] / 1024:.1f} MiB, peak {rss['peak'] / 1024:.1f} MiB, "
              f"last {rss['last'] / 1024:.1f} MiB; last half {rss['slope_per_minute'] / 1024:+.2f} MiB/min")
    if fds:
        print(f"server fds: first {fds['first']}, peak {fds['peak']}, last {fds['last']}; "
              f"last half {fds['slope_per_minute']:+.2f}/min")


if __name__ == "__main__":
    sys.exit(main())
