"""Replicas of the server on localhost ports, for the tests of the balancers in front.

Shared by test_balancers.py (nginx, HAProxy) and test_envoy.py: free ports,
waiting for a port to listen, and a replica process with its /metrics.
"""

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from cargo_target import built  # noqa: E402

DEBUG = built("debug")


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def wait_for_port(port: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


class Replica:
    """One server process on a fixed port, with its metrics on another."""

    def __init__(self, port: int, metrics_port: int, *flags: str, cpus: set[int] | None = None):
        """flags: more of the server's flags; cpus: the CPUs it may run on (all by default)."""
        self.port, self.metrics_port, self.flags, self.cpus = port, metrics_port, flags, cpus
        self.process = None

    def start(self) -> None:
        cpus = self.cpus
        self.process = subprocess.Popen(
            [DEBUG / "server", "--listen", f"127.0.0.1:{self.port}", "--grace", "3s",
             "--metrics-listen", f"127.0.0.1:{self.metrics_port}", *self.flags],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        assert self.process.stdout.readline().strip() == f"127.0.0.1:{self.port}"
        wait_for_port(self.metrics_port)

    def drain(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=30) == 0, "a drained server exits 0"

    def searches(self) -> int:
        """Search calls this process has started, from its /metrics."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        total = 0
        for line in text.splitlines():
            if line.startswith('grpc_server_call_started_total{grpc_method="search.v1.SearchService/Search"'):
                total += int(float(line.rsplit(" ", 1)[1]))
        return total

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
