#!/usr/bin/env python3
"""grpcio (PyPI) as the reference xDS client: a bounded run of Search calls
to one target, and one JSON line of what became of them.

    GRPC_XDS_BOOTSTRAP=bootstrap.json target/xds-venv/bin/python peers/xds/grpcio_client.py \\
        --target xds:///search --calls 3000 --replica 127.0.0.1:5001=127.0.0.1:6001 ...

The target is xds:///NAME (grpcio's own xDS resolver and balancers, fed by
the management server that the bootstrap names: --bootstrap, else
GRPC_XDS_BOOTSTRAP) or HOST:PORT (a plain channel, to Envoy say). The calls
go one after another on one channel, each with its own deadline, at most
--calls of them and for at most --seconds; --rate spaces them out.

The line on stdout:

    {"target": "xds:///search", "calls": 3000, "codes": {"OK": 3000}, "messages": {},
     "replicas": {"127.0.0.1:5001": 2391, ...}, "elapsed_s": 4.1}

"messages": the status message of the first call that ended with each code
other than OK. "replicas": the Search calls each --replica ADDRESS=METRICS started during
the run, from its /metrics before and after (so runs against the same
replicas must not overlap). Every --progress calls, a line on stderr:
{"progress": N, "codes": {...}}. SIGTERM ends the run after the call under
way, and the line tells of the calls made. Exit code 0 when the run happened,
whatever the calls' codes; 2 on a bad flag or a channel not ready in
--ready-timeout.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
from google.protobuf import message_factory

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "testing"))
from contract import descriptors  # noqa: E402

_POOL = descriptors("search/v1/search.proto")
SearchRequest = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("search.v1.SearchRequest"))
SearchResponse = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("search.v1.SearchResponse"))
SEARCH = "/search.v1.SearchService/Search"
METRIC = 'grpc_server_call_started_total{grpc_method="search.v1.SearchService/Search"'


def searches(metrics: str) -> int:
    """The Search calls a replica has started, from its /metrics at HOST:PORT."""
    text = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=5).read().decode()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines() if line.startswith(METRIC))


def run(channel, args, metadata, stop: threading.Event) -> dict:
    search = channel.unary_unary(SEARCH, request_serializer=SearchRequest.SerializeToString,
                                 response_deserializer=SearchResponse.FromString)
    request = SearchRequest(query=args.query)
    codes: dict[str, int] = {}
    messages: dict[str, str] = {}
    started = time.monotonic()
    for n in range(args.calls):
        now = time.monotonic()
        if now - started > args.seconds or stop.is_set():
            break
        if args.rate:
            # Open loop within one thread: each call at its time, none skipped.
            stop.wait(max(0.0, started + n / args.rate - now))
        try:
            search(request, timeout=args.deadline, metadata=metadata)
            code = "OK"
        except grpc.RpcError as e:
            code = e.code().name
            messages.setdefault(code, e.details() or "")
        codes[code] = codes.get(code, 0) + 1
        if args.progress and (n + 1) % args.progress == 0:
            print(json.dumps({"progress": n + 1, "codes": codes}), file=sys.stderr, flush=True)
    return {"calls": sum(codes.values()), "codes": codes, "messages": messages, "elapsed_s": round(time.monotonic() - started, 3)}


def replica(text: str) -> tuple[str, str]:
    address, _, metrics = text.partition("=")
    if not address or not metrics:
        raise argparse.ArgumentTypeError(f"{text!r} is not ADDRESS=METRICS_ADDRESS")
    return address, metrics


def header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name.lower(), value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="xds:///NAME or HOST:PORT")
    parser.add_argument("--bootstrap", help="grpc's xDS bootstrap file (else $GRPC_XDS_BOOTSTRAP)")
    parser.add_argument("--calls", type=int, default=1000, help="at most this many calls (1000)")
    parser.add_argument("--seconds", type=float, default=30, help="and for at most this long (30)")
    parser.add_argument("--rate", type=float, default=0, help="calls a second (0: each as the last ends)")
    parser.add_argument("--deadline", type=float, default=5, help="each call's deadline in seconds (5)")
    parser.add_argument("--query", default="banana", help="the query of every call")
    parser.add_argument("--metadata", type=header, action="append", default=[], metavar="NAME=VALUE",
                        help="a header on every call (repeat)")
    parser.add_argument("--replica", type=replica, action="append", default=[], metavar="ADDRESS=METRICS",
                        help="a replica to count calls of, and its metrics listener (repeat)")
    parser.add_argument("--ready-timeout", type=float, default=20,
                        help="seconds for the channel to become ready before the first call (0: no wait)")
    parser.add_argument("--progress", type=int, default=0, help="a progress line on stderr every N calls")
    args = parser.parse_args()
    if args.calls < 0 or args.seconds <= 0 or args.rate < 0 or args.deadline <= 0:
        parser.error("--calls, --seconds, --rate and --deadline are not negative, and the last two not 0")
    if args.bootstrap:
        os.environ["GRPC_XDS_BOOTSTRAP"] = args.bootstrap
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with grpc.insecure_channel(args.target) as channel:
        if args.ready_timeout:
            try:
                grpc.channel_ready_future(channel).result(timeout=args.ready_timeout)
            except grpc.FutureTimeoutError:
                print(f"grpcio_client: {args.target} not ready in {args.ready_timeout} s", file=sys.stderr)
                return 2
        before = {address: searches(metrics) for address, metrics in args.replica}
        report = run(channel, args, args.metadata, stop)
    after = {address: searches(metrics) for address, metrics in args.replica}
    report = {"target": args.target, **report, "replicas": {a: after[a] - before[a] for a in after}}
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
