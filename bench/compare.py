#!/usr/bin/env python3
"""Benchmarks the Search server against its peers in one run and prints the tables.

    python3 bench/compare.py            # 10-15 minutes, the release build done
    python3 bench/compare.py --quick    # 1 s points, one round: a smoke run
    python3 bench/compare.py --plot docs/img     # the pictures where the docs show them
    python3 bench/compare.py --redraw --plot DIR # redraw from target/bench/results.json

Installs what it needs: the release build (server, client, examples), h2load
from Debian's nghttp2-client, grpcio from PyPI (peers/requirements.txt) for
the Python peer that mirrors the article's server and client, and matplotlib
from PyPI (bench/requirements.txt) for the pictures, all in target/bench/venv.

Servers, one after another, each pinned to CPU 0 with taskset, on
127.0.0.1:8100 (the article's port), in two rounds (the whole list twice,
each row's best kept: a neighbour that takes the core during one row does not
skew the ratios, as it did when every row ran once):
  rust     the release server (in cargo's target directory), per-call log lines off (RUST_LOG=warn)
  rust+log the same with its per-call info lines on, to price them
  rust+metrics  rust+log with --metrics-listen, to price the metrics
  cpp      bench/cpp/search_server.cc: a grpc C++ async server (Debian's
           libgrpc++), one completion queue and one thread
  python   the Python peer that mirrors the article's grpc.aio server
           (peers/peer/server.py)
  floor    examples/h2_floor.rs: hyper h2c answering a canned gRPC response
           without decoding anything, the floor no gRPC server can beat
Load generators on CPU 1: h2load sending a pre-encoded request frame, and
our own `client bench` (which reads each answer's grpc-status, so its OK count
proves real gRPC successes, not just HTTP 200s). Every call goes to the
article's /Search/search path, the one all servers answer.

Latency by percentile: h2load once more for each server and point, with
--log-file, which writes every call's time (the throughput rows run without
it: the log costs h2load about 14% more CPU per call, and at 4 x 32 h2load
nearly fills CPU 1). One SVG per point, latency-<conns>x<streams>.svg, in
target/bench or --plot DIR: the h2load curves beside the few percentiles
`client bench` reports (min, p50, p90, p99, p99.9, max) for its rows above.
The pass takes about two minutes (5 s points); a whole run took 15.5 minutes
on a 2-core machine shared with busy neighbours.

Protocols: our server as started by default (per-call log on) answering the
same Search as gRPC over HTTP/2 and as Connect JSON over HTTP/2 and HTTP/1.1
(h2load, and h2load --h1 with keep-alive), to price the Connect translation
against gRPC in one run.

Then: bulk classification of 1,000,000 lines through Classify; the whole-
process time of `client Banana` against the peer's `python client.py
Banana`; the server's RSS idle, with 1,000 connections each holding a
Classify call, and with 1,000 connections after one Search each, holding
none; instructions per call under callgrind for ours (also with an
authorization policy, and with a bearer token checked too), the floor and
C++, and what a token the server has not seen costs.

Absolute numbers on a shared 2-core machine mean little: read the ratios,
measured in the same run.
"""

import argparse
import json
import math
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from cargo_target import DEBUG_BUILD, RELEASE_BUILD, built  # noqa: E402

RELEASE = built("release")
DEBUG = built("debug")
WORK = ROOT / "target" / "bench"
ADDRESS = "127.0.0.1:8100"
PATH = "/Search/search"
POINTS = [(1, 1), (16, 1), (4, 32)]  # (connections, streams per connection)
VENV = WORK / "venv"
# The gRPC message: prefix (uncompressed, 8 bytes), then field 1 = "Banana".
REQUEST = bytes([0, 0, 0, 0, 8, 0x0A, 0x06]) + b"Banana"


def run(command, **kwargs):
    return subprocess.run(command, check=True, text=True, **kwargs)


def setup():
    print("building the release binaries and the floor, and the debug examples...", file=sys.stderr)
    run(RELEASE_BUILD, cwd=ROOT)
    run(DEBUG_BUILD, cwd=ROOT)
    # h2load, valgrind (callgrind), and grpc C++ with its code generator.
    needed = {"h2load": "nghttp2-client", "valgrind": "valgrind", "grpc_cpp_plugin": "protobuf-compiler-grpc",
              "protoc": "protobuf-compiler", "pkg-config": "pkg-config"}
    missing = [package for tool, package in needed.items() if shutil.which(tool) is None]
    if missing or not Path("/usr/include/grpcpp/grpcpp.h").exists():
        print("installing h2load, valgrind and grpc C++ (Debian)...", file=sys.stderr)
        run(["apt-get", "update", "-qq"], stdout=subprocess.DEVNULL)
        run(["apt-get", "install", "-y", "-qq", *missing, "libgrpc++-dev"], stdout=subprocess.DEVNULL)
    build_cpp()
    python = venv(ROOT / "peers" / "requirements.txt", ROOT / "bench" / "requirements.txt")
    stubs = WORK / "stubs"
    stubs.mkdir(parents=True, exist_ok=True)
    run([str(python), "-m", "grpc_tools.protoc", f"-I{ROOT / 'peers' / 'peer'}",
         f"--python_out={stubs}", f"--grpc_python_out={stubs}", "search.proto"])
    (WORK / "request.bin").write_bytes(REQUEST)
    # 1,000 connections need file descriptors on both ends.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 8192), hard), hard))
    return python, stubs


def venv(*requirements):
    """target/bench/venv with the pinned requirements; returns its python."""
    if not (VENV / "bin" / "python").exists():
        run([sys.executable, "-m", "venv", str(VENV)])
    files = [argument for path in requirements for argument in ("-r", str(path))]
    run([str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", *files])
    return VENV / "bin" / "python"


CPP_SERVER = WORK / "cpp" / "search_server"


def build_cpp():
    """The grpc C++ async server (bench/cpp/search_server.cc), built with
    Debian's grpc++ from the Python peer's proto (the article's service)."""
    out = WORK / "cpp"
    out.mkdir(parents=True, exist_ok=True)
    source = ROOT / "bench" / "cpp" / "search_server.cc"
    if CPP_SERVER.exists() and CPP_SERVER.stat().st_mtime > source.stat().st_mtime:
        return
    print("building the grpc C++ server...", file=sys.stderr)
    plugin = shutil.which("grpc_cpp_plugin")
    run(["protoc", f"-I{ROOT / 'peers' / 'peer'}", f"--cpp_out={out}", f"--grpc_out={out}",
         f"--plugin=protoc-gen-grpc={plugin}", "search.proto"])
    flags = run(["pkg-config", "--cflags", "--libs", "grpc++", "protobuf"], capture_output=True).stdout.split()
    run(["g++", "-O2", "-std=c++17", f"-I{out}", str(source), str(out / "search.pb.cc"),
         str(out / "search.grpc.pb.cc"), *flags, "-o", str(CPP_SERVER)])


class Server:
    """A server pinned to CPU 0, started and stopped around a block."""

    def __init__(self, name, command, env=None):
        self.name, self.command, self.env = name, command, env or {}

    def __enter__(self):
        env = {**os.environ, "RUST_LOG": "warn", **self.env}
        self.process = subprocess.Popen(["taskset", "-c", "0", *self.command], stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=env, text=True, cwd=ROOT)
        self.process.stdout.readline()  # the address line: listening
        return self

    def rss_kib(self):
        # taskset execs the server: same pid.
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))

    def __exit__(self, *_):
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def our_load(connections, streams, seconds, total=10_000_000):
    """`client bench` on CPU 1; returns (req/s, p50 us, p99 us, OK count, calls,
    [[percentile, us], ...] for the few percentiles its report gives)."""
    out = run(["taskset", "-c", "1", str(RELEASE / "client"), "-t", ADDRESS, "--json", "bench", "--legacy",
               "--connections", str(connections), "-c", str(connections * streams), "-n", str(total),
               "-z", f"{seconds}s"], capture_output=True).stdout
    report = json.loads(out)
    latency = report["latency_us"]
    # The slowest call sits at 1 - 1/calls, as on the h2load curves.
    last = 100 * (1 - 1 / max(report["calls"], 2))
    points = [[0, latency["min"]]] + [[p, latency[key]] for p, key in ((50, "p50"), (90, "p90"), (99, "p99"),
                                                                      (99.9, "p999")) if p < last]
    points.append([last, latency["max"]])
    return report["throughput"], latency["p50"], latency["p99"], report["ok"], report["calls"], points


def h2load(connections, streams, seconds, log=None):
    """h2load on CPU 1; returns (req/s, mean us, max us, 2xx count, requests,
    None). With `log`, h2load writes each call's time there (--log-file)."""
    logging = [f"--log-file={log}"] if log else []
    out = run(["taskset", "-c", "1", "h2load", "-c", str(connections), "-m", str(streams), "-D", str(seconds),
               "--warm-up-time=1", "-d", str(WORK / "request.bin"), "-H", "content-type: application/grpc",
               "-H", "te: trailers", *logging, f"http://{ADDRESS}{PATH}"], capture_output=True).stdout
    rate = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    done = int(re.search(r"requests: \d+ total, \d+ started, (\d+) done", out).group(1))
    ok = int(re.search(r"status codes: (\d+) 2xx", out).group(1))
    timing = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out)
    return rate, micros(timing.group(3)), micros(timing.group(2)), ok, done, None


def micros(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 1, "ms": 1000, "s": 1_000_000}[unit]


def unary_servers(python, stubs):
    """The servers of the unary rows: name -> (command, environment)."""
    return {
        "floor": ([str(RELEASE / "examples" / "h2_floor"), ADDRESS], {}),
        "rust": ([str(RELEASE / "server"), "--listen", ADDRESS], {}),
        "rust+log": ([str(RELEASE / "server"), "--listen", ADDRESS], {"RUST_LOG": "info"}),
        # The defaults plus Prometheus metrics: the price of --metrics-listen.
        "rust+metrics": ([str(RELEASE / "server"), "--listen", ADDRESS, "--metrics-listen", "127.0.0.1:0"],
                         {"RUST_LOG": "info"}),
        "cpp": ([str(CPP_SERVER), ADDRESS], {}),
        "python": ([str(python), str(ROOT / "peers" / "peer" / "server.py")], {"PYTHONPATH": str(stubs)}),
    }


def throughput(python, stubs, seconds, rounds):
    best = {}  # (server, tool, point) -> the row of the round with the highest rate
    for round_ in range(1, rounds + 1):
        for name, (command, env) in unary_servers(python, stubs).items():
            with Server(name, command, env):
                # Pre-flight: real gRPC answers (grpc-status OK), not just HTTP 200s.
                _, _, _, ok, calls, _ = our_load(1, 1, 5, total=100)
                assert ok == calls == 100, f"{name}: {ok} of {calls} calls were gRPC OK"
                for connections, streams in POINTS:
                    for tool, measure in (("client bench", our_load), ("h2load", h2load)):
                        rate, typical, high, ok, calls, percentiles = measure(connections, streams, seconds)
                        point = f"{connections} x {streams}"
                        row = dict(server=name, tool=tool, point=point, rate=rate, typical=typical, high=high,
                                   ok=ok, calls=calls, round=round_, percentiles=percentiles)
                        if (name, tool, point) not in best or rate > best[(name, tool, point)]["rate"]:
                            best[(name, tool, point)] = row
                        print(f"  round {round_} {name:12} {tool:12} {point:7} {rate:>10.0f} req/s",
                              file=sys.stderr)
    return list(best.values())


def latency(python, stubs, seconds):
    """Every call's time from h2load (--log-file), once per server and point:
    the curves of the pictures, and the percentiles of their table."""
    rows = []
    log = WORK / "h2load.log"
    for name, (command, env) in unary_servers(python, stubs).items():
        with Server(name, command, env):
            for connections, streams in POINTS:
                log.unlink(missing_ok=True)  # h2load appends to it
                rate, _, _, ok, done, _ = h2load(connections, streams, seconds, log)
                # One call a line: start (us since the epoch), HTTP status, duration (us); the warm-up's
                # calls are not in it.
                calls = [line.split("\t") for line in log.read_text().splitlines()]
                assert len(calls) == done == ok, f"{name}: {len(calls)} calls logged, {ok} of {done} 2xx"
                assert all(status == "200" for _, status, *_ in calls), f"{name}: a status other than 200"
                times = sorted(int(call[2]) for call in calls)
                rows.append(dict(server=name, point=f"{connections} x {streams}", rate=rate, calls=len(times),
                                 percentiles=spectrum(times),
                                 summary={key: at(times, q) for key, q in SUMMARY}))
                print(f"  latency {name:12} {connections:>2} x {streams:<2} {rate:>10.0f} req/s, "
                      f"p99 {at(times, 0.99)} us", file=sys.stderr)
    log.unlink(missing_ok=True)
    return rows


SUMMARY = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999), ("max", 1)]


def at(times, quantile):
    """The time of the call at `quantile` of the sorted `times` (nearest rank)."""
    return times[max(0, math.ceil(quantile * len(times)) - 1)]


def spectrum(times, step=0.05):
    """[[percentile, us], ...] evenly spaced on the nines axis (-log10(1 - q),
    as HdrHistogram plots it), from the fastest call to the slowest, which
    sits at 1 - 1/calls."""
    top = math.log10(len(times))
    points = [[round(100 * (1 - 10 ** -(i * step)), 6), at(times, 1 - 10 ** -(i * step))]
              for i in range(int(top / step) + 1) if i * step < top]
    return points + [[100 * (1 - 1 / len(times)), times[-1]]]


# (label, h2load flags, content type, body): one Search each way.
PROTOCOLS = [
    ("grpc h2", [], "application/grpc", REQUEST),
    ("connect json h2", [], "application/json", b'{"query":"Banana"}'),
    ("connect json h1", ["--h1"], "application/json", b'{"query":"Banana"}'),
]
V1_PATH = "/search.v1.SearchService/Search"


def protocols(seconds):
    """Connect JSON against gRPC on one server started with its defaults."""
    rows = []
    with Server("rust (defaults)", [str(RELEASE / "server"), "--listen", ADDRESS], {"RUST_LOG": "info"}):
        # Pre-flight: the JSON answer itself, not just an HTTP 200.
        answer = run(["curl", "-sS", "--http1.1", "-H", "content-type: application/json", "-d", '{"query":"Banana"}',
                      f"http://{ADDRESS}{V1_PATH}"], capture_output=True).stdout
        assert answer == '{"status":1}', answer
        for label, flags, content_type, body in PROTOCOLS:
            (WORK / "protocol.bin").write_bytes(body)
            for connections, streams in [(1, 1), (16, 1), (4, 32)]:
                if "--h1" in flags and streams > 1:
                    continue  # HTTP/1.1 has one call at a time per connection
                headers = ["-H", f"content-type: {content_type}"] + (["-H", "te: trailers"] if "grpc" in label else [])
                out = run(["taskset", "-c", "1", "h2load", *flags, "-c", str(connections), "-m", str(streams),
                           "-D", str(seconds), "--warm-up-time=1", "-d", str(WORK / "protocol.bin"), *headers,
                           f"http://{ADDRESS}{V1_PATH}"], capture_output=True).stdout
                rate = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
                done = int(re.search(r"requests: \d+ total, \d+ started, (\d+) done", out).group(1))
                ok = int(re.search(r"status codes: (\d+) 2xx", out).group(1))
                assert ok == done, f"{label}: {ok} of {done} answers were 2xx"
                rows.append(dict(protocol=label, point=f"{connections} x {streams}", rate=rate, ok=ok, calls=done))
                print(f"  {label:16} {connections:>2} x {streams:<2} {rate:>10.0f} req/s", file=sys.stderr)
    return rows


def callgrind(calls):
    """Instructions per call, counted by callgrind (repeatable where
    seconds are not): the server runs under valgrind twice, for `calls` and
    3 x `calls` h2load calls at 16 x 1; the difference, over the difference
    in calls, is the cost of one call without the start and the stop. The
    rust+authz rows price who-may-call-what: an authorization policy alone,
    and a bearer token checked against a key set as well (one token, as a
    client sends the same one on every call: verified once, then cached).
    The rust+orca row prices load reports (--orca): a trailer per call and
    the call counted."""
    security = security_files()
    log = {"RUST_LOG": "info"}
    ours = [str(RELEASE / "server"), "--listen", ADDRESS]
    servers = {
        "rust+log": (ours, log, []),
        "rust+authz": (ours + ["--authz-policy", str(security / "open.json")], log, []),
        "rust+orca": (ours + ["--orca"], log, []),
        "rust+authz+jwt": (ours + jwt_flags(security), log,
                           ["-H", f"authorization: Bearer {token(security, 'alice')}"]),
        "floor": ([str(RELEASE / "examples" / "h2_floor"), ADDRESS], {}, []),
        "cpp": ([str(CPP_SERVER), ADDRESS], {}, []),
    }
    figures = {}
    for name, (command, env, headers) in servers.items():
        totals = []
        for n in (calls, 3 * calls):
            def load():
                out = run(["h2load", "-n", str(n), "-c", "16", "-m", "1", "-d", str(WORK / "request.bin"),
                           "-H", "content-type: application/grpc", "-H", "te: trailers", *headers,
                           f"http://{ADDRESS}{PATH}"], capture_output=True).stdout
                assert f"status codes: {n} 2xx" in out, out
            totals.append(instructions(name, command, env, load))
        figures[name] = (totals[1] - totals[0]) / (2 * calls)
        print(f"  {name:9} {figures[name]:,.0f} instructions per call", file=sys.stderr)
    figures["token check"] = token_check(calls)
    return figures


def instructions(name, command, env, load):
    """The instructions the server `command` runs, under callgrind, while
    `load()` calls it."""
    out_file = WORK / f"callgrind.{name}.out"
    wrapped = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", *command]
    with Server(name, wrapped, env) as server:
        load()
        # callgrind writes its totals when the program ends.
        server.process.send_signal(signal.SIGINT)
        server.process.wait(timeout=120)
    return int(re.search(r"^(?:summary|totals): (\d+)", out_file.read_text(), re.M).group(1))


ISSUER, AUDIENCE = "https://issuer.example", "search"


def security_files():
    """A signing key and its JWKS (examples/jwt.rs), and two policies: one
    that lets anyone search, one that lets the issuer's callers."""
    directory = WORK / "security"
    run([str(DEBUG / "examples" / "jwt"), "keys", str(directory)])
    path = "/search.v1.SearchService/Search"
    (directory / "open.json").write_text(json.dumps(
        {"name": "bench", "allow_rules": [{"name": "search", "request": {"paths": [path]}}]}))
    (directory / "callers.json").write_text(json.dumps(
        {"name": "bench", "allow_rules": [{"name": "callers", "source": {"request_principals": [f"{ISSUER}/*"]},
                                           "request": {"paths": [path]}}]}))
    return directory


def jwt_flags(directory):
    return ["--authz-policy", str(directory / "callers.json"), "--jwks", str(directory / "jwks.json"),
            "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE]


def token(directory, subject):
    return run([str(DEBUG / "examples" / "jwt"), "token", str(directory), subject],
               capture_output=True).stdout.strip()


def token_check(calls):
    """What checking a token the server has not seen costs (its ES256
    signature verified, its claims read): the server under callgrind
    answers `calls` Connect calls over one HTTP/1.1 connection twice, once
    with one token and once with a new token each call; the difference, per
    call."""
    import http.client
    directory = WORK / "security"
    command = [str(RELEASE / "server"), "--listen", ADDRESS, *jwt_flags(directory)]
    tokens = [token(directory, f"caller-{i}") for i in range(calls)]
    totals = []
    for name, each in (("same token", [tokens[0]] * calls), ("new tokens", tokens)):
        def load():
            host, port = ADDRESS.split(":")
            connection = http.client.HTTPConnection(host, int(port), timeout=60)
            for value in each:
                connection.request("POST", "/search.v1.SearchService/Search", body=b'{"query":"Banana"}',
                                   headers={"content-type": "application/json", "authorization": f"Bearer {value}"})
                answer = connection.getresponse()
                assert answer.status == 200 and answer.read() == b'{"status":1}', answer.status
            connection.close()
        totals.append(instructions(name.replace(" ", "-"), command, {"RUST_LOG": "info"}, load))
    per_token = (totals[1] - totals[0]) / calls
    print(f"  a new token: {per_token:,.0f} instructions more", file=sys.stderr)
    return per_token


def bulk(lines=1_000_000):
    """Classify a generated file through the bidirectional stream."""
    path = WORK / "lines.txt"
    words = ["a banana split", "an apple a day", "BANANA", "kiwi and lime", "Bananas!", "nothing here at all"]
    with path.open("w") as f:
        for i in range(lines):
            f.write(words[i % len(words)] + f" {i}\n")
    expected = sum(1 for i in range(lines) if "banana" in words[i % len(words)].lower())
    with Server("rust", [str(RELEASE / "server"), "--listen", ADDRESS]):
        started = time.perf_counter()
        out = run(["taskset", "-c", "1", str(RELEASE / "client"), "-t", ADDRESS, "--timeout", "10m", "classify",
                   str(path)], capture_output=True).stdout
        seconds = time.perf_counter() - started
    answers = out.splitlines()
    assert len(answers) == lines, f"{len(answers)} answers for {lines} lines"
    assert answers.count("status=1") == expected, "wrong answers"
    size = path.stat().st_size
    return dict(lines=lines, seconds=seconds, lines_per_second=lines / seconds, mb_per_second=size / seconds / 1e6)


def startup(python, stubs, rust_runs=30, python_runs=10):
    """Whole-process time of one call, ours against the Python peer's client."""
    def mean_seconds(command, runs, env=None):
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            out = run(command, capture_output=True, env=env).stdout
            times.append(time.perf_counter() - started)
            assert out == "status=1\n", out
        return statistics.mean(times)

    # The peer's client dials localhost:8100 by default: serve there.
    with Server("rust", [str(RELEASE / "server"), "--listen", "localhost:8100"]):
        ours = mean_seconds([str(RELEASE / "client"), "Banana"], rust_runs)
        peer = mean_seconds([str(python), str(ROOT / "peers" / "peer" / "client.py"), "Banana"], python_runs,
                               dict(os.environ, PYTHONPATH=str(stubs)))
    return dict(rust_ms=ours * 1000, python_ms=peer * 1000, ratio=peer / ours)


def memory(connections=1000):
    """Server RSS idle, then per connection: held with no call in flight (after
    one Search), and holding a Classify call. A fresh server for each."""
    figures = dict(connections=connections)
    for mode, extra in (("idle", ["idle"]), ("call", [])):
        with Server("rust", [str(RELEASE / "server"), "--listen", ADDRESS]) as server:
            time.sleep(1)
            at_rest = server.rss_kib()
            holder = subprocess.Popen(["taskset", "-c", "1", str(DEBUG / "examples" / "hold_calls"), ADDRESS,
                                       str(connections)] + extra, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True)
            assert holder.stdout.readline().startswith("holding"), "the connections are held"
            time.sleep(1)
            loaded = server.rss_kib()
            holder.stdin.close()
            holder.wait(timeout=60)
        # KiB per connection, and the server's RSS (the last, with the calls).
        figures.update({mode: (loaded - at_rest) / connections, "idle_mib": at_rest / 1024,
                        "loaded_mib": loaded / 1024})
    return figures


def print_protocols(rows):
    print("## Protocols: one server at its defaults (per-call log on), Search each way\n")
    print("| protocol | conns x streams | req/s | vs gRPC | 2xx / calls |")
    print("| --- | --- | ---: | ---: | ---: |")
    grpc = {r["point"]: r["rate"] for r in rows if r["protocol"] == "grpc h2"}
    for r in rows:
        print(f"| {r['protocol']} | {r['point']} | {r['rate']:.0f} | {r['rate'] / grpc[r['point']]:.2f} | "
              f"{r['ok']} / {r['calls']} |")
    print()


def print_tables(rows, bulk_figures, startup_figures, memory_figures):
    print("## Unary throughput (server on CPU 0, load on CPU 1)\n")
    print("| server | tool | conns x streams | req/s | latency p50 / mean (µs) | p99 / max (µs) | vs rust | OK / calls |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    ours = {(r["tool"], r["point"]): r["rate"] for r in rows if r["server"] == "rust"}
    for r in rows:
        ratio = r["rate"] / ours[(r["tool"], r["point"])]
        print(f"| {r['server']} | {r['tool']} | {r['point']} | {r['rate']:.0f} | {r['typical']:.0f} | "
              f"{r['high']:.0f} | {ratio:.2f} | {r['ok']} / {r['calls']} |")
    rounds = max(r["round"] for r in rows)
    print(f"\n(client bench: p50 and p99, and gRPC OK from the trailers; h2load: mean and max, and HTTP 2xx. "
          f"Each row is the best of {rounds} round(s) over every server.)\n")
    print("## Bulk, startup, memory\n")
    print(f"- Bulk: {bulk_figures['lines']:,} lines through Classify in {bulk_figures['seconds']:.2f} s: "
          f"{bulk_figures['lines_per_second']:,.0f} lines/s, {bulk_figures['mb_per_second']:.1f} MB/s.")
    print(f"- Start-up: `client Banana` {startup_figures['rust_ms']:.1f} ms per process, the Python peer's "
          f"`python client.py Banana` {startup_figures['python_ms']:.1f} ms: {startup_figures['ratio']:.1f}x faster.")
    print(f"- Memory: server RSS {memory_figures['idle_mib']:.1f} MiB idle, {memory_figures['loaded_mib']:.1f} MiB "
          f"with {memory_figures['connections']:,} connections each holding a call "
          f"({memory_figures['call']:.1f} KiB per connection; "
          f"{memory_figures['idle']:.1f} KiB per connection with no call in flight).")


def print_instructions(figures):
    print("## Instructions per call (callgrind, h2load 16 x 1, /Search/search)\n")
    print("| server | instructions per call | vs floor |")
    print("| --- | ---: | ---: |")
    for name, per_call in figures.items():
        if name != "token check":
            print(f"| {name} | {per_call:,.0f} | {per_call / figures['floor']:.2f} |")
    print(f"\nA token the server has not seen yet costs {figures['token check']:,.0f} instructions more than one "
          "it has (ES256, over Connect on HTTP/1.1).\n")


def print_latency(rows):
    print("## Latency by percentile (h2load, every call, one run per server; server on CPU 0, load on CPU 1)\n")
    print("| server | conns x streams | req/s | p50 (µs) | p90 | p99 | p99.9 | max |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['server']} | {r['point']} | {r['rate']:.0f} | " + " | ".join(
            str(r["summary"][key]) for key, _ in SUMMARY) + " |")
    print()


def machine():
    """The machine, as the pictures name it: cores and CPU model."""
    models = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    return f"{os.cpu_count()} cores, {models[0].strip() if models else 'unknown CPU'}"


# How each server looks in every picture: label, colour (Okabe-Ito, readable
# with colour blindness), line style.
STYLES = {
    "floor": ("floor (hyper h2c, canned answer)", "#555555", "--"),
    "rust": ("rust, per-call log off", "#D55E00", "-"),
    "rust+log": ("rust+log (the defaults)", "#E69F00", "-"),
    "rust+metrics": ("rust+metrics", "#CC79A7", ":"),
    "cpp": ("grpc C++ (async, one thread)", "#0072B2", "-"),
    "python": ("python (grpc.aio peer)", "#009E73", "-"),
}
NOTE = ("Closed loop: each stream sends its next call when its last is answered; with many in flight, a call "
        "mostly waits behind the others. A curve ends at its run's slowest call.\nserver: req/s in the h2load run / in client "
        "bench's row")
NINES = [(0, "min"), (math.log10(2), "50%"), (1, "90%"), (2, "99%"), (3, "99.9%"), (4, "99.99%"), (5, "99.999%"),
         (6, "99.9999%")]


def draw(results, directory):
    """One SVG per point: h2load's latency by percentile for every server
    (left) beside the percentiles `client bench` reports (right)."""
    import matplotlib
    matplotlib.use("svg")
    from matplotlib import lines, pyplot, ticker

    pyplot.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "compare.py", "font.size": 8.5,
                            "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"]})
    directory.mkdir(parents=True, exist_ok=True)
    curves = {(r["server"], r["point"]): r for r in results.get("latency", [])}
    reports = {(r["server"], r["point"]): r for r in results["throughput"] if r["tool"] == "client bench"}
    rounds = max(r["round"] for r in results["throughput"])
    seconds = results.get("seconds", 5)

    def nines(points):
        return [-math.log10(1 - p / 100) for p, _ in points], [max(us, 1) for _, us in points]

    def micros(value, _):
        return f"{value / 1000:g} ms" if value >= 1000 else f"{value:g} µs"

    load = (f"\nload average over the h2load runs' last minute: {results['load']:.1f} (the server and h2load "
            f"alone make about 2)" if "load" in results else "")
    for connections, streams in POINTS:
        point = f"{connections} x {streams}"
        figure, (left, right) = pyplot.subplots(1, 2, figsize=(10, 5), sharey=True, layout="constrained")
        top, handles, labels = 4, [], []
        for name, (label, colour, style) in STYLES.items():
            rates = []
            if (name, point) in curves:
                r = curves[(name, point)]
                xs, ys = nines(r["percentiles"])
                left.plot(xs, ys, color=colour, linestyle=style, linewidth=1.6)
                top, rates = max(top, xs[-1]), rates + [f"{r['rate']:,.0f}"]
            if (name, point) in reports and reports[(name, point)].get("percentiles"):
                r = reports[(name, point)]
                xs, ys = nines(r["percentiles"])
                right.plot(xs, ys, color=colour, linestyle=style, linewidth=1.2, marker="o", markersize=3.5)
                top, rates = max(top, xs[-1]), rates + [f"{r['rate']:,.0f}"]
            if rates:
                handles.append(lines.Line2D([], [], color=colour, linestyle=style, linewidth=1.6))
                labels.append(f"{label}: {' / '.join(rates)} req/s")
        ticks = [(x, name) for x, name in NINES[1:] if x <= math.ceil(top)]
        for axes in (left, right):
            axes.set_yscale("log")
            axes.yaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
            axes.yaxis.set_major_formatter(ticker.FuncFormatter(micros))
            axes.yaxis.set_minor_formatter(ticker.NullFormatter())
            axes.set_xlim(0, math.ceil(top))
            axes.set_xticks([x for x, _ in ticks], [name for _, name in ticks])
            axes.set_xlabel("percentile of calls (nines scale; left edge: the fastest)")
            axes.grid(True, which="major", color="#dddddd", linewidth=0.6)
        left.set_ylabel("latency (log scale)")
        left.set_title(f"h2load: every call, from its --log-file (one {seconds} s run per server)", fontsize=9)
        right.set_title(f"client bench: the min, p50, p90, p99, p99.9 and max it reports\n"
                        f"(its table rows: best of {rounds} round(s), {seconds} s each)", fontsize=9)
        shape = (f"{connections} connection{'s' if connections > 1 else ''} x {streams} "
                 f"stream{'s' if streams > 1 else ''}{' each' if connections > 1 else ''}")
        figure.suptitle(f"Search (/Search/search) latency by percentile, {shape}, closed loop\n"
                        f"{results.get('machine', '')}: server pinned to CPU 0, load generator to CPU 1, over "
                        f"127.0.0.1{load}", fontsize=10)
        legend = figure.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False, fontsize=7.5,
                               title_fontsize=7.5, title=NOTE)
        legend.get_title().set_multialignment("center")
        path = directory / f"latency-{connections}x{streams}.svg"
        figure.savefig(path, metadata={"Date": None})
        pyplot.close(figure)
        print(f"wrote {path}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1-second points instead of 5, one round instead of 2")
    parser.add_argument("--plot", metavar="DIR", type=Path, default=WORK,
                        help="where the latency pictures go (default: target/bench)")
    parser.add_argument("--redraw", action="store_true",
                        help="only draw the pictures again, from target/bench/results.json")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if args.redraw:
        redraw(args.plot)
        return
    python, stubs = setup()
    seconds = 1 if args.quick else 5
    rows = throughput(python, stubs, seconds, 1 if args.quick else 2)
    latency_rows = latency(python, stubs, seconds)
    load = os.getloadavg()[0]  # the last minute's, the server and the load generator included
    protocol_rows = protocols(seconds)
    figures = bulk(), startup(python, stubs), memory()
    counts = callgrind(500 if args.quick else 2000)
    results = dict(throughput=rows, latency=latency_rows, protocols=protocol_rows, bulk=figures[0],
                   startup=figures[1], memory=figures[2], instructions=counts, machine=machine(),
                   load=load, seconds=seconds)
    (WORK / "results.json").write_text(json.dumps(results, indent=2))
    print_tables(rows, *figures)
    print_latency(latency_rows)
    print_protocols(protocol_rows)
    print_instructions(counts)
    redraw(args.plot, python)


def redraw(directory, python=None):
    """Draws the pictures from results.json with the venv's matplotlib (in
    its own process: the python running this script needs no matplotlib)."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        draw(json.loads((WORK / "results.json").read_text()), directory)
        return
    python = python or venv(ROOT / "bench" / "requirements.txt")
    run([str(python), str(Path(__file__).resolve()), "--redraw", "--plot", str(directory.resolve())])


if __name__ == "__main__":
    main()
