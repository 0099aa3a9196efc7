"""The server's three protocols driven by clients no one here wrote.

- `buf curl` (the buf CLI that generates `gen/`) with `--protocol connect`,
  `grpcweb` and `grpc`, over HTTP/1.1 and HTTP/2, on every RPC kind it can
  carry, and with server reflection instead of the local schema.

Run by `.ci/run` (which installs buf), not by `cargo test`:

    bash tools/install.sh && cargo build --bins && python -m pytest peers/test_protocols.py

`SEARCH_SERVER` names the server binary (default: the debug build in cargo's
target directory); `BUF` the buf binary (default: `buf` on PATH, else
~/.local/bin/buf); see conftest.py.
"""

import json
import subprocess

import pytest
from conftest import BUF, ROOT

SERVICE = "search.v1.SearchService"


def buf_curl(url: str, method: str, data: str, *flags: str) -> list[dict]:
    """Runs `buf curl` and returns the response messages it printed."""
    command = [BUF, "curl", *flags, "-d", data, f"{url}/{SERVICE}/{method}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{command}: {done.stderr}"
    decoder, text, messages = json.JSONDecoder(), done.stdout.strip(), []
    while text:
        message, end = decoder.raw_decode(text)
        messages.append(message)
        text = text[end:].strip()
    return messages


# (protocol flags, the RPC kinds the protocol and HTTP version can carry)
PROTOCOLS = [
    (["--protocol", "connect"], {"unary", "server", "client"}),
    (["--protocol", "connect", "--http2-prior-knowledge"], {"unary", "server", "client", "bidi"}),
    (["--protocol", "grpcweb"], {"unary", "server"}),
    (["--protocol", "grpcweb", "--http2-prior-knowledge"], {"unary", "server"}),
    (["--protocol", "grpc", "--http2-prior-knowledge"], {"unary", "server", "client", "bidi"}),
]


@pytest.mark.parametrize("flags,kinds", PROTOCOLS, ids=[" ".join(f) for f, _ in PROTOCOLS])
@pytest.mark.parametrize("schema", [["--schema", "proto"], []], ids=["local schema", "reflection"])
def test_buf_curl_in_every_protocol(base_url, flags, kinds, schema):
    flags = [*schema, *flags]
    # buf curl leaves out fields at their default value (`"status": 0`).
    assert buf_curl(base_url, "Search", '{"query": "Banana"}', *flags) == [{"status": 1}]
    assert buf_curl(base_url, "Search", '{"query": "Apple"}', *flags) == [{}]
    if "server" in kinds:
        answers = buf_curl(base_url, "Scan", '{"text": "banana\\nxx BANANA"}', *flags)
        found = [(m["line"], m["column"], m.get("offset", "0")) for a in answers for m in a["matches"]]
        assert found == [("1", "1", "0"), ("2", "4", "10")]
    if "client" in kinds:
        answers = buf_curl(base_url, "Count", '{"queries": ["banana", "kiwi"]} {"queries": ["BANANA"]}', *flags)
        assert answers == [{"queries": "3", "matches": "2"}]
    if "bidi" in kinds:
        answers = buf_curl(base_url, "Classify", '{"queries": ["banana", "no"]} {"queries": ["BaNaNa"]}', *flags)
        assert [(a.get("firstIndex", "0"), a["statuses"]) for a in answers] == [("0", [1, 0]), ("2", [1])]


@pytest.mark.parametrize("protocol", ["connect", "grpcweb"])
def test_buf_curl_reports_an_oversized_request(base_url, protocol):
    """A request over the server's 4 MiB limit comes back as a status a user can act on."""
    command = [BUF, "curl", "--schema", "proto", "--protocol", protocol, "-d", "@-", f"{base_url}/{SERVICE}/Search"]
    big = json.dumps({"query": "b" * (5 << 20)})
    done = subprocess.run(command, cwd=ROOT, input=big, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "resource_exhausted" in done.stderr, done.stderr
    assert "--max-recv-bytes" in done.stderr, done.stderr
