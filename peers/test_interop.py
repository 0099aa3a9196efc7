"""Interop with the article's stack: grpcio from PyPI against the Rust server.

- The Python peer that mirrors the article (`peers/peer/`: grpc.aio, the
  article's path, messages, address and output) runs its `client.py` against
  the Rust server and prints the same `status=N` lines as against its own
  `server.py`.
- A seeded corpus of tricky strings gets the same answers from both servers
  and from Python's own `"banana" in query.lower()`.
- grpcio stubs generated from `proto/search/v1/search.proto` call all four v1 RPCs.
- All of it again with the channel's gzip and deflate compression, as grpcio
  users turn it on (`grpc.insecure_channel(..., compression=...)`).

Run by `.ci/run`, not by `cargo test` (which needs nothing but Rust):

    python -m pip install -r peers/requirements.txt
    cargo build --bins && python -m pytest peers

`SEARCH_SERVER` names the server binary (default: the debug build in cargo's
target directory, see conftest.py). Both servers listen on the article's
fixed `localhost:8100`, one after the other.
"""

import os
import random
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from conftest import ROOT, SERVER
from grpc_tools import protoc

PEER = ROOT / "peers" / "peer"
ADDRESS = "localhost:8100"  # the article's address, the peer's default

# Queries whose answers people would check by hand.
QUERIES = [
    "Banana",
    "Apple",
    "",
    "BANANA",
    "I like bananas",
    "ｂａｎａｎａ",  # full-width: lowercases to full-width, not ASCII
    "İbanana",  # Turkish dotted capital I lowercases to two chars
    "bana\nna",
    "\u212abanana",  # Kelvin sign
    "banan\u0301a",  # combining acute inside the word
]


def expected(query: str) -> int:
    """The article's rule: Python's own `in` on the lowered query."""
    return 1 if "banana" in query.lower() else 0


def corpus(size: int = 3000) -> list[str]:
    """Seeded random strings over case variants and Unicode neighbours."""
    alphabet = list("bBaAnNxX \n") + ["İ", "ı", "\u212a", "ß", "Σ", "ς", "ａ", "Ｂ", "\u0301", "é", "🍌", "\r"]
    rng = random.Random(20261123)
    strings = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for _ in range(size)]
    strings += ["banana" * 1000, "x" * 100_000 + "BaNaNa", "banan" * 10_000]
    assert any(expected(s) for s in strings) and not all(expected(s) for s in strings)
    return strings


@pytest.fixture(scope="session")
def stubs(tmp_path_factory) -> Path:
    """search_pb2 (the peer's messages) and search.v1 stubs, made by grpc_tools."""
    out = tmp_path_factory.mktemp("stubs")
    include = str(Path(protoc.__file__).parent / "_proto")
    for proto_path, proto in [(PEER, "search.proto"), (ROOT / "proto", "search/v1/search.proto")]:
        args = ["protoc", f"-I{proto_path}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", proto]
        assert protoc.main(args) == 0, f"protoc failed on {proto}"
    sys.path.insert(0, str(out))
    return out


@contextmanager
def running(command: list[str], stubs: Path, exit_code: int | None):
    """Runs a server while the block runs; it must print the address, as the article shows.

    On leaving, the server gets SIGTERM; `exit_code` is what it must exit with
    (None: not checked).
    """
    env = dict(os.environ, PYTHONPATH=str(stubs), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True)
    try:
        line = process.stdout.readline().strip()
        assert line == ADDRESS, f"{command[0]} printed {line!r}"
        yield process
    finally:
        process.terminate()
        code = process.wait(timeout=10)
    assert exit_code is None or code == exit_code, f"{command[0]} exited {code}"


def rust_server(stubs: Path):
    assert SERVER.exists(), f"build the server first (cargo build --bins): {SERVER}"
    return running([str(SERVER), "--listen", ADDRESS], stubs, exit_code=0)


def python_server(stubs: Path):
    return running([sys.executable, str(PEER / "server.py")], stubs, exit_code=0)


def peer_client(query: str, stubs: Path) -> str:
    """Runs the peer's `python client.py QUERY` and returns its stdout."""
    env = dict(os.environ, PYTHONPATH=str(stubs))
    done = subprocess.run(
        [sys.executable, str(PEER / "client.py"), query], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def legacy_answers(queries: list[str], compression=None) -> list[int]:
    """Calls `/Search/search` for each query, the article's way (path and messages)."""
    import search_pb2

    with grpc.insecure_channel(ADDRESS, compression=compression) as channel:
        search = channel.unary_unary(
            "/Search/search",
            request_serializer=search_pb2.SearchParam.SerializeToString,
            response_deserializer=search_pb2.SearchStatus.FromString,
        )
        return [search(search_pb2.SearchParam(query=q), timeout=10).status for q in queries]


def test_peer_client_gets_the_same_lines_from_both_servers(stubs):
    with python_server(stubs):
        python_lines = [peer_client(q, stubs) for q in QUERIES]
    assert python_lines == [f"status={expected(q)}\n" for q in QUERIES]
    with rust_server(stubs):
        rust_lines = [peer_client(q, stubs) for q in QUERIES]
    assert rust_lines == python_lines


COMPRESSIONS = [None, grpc.Compression.Gzip, grpc.Compression.Deflate]


@pytest.mark.parametrize("compression", COMPRESSIONS, ids=["plain", "gzip", "deflate"])
def test_python_server_and_rust_server_agree_on_a_corpus(stubs, compression):
    """Every request compressed when the channel says so, as grpcio users set it."""
    queries = corpus()
    with python_server(stubs):
        python = legacy_answers(queries, compression)
    assert python == [expected(q) for q in queries]
    with rust_server(stubs):
        assert legacy_answers(queries, compression) == python


@pytest.mark.parametrize("compression", COMPRESSIONS, ids=["plain", "gzip", "deflate"])
def test_v1_rpcs_from_grpcio(stubs, compression):
    from search.v1 import search_pb2, search_pb2_grpc

    with rust_server(stubs), grpc.insecure_channel(ADDRESS, compression=compression) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        for query in QUERIES:
            assert stub.Search(search_pb2.SearchRequest(query=query), timeout=10).status == expected(query)

        batches = [QUERIES[:4], [], QUERIES[4:]]
        responses = list(
            stub.Classify(iter(search_pb2.ClassifyRequest(queries=b) for b in batches), timeout=10)
        )
        assert [r.first_index for r in responses] == [0, 4, 4]
        assert [s for r in responses for s in r.statuses] == [expected(q) for q in QUERIES]

        summary = stub.Count(iter(search_pb2.CountRequest(queries=b) for b in batches), timeout=10)
        assert (summary.queries, summary.matches) == (len(QUERIES), sum(map(expected, QUERIES)))

        text = "banana\nno\nxx BANANA\n"
        matches = [m for r in stub.Scan(search_pb2.ScanRequest(text=text), timeout=10) for m in r.matches]
        assert [(m.line, m.column, m.offset) for m in matches] == [(1, 1, 0), (3, 4, 13)]

        # An answer large enough to be compressed back (grpcio takes gzip).
        matches = [m for r in stub.Scan(search_pb2.ScanRequest(text="banana " * 2000), timeout=10) for m in r.matches]
        assert [m.offset for m in matches] == [7 * i for i in range(2000)]


def test_no_code_point_but_b_a_n_lowercases_to_b_a_n():
    """The Rust matcher's premise, checked against Python's own Unicode tables."""
    offenders = [
        hex(cp)
        for cp in range(0x110000)
        if not 0xD800 <= cp <= 0xDFFF
        and chr(cp) not in "bBaAnN"
        and any(c in "ban" for c in chr(cp).lower())
    ]
    assert offenders == []


def mistyped_answers() -> list[tuple[str, bytes]]:
    """`/Search/search` with field 1 sent as a varint (the wrong wire type),
    alone and before a query: each answer's code and raw message."""
    answers = []
    with grpc.insecure_channel(ADDRESS) as channel:
        search = channel.unary_unary("/Search/search", request_serializer=None, response_deserializer=None)
        for request in [b"\x08\x01", b"\x08\x01\x0a\x06banana"]:
            try:
                answers.append(("OK", search(request, timeout=10)))
            except grpc.RpcError as err:
                answers.append((err.code().name, b""))
    return answers


def test_a_field_of_the_wrong_wire_type_is_unknown_to_both_servers(stubs):
    """protobuf's runtimes keep such a field as unknown and answer: the
    article's Python server does, and so does the Rust one."""
    with python_server(stubs):
        python = mistyped_answers()
    assert python == [("OK", b""), ("OK", b"\x08\x01")], python
    with rust_server(stubs):
        assert mistyped_answers() == python
