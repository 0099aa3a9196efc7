"""Traces across processes, checked by a real OTLP receiver.

The real `server` and `client` binaries export to `peer/otlp_receiver.py`
(grpcio serving the collector's TraceService, and HTTP/protobuf on
/v1/traces), and the tests read the spans it got: one trace from the client's
call through its attempts to the server that answered, the parent taken from
`traceparent` (curl, buf curl) and from `grpc-trace-bin` (grpcio), both
exporters, and a collector that is down or never answers costing no call.

Run by `.ci/run` with the other interop tests:

    cargo build --bins && python -m pytest peers/test_traces.py
"""

import importlib.util
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from conftest import BUF, CLIENT, ROOT, SERVER


def _load(path):
    """A module loaded by its path: putting peer/ on sys.path would let its
    client.py stand in for the `client` module of interop's other tests."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_receiver = _load(Path(__file__).resolve().parent / "peer" / "otlp_receiver.py")
Receiver, Silent = _receiver.Receiver, _receiver.Silent

SEARCH = "/search.v1.SearchService/Search"
# The W3C specification's example.
TRACE_ID, PARENT_ID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
# Environment without the OTLP variables of the machine running the tests.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


class Server:
    """The Rust server on a free port, exporting as `flags` say."""

    def __init__(self, *flags):
        assert SERVER.exists(), f"build the server first (cargo build --bins): {SERVER}"
        self.process = subprocess.Popen(
            [str(SERVER), "--listen", "127.0.0.1:0", *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CLEAN_ENV,
        )
        self.address = self.process.stdout.readline().strip()
        assert self.address.startswith("127.0.0.1:"), self.address

    def stop(self):
        """Stops it (SIGTERM) and returns its log."""
        self.process.terminate()
        _, log = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, log
        return log


@pytest.fixture
def servers():
    started = []
    yield lambda *flags: started.append(Server(*flags)) or started[-1]
    for server in started:
        if server.process.poll() is None:
            server.stop()


def client(*args, timeout=60):
    done = subprocess.run([str(CLIENT), *args], capture_output=True, text=True, timeout=timeout, env=CLEAN_ENV)
    return done


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one(spans, **want):
    """The one span matching every `want` (kind, service, name, parent_span_id, ...)."""
    found = [s for s in spans if all(s[k] == v for k, v in want.items())]
    assert len(found) == 1, (want, found)
    return found[0]


def search_spans(spans):
    return [s for s in spans if s["attributes"].get("rpc.method") == "Search"]


def test_a_call_through_a_round_robin_channel_is_one_trace(receiver, servers):
    first = servers("--otlp-endpoint", receiver.grpc_endpoint)
    second = servers("--otlp-endpoint", receiver.grpc_endpoint)
    target = f"ipv4:{first.address},{second.address}"
    # No hedging: on a slow machine a hedge could make it two attempts.
    done = client("-t", target, "--lb", "round_robin", "--hedging-delay", "off",
                  "--otlp-endpoint", receiver.grpc_endpoint, "Banana")
    assert (done.returncode, done.stdout) == (0, "status=1\n"), done.stderr

    spans = receiver.wait_for(lambda spans: len(search_spans(spans)) >= 3)
    call = one(spans, service="search-client", kind="INTERNAL")
    attempt = one(spans, service="search-client", kind="CLIENT")
    server = one(spans, service="search-server", kind="SERVER", trace_id=call["trace_id"])
    assert call["parent_span_id"] == ""
    assert attempt["parent_span_id"] == call["span_id"]
    assert server["parent_span_id"] == attempt["span_id"]
    assert {call["trace_id"], attempt["trace_id"], server["trace_id"]} == {call["trace_id"]}
    assert server["name"] == "search.v1.SearchService/Search"

    want = {"rpc.system": "grpc", "rpc.service": "search.v1.SearchService", "rpc.method": "Search",
            "rpc.grpc.status_code": 0}
    for span in (call, attempt, server):
        assert want.items() <= span["attributes"].items(), span
    # The attempt names the subchannel the call went to (whichever was READY
    # first); the server span, the call's :authority (an ipv4: list's first
    # address, as grpc sets it).
    answered = [s for s in (first, second) if s.address.endswith(f":{attempt['attributes']['server.port']}")]
    assert len(answered) == 1, attempt
    assert attempt["attributes"]["server.address"] == "127.0.0.1"
    assert first.address.endswith(f":{server['attributes']['server.port']}"), server
    assert attempt["attributes"]["grpc.previous-rpc-attempts"] == 0
    assert server["attributes"]["network.peer.address"] == "127.0.0.1"
    assert [e["attributes"]["message.type"] for e in server["events"]] == ["RECEIVED", "SENT"]

    # The call's log line names the trace; the other server's has none.
    log = answered[0].stop()
    line = next(line for line in log.splitlines() if "method=/search.v1.SearchService/Search" in line)
    assert line.endswith(f" trace_id={call['trace_id']}"), line


def grpcio_replica(handler):
    """A grpcio server answering every unary call with `handler(request,
    context)`; returns it and its port."""

    class Every(grpc.GenericRpcHandler):
        def service(self, details):
            return grpc.unary_unary_rpc_method_handler(handler)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[Every()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def refuse(request, context):
    """A replica that is failing: UNAVAILABLE."""
    context.abort(grpc.StatusCode.UNAVAILABLE, "this replica is failing")


def hold(request, context):
    """A replica gone slow: the call held until its caller cancels it (at most
    10 s), then status=1."""
    deadline = time.monotonic() + 10
    while context.is_active() and time.monotonic() < deadline:
        time.sleep(0.02)
    return b"\x08\x01"


def call_until(receiver, target, flags, found):
    """Runs `client Banana` over round robin until `found(spans)` finds what
    the test is after (round robin may start on either replica); returns the
    spans and what was found."""
    for _ in range(10):
        done = client("-t", target, "--lb", "round_robin", "--no-health-check", *flags,
                      "--otlp-endpoint", receiver.grpc_endpoint, "Banana")
        assert (done.returncode, done.stdout) == (0, "status=1\n"), done.stderr
        spans = receiver.wait_for(lambda spans: any(s["kind"] == "INTERNAL" for s in spans))
        if hits := found(spans):
            return spans, hits
    pytest.fail(f"not found in ten calls: {spans}")


def test_a_retried_call_has_two_attempts_under_one_call_span(receiver, servers):
    failing, port = grpcio_replica(refuse)
    try:
        good = servers("--otlp-endpoint", receiver.grpc_endpoint)
        # Retries, not hedges: a hedge could win before the failure. A call
        # that met the failing replica first has two attempts.
        spans, retried = call_until(
            receiver, f"ipv4:127.0.0.1:{port},{good.address}", ["--hedging-delay", "off"],
            lambda spans: [c for c in spans if c["kind"] == "INTERNAL"
                           and len([s for s in spans if s["parent_span_id"] == c["span_id"]]) == 2])
    finally:
        failing.stop(grace=None)
    call = retried[0]
    attempts = sorted((s for s in spans if s["parent_span_id"] == call["span_id"]),
                      key=lambda s: s["attributes"]["grpc.previous-rpc-attempts"])
    assert [a["kind"] for a in attempts] == ["CLIENT", "CLIENT"]
    assert [a["attributes"]["grpc.previous-rpc-attempts"] for a in attempts] == [0, 1]
    assert [a["attributes"]["rpc.grpc.status_code"] for a in attempts] == [14, 0]
    assert attempts[0]["attributes"]["server.port"] == port
    assert attempts[1]["status"] == 0 and attempts[0]["status"] == 2  # OK, ERROR
    assert call["attributes"]["rpc.grpc.status_code"] == 0
    # The server that answered is the second attempt's child.
    receiver.wait_for(lambda spans: any(s["parent_span_id"] == attempts[1]["span_id"] for s in spans))


def test_a_hedge_is_an_attempt_of_its_own(receiver, servers):
    slow, port = grpcio_replica(hold)
    try:
        good = servers("--otlp-endpoint", receiver.grpc_endpoint)
        # A hedge that won: the first attempt was the slow replica's.
        spans, hedged = call_until(
            receiver, f"ipv4:127.0.0.1:{port},{good.address}",
            ["--no-outlier-detection", "--hedging-delay", "50ms", "--hedging-max-attempts", "2"],
            lambda spans: [s for s in spans if s["kind"] == "CLIENT" and s["attributes"].get("grpc.hedge")
                           and s["attributes"]["rpc.grpc.status_code"] == 0])
    finally:
        slow.stop(grace=None)
    hedge = hedged[0]
    call = one(spans, kind="INTERNAL", span_id=hedge["parent_span_id"])
    attempts = sorted((s for s in spans if s["parent_span_id"] == call["span_id"]),
                      key=lambda s: s["attributes"]["grpc.previous-rpc-attempts"])
    assert [a["kind"] for a in attempts] == ["CLIENT", "CLIENT"], attempts
    first, second = attempts
    assert second == hedge and "grpc.hedge" not in first["attributes"]
    # The first went to the slow replica and was cancelled when the hedge won.
    assert first["attributes"]["server.port"] == port
    assert first["attributes"]["rpc.grpc.status_code"] == 1  # CANCELLED
    assert second["attributes"]["rpc.grpc.status_code"] == 0
    assert call["attributes"]["rpc.grpc.status_code"] == 0
    # The server that answered is the hedge's child, in the call's trace.
    server = receiver.wait_for(lambda spans: [s for s in spans if s["parent_span_id"] == hedge["span_id"]])
    assert [(s["kind"], s["trace_id"]) for s in server if s["parent_span_id"] == hedge["span_id"]] == [
        ("SERVER", call["trace_id"])]


def test_traceparent_from_curl_joins_the_trace_in_every_protocol(receiver, servers):
    server = servers("--otlp-endpoint", receiver.grpc_endpoint)
    url = f"http://{server.address}{SEARCH}"
    headers = ["-H", f"traceparent: {TRACEPARENT}", "-H", "tracestate: congo=t61rcWkgMzE"]
    post = subprocess.run(["curl", "-sS", *headers, "-H", "content-type: application/json",
                           "-d", '{"query":"Banana"}', url], capture_output=True, text=True, timeout=30)
    assert post.stdout == '{"status":1}', post.stderr
    query = urllib.parse.urlencode({"encoding": "json", "message": '{"query":"Banana"}'})
    get = subprocess.run(["curl", "-sS", *headers, f"{url}?{query}"], capture_output=True, text=True, timeout=30)
    assert get.stdout == '{"status":1}', get.stderr
    web = subprocess.run([BUF, "curl", "--schema", "proto", "--protocol", "grpcweb", *headers,
                          "-d", '{"query":"Banana"}', url], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert web.returncode == 0, web.stderr

    spans = receiver.wait_for(lambda spans: len(spans) >= 3)
    assert len(spans) == 3, spans
    for span in spans:
        assert (span["trace_id"], span["parent_span_id"], span["kind"]) == (TRACE_ID, PARENT_ID, "SERVER"), span
        assert span["trace_state"] == "congo=t61rcWkgMzE"
    systems = sorted(s["attributes"]["rpc.system"] for s in spans)
    assert systems == ["connect_rpc", "connect_rpc", "grpc"]


def test_grpc_trace_bin_from_grpcio_is_the_parent(receiver, servers):
    server = servers("--otlp-endpoint", receiver.grpc_endpoint)
    # OpenCensus' binary format: version 0; field 0 the trace id, 1 the span
    # id, 2 the options (sampled).
    binary = b"\x00\x00" + bytes.fromhex(TRACE_ID) + b"\x01" + bytes.fromhex(PARENT_ID) + b"\x02\x01"
    with grpc.insecure_channel(server.address) as channel:
        search = channel.unary_unary(SEARCH)
        assert search(b"\x0a\x06Banana", metadata=[("grpc-trace-bin", binary)], timeout=10) == b"\x08\x01"
        # A bad one is no parent, and no failure.
        assert search(b"\x0a\x06Banana", metadata=[("grpc-trace-bin", b"\x00\x01\x02")], timeout=10) == b"\x08\x01"
    spans = receiver.wait_for(lambda spans: len(spans) >= 2)
    joined = one(spans, parent_span_id=PARENT_ID)
    assert joined["trace_id"] == TRACE_ID
    alone = one(spans, parent_span_id="")
    assert alone["trace_id"] != TRACE_ID


def test_the_http_protobuf_exporter(receiver, servers):
    flags = ["--otlp-endpoint", receiver.http_endpoint, "--otlp-protocol", "http/protobuf"]
    server = servers(*flags)
    done = client("-v", "-t", server.address, "--hedging-delay", "off", *flags, "Banana")
    assert (done.returncode, done.stdout) == (0, "status=1\n"), done.stderr
    spans = receiver.wait_for(lambda spans: len(search_spans(spans)) >= 3)
    call = one(spans, kind="INTERNAL")
    # -v names the call's trace.
    assert f"traced method=/search.v1.SearchService/Search trace_id={call['trace_id']}" in done.stderr
    attempt = one(spans, kind="CLIENT", parent_span_id=call["span_id"])
    one(spans, kind="SERVER", parent_span_id=attempt["span_id"], trace_id=call["trace_id"])


def test_an_https_collector(tmp_path, servers):
    """gRPC over TLS, the collector's certificate checked against the
    system's roots (here a CA of the test's own, through SSL_CERT_FILE)."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=trace test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")
    (tmp_path / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    key, chain = (tmp_path / "server.key").read_bytes(), (tmp_path / "server.pem").read_bytes()
    receiver = Receiver(tls=(key, chain)).start()
    try:
        assert receiver.grpc_endpoint.startswith("https://localhost:")
        server = servers()
        env = {**CLEAN_ENV, "SSL_CERT_FILE": str(tmp_path / "ca.pem")}
        done = subprocess.run([str(CLIENT), "-t", server.address, "--otlp-endpoint", receiver.grpc_endpoint,
                               "Banana"], capture_output=True, text=True, timeout=60, env=env)
        assert (done.returncode, done.stdout, done.stderr) == (0, "status=1\n", "")
        spans = receiver.wait_for(lambda spans: len(spans) >= 2)
        assert {s["kind"] for s in spans} == {"INTERNAL", "CLIENT"}
    finally:
        receiver.stop()


def dropped(metrics_port):
    """The server's search_server_spans_dropped_total."""
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as answer:
                text = answer.read().decode()
            break
        except urllib.error.URLError:
            time.sleep(0.1)  # its listener may start just after the server's
    for line in text.splitlines():
        if line.startswith("search_server_spans_dropped_total "):
            return float(line.split()[1])
    raise AssertionError(f"no search_server_spans_dropped_total in {text}")


@pytest.mark.parametrize("collector", ["refusing", "silent"])
def test_a_collector_down_costs_no_call(servers, collector):
    silent = Silent() if collector == "silent" else None
    endpoint = silent.endpoint if silent else f"http://127.0.0.1:{free_port()}"
    metrics = free_port()
    try:
        server = servers("--otlp-endpoint", endpoint, "--metrics-listen", f"127.0.0.1:{metrics}")
        assert dropped(metrics) == 0
        with grpc.insecure_channel(server.address) as channel:
            search = channel.unary_unary(SEARCH)
            for _ in range(50):
                assert search(b"\x0a\x06Banana", timeout=10) == b"\x08\x01"
        started = time.monotonic()
        done = client("-t", server.address, "--otlp-endpoint", endpoint, "Banana")
        assert (done.returncode, done.stdout) == (0, "status=1\n"), done.stderr
        assert "trace spans were not exported" in done.stderr
        # The client waits a bounded time for its spans at exit.
        assert time.monotonic() - started < 30
        # The server's spans are dropped and counted, once the export fails
        # or times out (10 s).
        deadline = time.monotonic() + 60
        while dropped(metrics) < 50 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert dropped(metrics) >= 50
    finally:
        if silent:
            silent.stop()


def test_bad_trace_flags_are_one_line_errors():
    for flags, words in [
        (["--traces-sampler", "sometimes"], "always_on, always_off, traceidratio"),
        (["--traces-sampler", "traceidratio", "--traces-sampler-arg", "2"], "not a ratio from 0 to 1"),
        (["--otlp-protocol", "http/json", "--otlp-endpoint", "http://127.0.0.1:1"], "grpc, http/protobuf"),
    ]:
        served = subprocess.run([str(SERVER), "--listen", "127.0.0.1:0", *flags],
                                capture_output=True, text=True, timeout=30, env=CLEAN_ENV)
        assert served.returncode == 2 and words in served.stderr, served.stderr
        assert len(served.stderr.strip().splitlines()) == 1, served.stderr
        called = client(*flags, "Banana")
        assert called.returncode == 2 and words in called.stderr, called.stderr
