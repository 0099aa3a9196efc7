"""gRPC's interop test cases across implementations, each case by its name.

- The Rust interop client (`examples/interop_client.rs`) against the Rust
  interop server (`examples/interop_server.rs`: the TestService on the
  project's own stack), against an interop server on grpcio
  (`peers/testing/server.py`) and one on grpc-js
  (`peers/node/interop-server.mjs`); in plaintext and over TLS.
- Interop clients on grpcio (`peers/testing/client.py`) and grpc-js
  (`peers/node/interop-client.mjs`) against the Rust server, in plaintext
  and over TLS.
- connect-node (`peers/node/interop-connect.mjs`) against the Rust
  server over gRPC-Web and the Connect protocol, HTTP/1.1 and HTTP/2.

A cell a peer cannot run is not applicable, for the reason `NOT_APPLICABLE`
gives (the same table as docs/interop.md). Against the Rust server, each
cancellation case also checks the server's side: the call it cancelled
ended there, CANCELLED, with nothing left in flight (its /metrics).

Needs the debug build's examples (`cargo build --bins --examples`, which
`cargo test` leaves built), `npm ci --prefix peers/node`, buf, and openssl
for the test certificates.
"""

import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import BUF, EXAMPLES, ROOT

NODE = ROOT / "peers" / "node"
TESTING = ROOT / "peers" / "testing"
sys.path.insert(0, str(TESTING))

CASES = [
    "empty_unary", "large_unary", "client_compressed_unary", "server_compressed_unary", "client_streaming",
    "client_compressed_streaming", "server_streaming", "server_compressed_streaming", "ping_pong", "empty_stream",
    "cancel_after_begin", "cancel_after_first_response", "timeout_on_sleeping_server", "custom_metadata",
    "status_code_and_message", "special_status_message", "unimplemented_method", "unimplemented_service",
]
# Each cancellation case, and the method whose call it cancels.
CANCELLED = {"cancel_after_begin": "StreamingInputCall", "cancel_after_first_response": "FullDuplexCall"}

EXPECT_COMPRESSED = ["client_compressed_unary", "client_compressed_streaming"]
RESPONSE_COMPRESSED = ["server_compressed_unary", "server_compressed_streaming"]
BIDI = ["ping_pong", "empty_stream", "cancel_after_first_response", "timeout_on_sleeping_server"]
H1 = "bidirectional streaming needs HTTP/2"
CONNECT_NODE = {
    **{case: "connect-node does not say whether an answer came compressed" for case in RESPONSE_COMPRESSED},
    "client_compressed_streaming": "connect-node compresses messages by size, not one by one",
}

# (client, server) -> {case: why it is not applicable}.
NOT_APPLICABLE = {
    ("rust", "rust"): {},
    ("rust", "grpcio"): {case: "grpcio's server does not say whether a message came compressed"
                         for case in EXPECT_COMPRESSED},
    ("rust", "grpc-js"): {
        **{case: "grpc-js's server does not say whether a message came compressed" for case in EXPECT_COMPRESSED},
        **{case: "grpc-js's server does not compress answers" for case in RESPONSE_COMPRESSED},
    },
    ("grpcio", "rust"): {
        **{case: "grpcio's client does not say whether an answer came compressed" for case in RESPONSE_COMPRESSED},
        "client_compressed_streaming": "grpcio compresses a whole call or none of it",
    },
    ("grpc-js", "rust"): {case: "grpc-js's client does not say whether an answer came compressed"
                          for case in RESPONSE_COMPRESSED},
    ("grpc-web h1.1", "rust"): {**CONNECT_NODE, **{case: H1 for case in BIDI}},
    ("grpc-web h2", "rust"): CONNECT_NODE,
    ("connect h1.1 json", "rust"): {**CONNECT_NODE, **{case: H1 for case in BIDI}},
    ("connect h2", "rust"): CONNECT_NODE,
}
PAIRS = list(NOT_APPLICABLE)


def pairs_and_cases(security):
    """Every (client, server, security, case) cell, not-applicable ones skipped."""
    cells = []
    for client, server in PAIRS:
        for case in CASES:
            why = NOT_APPLICABLE[(client, server)].get(case)
            marks = [pytest.mark.skip(reason=f"not applicable: {why}")] if why else []
            cells.append(pytest.param(client, server, case, marks=marks, id=f"{client}-{server}-{security}-{case}"))
    return cells


@pytest.fixture(scope="session")
def certificates(tmp_path_factory):
    """A CA and a server certificate for localhost and 127.0.0.1, made now by openssl."""
    out = tmp_path_factory.mktemp("pki")
    run = lambda *args: subprocess.run(["openssl", *args], cwd=out, check=True, capture_output=True, timeout=60)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
        "-subj", "/CN=interop test CA", "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr")
    (out / "san").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
        "-extfile", "san", "-out", "server.pem")
    return out


class Server:
    """An interop server process: where it listens, and its metrics when it has them."""

    def __init__(self, command, cwd=ROOT):
        self.process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, text=True)
        first = self.process.stdout.readline().strip()
        assert re.fullmatch(r".+:\d+", first), f"{command[0]} printed {first!r}"
        self.port = int(first.rsplit(":", 1)[1])
        self.metrics = None
        if "--metrics_port" in command:
            self.metrics = f"http://{self.process.stdout.readline().strip()}/metrics"

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=20)

    def samples(self) -> dict[str, float]:
        with urllib.request.urlopen(self.metrics, timeout=10) as answer:
            text = answer.read().decode()
        return {name: float(value) for name, value in
                (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))}


def start(server: str, security: str, certificates) -> Server:
    tls = ["--use_tls", "true", "--tls_cert_file", str(certificates / "server.pem"),
           "--tls_key_file", str(certificates / "server.key")] if security == "tls" else []
    if server == "rust":
        binary = EXAMPLES / "interop_server"
        assert binary.exists(), f"build the examples first (cargo build --bins --examples): {binary}"
        return Server([str(binary), "--port", "0", "--metrics_port", "0", *tls])
    if server == "grpcio":
        return Server([sys.executable, str(TESTING / "server.py"), "--port", "0", *tls], cwd=TESTING)
    return Server(["node", "interop-server.mjs", "--port", "0", *tls], cwd=NODE)


@pytest.fixture(scope="module")
def servers(certificates):
    """Each server and security, started on first use and stopped at the end."""
    started = {}

    def get(server: str, security: str) -> Server:
        if (server, security) not in started:
            started[(server, security)] = start(server, security, certificates)
        return started[(server, security)]

    yield get
    for server in started.values():
        server.stop()


@pytest.fixture(scope="module")
def descriptor(tmp_path_factory):
    path = tmp_path_factory.mktemp("descriptor") / "all.binpb"
    subprocess.run([BUF, "build", "-o", str(path)], cwd=ROOT, check=True, timeout=120)
    return path


def connection(security, certificates):
    """The client flags grpc's interop clients take, for localhost."""
    flags = ["--server_host", "localhost"]
    if security == "tls":
        flags += ["--use_tls", "true", "--use_test_ca", "true", "--ca_file", str(certificates / "ca.pem")]
    return flags


def run_client(client, cases, port, security, certificates, descriptor) -> dict[str, tuple[bool, str]]:
    """Runs `cases` with `client` against the server on `port`: for each,
    whether it passed, and why not. The Node clients run them all in one
    process; the others one by one."""
    if client in ("rust", "grpcio"):
        return {case: run_one(client, case, port, security, certificates) for case in cases}
    tls = connection(security, certificates) if client == "grpc-js" else []
    if client == "grpc-js":
        command = ["node", "interop-client.mjs", *tls, "--server_port", str(port)]
    else:
        protocol, version, *json_format = client.split()
        scheme = "https" if security == "tls" else "http"
        command = ["node", "interop-connect.mjs", "--descriptor", str(descriptor),
                   "--base_url", f"{scheme}://localhost:{port}", "--protocol", protocol,
                   "--http", version.removeprefix("h"), *(["--json"] if json_format else [])]
        if security == "tls":
            command += ["--ca_file", str(certificates / "ca.pem")]
    done = subprocess.run([*command, "--test_case", ",".join(cases)], cwd=NODE, capture_output=True, text=True,
                          timeout=300)
    results = {r["case"]: (r["ok"], r.get("why", "")) for r in
               (json.loads(line) for line in done.stdout.splitlines() if line.startswith("{"))}
    missing = done.stderr.strip() or "no result"
    return {case: results.get(case, (False, missing)) for case in cases}


def run_one(client, case, port, security, certificates) -> tuple[bool, str]:
    """Runs `case` with the Rust or the grpcio client."""
    if client == "rust":
        done = subprocess.run([str(EXAMPLES / "interop_client"), *connection(security, certificates),
                               "--server_port", str(port), "--test_case", case],
                              capture_output=True, text=True, timeout=120)
        return done.returncode == 0, done.stderr.strip()
    if client == "grpcio":
        import client as grpcio_client
        import grpc
        try:
            grpcio_client.run(case, host="localhost", port=port, use_tls=security == "tls",
                              ca_file=str(certificates / "ca.pem"), host_override=None)
            return True, ""
        except (grpcio_client.Failed, grpc.RpcError) as err:
            return False, str(err)
    raise ValueError(client)


def protocol_of(client: str) -> str:
    return client.split()[0] if client.startswith(("grpc-web", "connect")) else "grpc"


def ended(server: Server, method: str, protocol: str) -> float:
    """Calls of `method` over `protocol` the server has ended, whatever their status."""
    prefix = (f'grpc_server_call_duration_seconds_count{{grpc_method="grpc.testing.TestService/{method}",'
              f'protocol="{protocol}",')
    return sum(value for name, value in server.samples().items() if name.startswith(prefix))


@pytest.fixture(scope="module")
def batches(servers, certificates, descriptor):
    """The cases each client runs at once against each server (all but the
    cancellation ones against the Rust server, which run one by one),
    run on first use."""
    done = {}

    def get(client, server_name, security):
        key = (client, server_name, security)
        if key not in done:
            cases = [case for case in CASES if case not in NOT_APPLICABLE[(client, server_name)]
                     and not (server_name == "rust" and case in CANCELLED)]
            port = servers(server_name, security).port
            done[key] = run_client(client, cases, port, security, certificates, descriptor)
        return done[key]

    return get


def check_case(client, server_name, case, security, servers, batches, certificates, descriptor):
    server = servers(server_name, security)
    method = CANCELLED.get(case) if server_name == "rust" else None
    protocol = protocol_of(client)
    if not method:
        passed, why = batches(client, server_name, security)[case]
        assert passed, f"{case}: {why}"
        return
    before = ended(server, method, protocol)
    passed, why = run_client(client, [case], server.port, security, certificates, descriptor)[case]
    assert passed, f"{case}: {why}"
    # The server ended the call the client cancelled, and runs nothing.
    deadline = time.monotonic() + 5
    while ended(server, method, protocol) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ended(server, method, protocol) == before + 1, f"{case}: the server did not end it"
    assert server.samples()["search_server_calls_in_flight"] == 0, f"{case}: a call left in flight"


@pytest.mark.parametrize("client, server, case", pairs_and_cases("plaintext"))
def test_plaintext(client, server, case, servers, batches, certificates, descriptor):
    check_case(client, server, case, "plaintext", servers, batches, certificates, descriptor)


@pytest.mark.parametrize("client, server, case", pairs_and_cases("tls"))
def test_tls(client, server, case, servers, batches, certificates, descriptor):
    check_case(client, server, case, "tls", servers, batches, certificates, descriptor)
