#!/usr/bin/env python3
"""An xDS management server for the tests: ADS (envoy.service.discovery.v3,
state of the world) on 127.0.0.1, serving the resources of a scenario file
(resources.py gives its schema) to gRPC clients and to Envoy at once.

    target/xds-venv/bin/python peers/xds/control_plane.py --scenario scenario.json --log requests.jsonl

It prints its address (127.0.0.1:PORT) on its first line once it serves.
It polls the file's modification time, and when its content changes it
makes the resources anew under the next version, and pushes each stream
every resource type whose resources for that stream changed. A scenario it
cannot read or make into resources is logged and skipped: the last good one
stays served.

Who asks: a node whose user_agent_name is "envoy", or whose id starts with
"envoy", gets Envoy's form of the resources; every other node gets the
gRPC form (an api_listener).

What it answers: the first request for a type on a stream, and every
request whose resource names differ from the last ones, with the resources
the stream subscribed to: LDS and CDS every named one there is (all of them
for a wildcard: no names, or "*"), RDS and EDS the named ones it has. A
request whose nonce is not the last one sent for its type is stale and
ignored, as the xDS protocol says. A request with an error_detail is a NACK.

The log (--log): one JSON object a line, appended, each with "time" (Unix
seconds) and "event":
  version     a scenario loaded: "version";
  scenario    a scenario refused: "error";
  connect     a stream's first request: "node", "client" (grpc or envoy), "peer";
  request     a request with no nonce (a subscription), ack, nack, stale: the
              others; each with "node", "client", "type" (lds, rds, cds, eds),
              "version" (the request's version_info), "nonce", "names", and
              for a nack "error" (error_detail's message);
  response    what was sent: "node", "type", "version", "nonce", "names";
  pushed      a stream's push of a new version done: "node", "version", and
              "nonces", the nonce of each type it sent ({} when none changed);
  disconnect  a stream ended: "node".
"""

import argparse
import hashlib
import itertools
import json
import os
import queue
import secrets
import signal
import sys
import threading
import time
from concurrent import futures

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

import resources as xds

CHANGED, END = object(), object()


class Log:
    """JSON lines appended to a file (nowhere without one), one writer at a time."""

    def __init__(self, path: str | None):
        self.file = open(path, "a", encoding="utf-8") if path else None
        self.lock = threading.Lock()

    def write(self, event: str, **fields) -> None:
        if self.file is None:
            return
        line = json.dumps({"time": round(time.time(), 3), "event": event, **fields})
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()


class Scenario:
    """The scenario file, its resources under a version, and the streams to tell of a change."""

    def __init__(self, path: str, log: Log):
        self.path, self.log = path, log
        self.lock = threading.Lock()
        self.version, self.snapshot, self.digest, self.seen = 0, None, None, None
        self.error = ""
        self.streams: set[queue.Queue] = set()

    def reload(self) -> bool:
        """Reads the file if it changed; True when it made a new version."""
        try:
            stat = os.stat(self.path)
            seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if seen == self.seen:
                return False
            self.seen = seen
            with open(self.path, "rb") as file:
                text = file.read()
            digest = hashlib.sha256(text).hexdigest()
            if digest == self.digest:
                return False
            snapshot = xds.snapshot(json.loads(text))
        except (OSError, ValueError) as e:
            # ValueError: JSON's errors and ScenarioError (a file half written stays here too).
            self.error = f"{self.path}: {e}"
            self.log.write("scenario", error=self.error)
            return False
        with self.lock:
            self.version += 1
            self.snapshot, self.digest = snapshot, digest
            streams = list(self.streams)
        self.log.write("version", version=str(self.version))
        for stream in streams:
            stream.put(CHANGED)
        return True

    def watch(self, stop: threading.Event, every: float) -> None:
        while not stop.wait(every):
            self.reload()

    def current(self):
        with self.lock:
            return str(self.version), self.snapshot

    def subscribe(self, stream: queue.Queue) -> None:
        with self.lock:
            self.streams.add(stream)

    def unsubscribe(self, stream: queue.Queue) -> None:
        with self.lock:
            self.streams.discard(stream)


def client_kind(node) -> str:
    return "envoy" if node.user_agent_name == "envoy" or node.id.startswith("envoy") else "grpc"


class Stream:
    """One ADS stream: what it subscribed to and what it was last sent, per type."""

    def __init__(self, scenario: Scenario, log: Log, peer: str):
        self.scenario, self.log, self.peer = scenario, log, peer
        self.node, self.kind = "", "grpc"
        self.names: dict[str, frozenset | None] = {}  # None: a wildcard
        self.sent: dict[str, dict] = {}  # nonce, digest
        self.prefix, self.nonces = secrets.token_hex(4), itertools.count(1)
        self.queue: queue.Queue = queue.Queue()

    def serve(self, requests, context):
        """The responses of the stream, as grpcio's handler yields them."""
        reader = threading.Thread(target=self.read, args=(requests,), daemon=True)
        reader.start()
        context.add_callback(lambda: self.queue.put(END))
        self.scenario.subscribe(self.queue)
        try:
            while (item := self.queue.get()) is not END:
                if item is CHANGED:
                    yield from self.push()
                else:
                    yield from self.handle(item)
        finally:
            self.scenario.unsubscribe(self.queue)
            self.log.write("disconnect", node=self.node)

    def read(self, requests) -> None:
        try:
            for request in requests:
                self.queue.put(request)
        except Exception:  # noqa: BLE001 - the stream ended, however it did
            pass
        finally:
            self.queue.put(END)

    def handle(self, request):
        if request.HasField("node") and not self.node:
            self.node, self.kind = request.node.id, client_kind(request.node)
            self.log.write("connect", node=self.node, client=self.kind, peer=self.peer)
        url = request.type_url
        names = frozenset(request.resource_names)
        if url in (xds.LISTENER, xds.CLUSTER) and (not names or "*" in names):
            names = None
        last = self.sent.get(url)
        nonce = request.response_nonce
        if request.HasField("error_detail"):
            event = "nack"
        else:
            event = "ack" if nonce else "request"
        if last and nonce and nonce != last["nonce"]:
            event = "stale"
        fields = {"node": self.node, "client": self.kind, "type": xds.SHORT.get(url, url),
                  "version": request.version_info, "nonce": nonce, "names": sorted(names or [])}
        if event == "nack":
            fields["error"] = request.error_detail.message
        self.log.write(event, **fields)
        if url not in xds.TYPES or event == "stale":
            return
        if last is None or names != self.names.get(url):
            self.names[url] = names
            yield self.respond(url, *self.scenario.current())

    def push(self):
        """Every subscribed type whose resources changed, under the new version."""
        version, snapshot = self.scenario.current()
        nonces = {}
        for url in [u for u in xds.TYPES if u in self.names]:
            if self.chosen(snapshot, url)[1] != self.sent[url]["digest"]:
                response = self.respond(url, version, snapshot)
                nonces[xds.SHORT[url]] = response.nonce
                yield response
        self.log.write("pushed", node=self.node, version=version, nonces=nonces)

    def chosen(self, snapshot, url: str):
        """The resources of `url` this stream subscribed to, and their digest."""
        have = snapshot[self.kind][url]
        names = self.names[url]
        picked = sorted(have.items()) if names is None else [(n, have[n]) for n in sorted(names) if n in have]
        digest = hashlib.sha256()
        for name, resource in picked:
            digest.update(name.encode() + b"\0" + resource.value)
        return picked, digest.hexdigest()

    def respond(self, url: str, version: str, snapshot) -> discovery_pb2.DiscoveryResponse:
        picked, digest = self.chosen(snapshot, url)
        nonce = f"{self.prefix}-{next(self.nonces)}"
        self.sent[url] = {"nonce": nonce, "digest": digest}
        self.log.write("response", node=self.node, type=xds.SHORT[url], version=version, nonce=nonce,
                       names=[name for name, _ in picked])
        return discovery_pb2.DiscoveryResponse(version_info=version, type_url=url, nonce=nonce,
                                               resources=[resource for _, resource in picked])


class Discovery(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    """ADS, state of the world (the delta variant is left unimplemented)."""

    def __init__(self, scenario: Scenario, log: Log):
        self.scenario, self.log = scenario, log

    def StreamAggregatedResources(self, request_iterator, context):  # noqa: N802 - grpcio's name
        yield from Stream(self.scenario, self.log, context.peer()).serve(request_iterator, context)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", required=True, help="the scenario file (JSON; resources.py's schema)")
    parser.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--log", help="append one JSON line per request and response here")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between looks at the scenario file")
    args = parser.parse_args()
    log = Log(args.log)
    scenario = Scenario(args.scenario, log)
    if not scenario.reload():
        print(f"control_plane: {scenario.error}", file=sys.stderr)
        return 2
    # One worker per open stream: the tests open a handful.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=[("grpc.so_reuseport", 0)])
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(Discovery(scenario, log), server)
    try:
        port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    except RuntimeError as e:
        print(f"control_plane: cannot listen on 127.0.0.1:{args.port}: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    print(f"127.0.0.1:{port}", flush=True)
    watcher = threading.Thread(target=scenario.watch, args=(stop, args.poll), daemon=True)
    watcher.start()
    stop.wait()
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
