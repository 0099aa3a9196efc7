"""A real load balancer in front of three replicas, on localhost.

For nginx and HAProxy (Debian's packages), with the configurations checked in
beside this file: three replicas of the server start, the balancer starts in
front of them, and `client bench` drives Search calls through it for eight
seconds. Two seconds in, one replica gets SIGTERM (it drains: NOT_SERVING,
its listening socket closed, calls in flight finished) and, once it has
exited, starts again on the same port. Every call must end OK: the
balancers retry what a draining replica did not take. Each replica's
/metrics shows that all three served, the restarted one after its restart.

    cargo build --bins && python -m pytest deploy
"""

import json
import os
import pathlib
import shutil
import subprocess
import time

import pytest
from replicas import DEBUG, Replica, free_ports, wait_for_port

DEPLOY = pathlib.Path(__file__).resolve().parent
# The ports the checked-in configurations use, replaced by free ones here.
FRONT, REPLICAS = 8100, (8101, 8102, 8103)
RUN_SECONDS = 8


def render(template: pathlib.Path, front: int, replicas: list[int]) -> str:
    text = template.read_text()
    for fixed, port in zip((FRONT, *REPLICAS), (front, *replicas)):
        text = text.replace(f"127.0.0.1:{fixed}", f"127.0.0.1:{port}")
    return text


def start_balancer(name: str, front: int, replicas: list[int], workdir: pathlib.Path) -> subprocess.Popen:
    if name == "nginx":
        config = workdir / "nginx.conf"
        config.write_text(render(DEPLOY / "nginx.conf", front, replicas))
        command = ["nginx", "-p", str(workdir), "-c", str(config)]
    else:
        config = workdir / "haproxy.cfg"
        config.write_text(render(DEPLOY / "haproxy.cfg", front, replicas))
        command = ["haproxy", "-db", "-f", str(config)]
    balancer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_port(front)
    return balancer


@pytest.mark.parametrize("balancer", ["nginx", "haproxy"])
def test_no_call_fails_while_a_replica_drains_and_restarts(balancer, tmp_path):
    if shutil.which(balancer) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{balancer} is not installed (.ci/run installs it)")
        pytest.skip(f"{balancer} is not installed (apt-get install {balancer})")
    ports = free_ports(7)
    front, replica_ports, metrics_ports = ports[0], ports[1:4], ports[4:7]
    replicas = [Replica(port, metrics) for port, metrics in zip(replica_ports, metrics_ports)]
    process = None
    try:
        for replica in replicas:
            replica.start()
        process = start_balancer(balancer, front, replica_ports, tmp_path)
        bench = subprocess.Popen(
            [DEBUG / "client", "-t", f"127.0.0.1:{front}", "--json", "--timeout", "5s", "bench",
             "-z", f"{RUN_SECONDS}s", "-n", "100000000", "-c", "8", "--connections", "4"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        time.sleep(2)
        drained = replicas[0]
        before = drained.searches()
        drained.drain()
        drained.start()
        out, err = bench.communicate(timeout=RUN_SECONDS + 30)
        assert bench.returncode == 0, err
        report = json.loads(out)
        after_restart = drained.searches()
        served = [replica.searches() for replica in replicas[1:]]
    finally:
        if process:
            process.terminate()
            _, log = process.communicate(timeout=10)
            print(f"{balancer} said:\n{log[-3000:]}")
        for replica in replicas:
            replica.stop()
    codes = report["status_codes"]
    print(f"{balancer}: {report['calls']} calls, {codes}; replica 1 {before} before its drain, "
          f"{after_restart} after its restart; replicas 2 and 3 {served}")
    assert report["calls"] > 100, report
    assert codes == {"OK": report["calls"]}, f"calls failed through {balancer}: {codes}"
    assert before > 0 and all(n > 0 for n in served), "every replica served"
    assert after_restart > 0, "the restarted replica is back in the balancer"
