"""A real OTLP trace receiver for the tests: the collector's
opentelemetry.proto.collector.trace.v1.TraceService/Export over gRPC (grpcio),
and the HTTP/protobuf path /v1/traces, both recording every span they get.

Run alone, it prints its two endpoints, then each span as one JSON line:
    python peers/peer/otlp_receiver.py
"""

import json
import socket
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def _value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def _attributes(key_values):
    return {kv.key: _value(kv.value) for kv in key_values}


def spans_of(request):
    """The spans of an ExportTraceServiceRequest, each a plain dict."""
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append({
                    "service": resource.get("service.name"),
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "trace_state": span.trace_state,
                    "name": span.name,
                    "kind": KINDS.get(span.kind, str(span.kind)),
                    "attributes": _attributes(span.attributes),
                    "events": [{"name": e.name, "attributes": _attributes(e.attributes)} for e in span.events],
                    "status": span.status.code,
                })
    return spans


class Receiver:
    """Both endpoints on 127.0.0.1, free ports; `spans` as they arrive. With
    `tls` (PEM key and certificate chain, as bytes), gRPC is served over TLS."""

    def __init__(self, tls=None):
        self.spans = []
        self.exports = 0
        self._lock = threading.Condition()
        receiver = self

        class Service(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):
                receiver._record(request)
                return trace_service_pb2.ExportTraceServiceResponse()

        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self._grpc)
        if tls:
            credentials = grpc.ssl_server_credentials([tls])
            self.grpc_port = self._grpc.add_secure_port("127.0.0.1:0", credentials)
        else:
            self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._scheme = "https" if tls else "http"

        class Http(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path != "/v1/traces" or self.headers.get("content-type") != "application/x-protobuf":
                    self.send_error(404 if self.path != "/v1/traces" else 415)
                    return
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver._record(request)
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Http)
        self.http_port = self._http.server_address[1]

    def _record(self, request):
        with self._lock:
            self.exports += 1
            self.spans.extend(spans_of(request))
            self._lock.notify_all()

    def start(self):
        self._grpc.start()
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self._grpc.stop(grace=None)
        self._http.shutdown()
        self._http.server_close()

    @property
    def grpc_endpoint(self):
        return f"{self._scheme}://localhost:{self.grpc_port}"

    @property
    def http_endpoint(self):
        return f"http://127.0.0.1:{self.http_port}"

    def wait_for(self, predicate, timeout=20.0):
        """The spans once `predicate(spans)` holds; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.spans):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"spans never matched; got {json.dumps(self.spans, indent=1)}")
                self._lock.wait(left)
            return list(self.spans)


class Silent:
    """A port that accepts connections and never answers on them."""

    def __init__(self):
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.port = self._socket.getsockname()[1]
        self._held = []
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stopped:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self._held.append(connection)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self._stopped = True
        self._socket.close()
        for connection in self._held:
            connection.close()


def main():
    receiver = Receiver().start()
    print(f"grpc {receiver.grpc_endpoint} http {receiver.http_endpoint}/v1/traces", flush=True)
    seen = 0
    try:
        while True:
            spans = receiver.wait_for(lambda spans: len(spans) > seen, timeout=3600)
            for span in spans[seen:]:
                print(json.dumps(span), flush=True)
            seen = len(spans)
    except KeyboardInterrupt:
        receiver.stop()


if __name__ == "__main__":
    main()
