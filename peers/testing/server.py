"""gRPC's interop TestService on grpcio (PyPI): the server side of the cross
tests, for the Rust interop client to run its cases against.

    python peers/testing/server.py --port 0 [--use_tls true --tls_cert_file F --tls_key_file K]

Prints `HOST:PORT` once it listens; stops on SIGTERM or Ctrl-C.

What grpcio's server API cannot do is left out, and the cross tests do not
run the cases that need it: it never says whether a request message arrived
compressed, so `expect_compressed` is not checked (client_compressed_unary,
client_compressed_streaming). It does choose compression per call and per
message (`response_compressed`, `ResponseParameters.compressed`).
"""

import argparse
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

import contract as pb


def boolean(text: str) -> bool:
    return text.lower() in ("true", "1", "yes")


def echo_metadata(context) -> None:
    """Echo Metadata: the initial value in the headers, the binary one in the trailers."""
    metadata = dict(context.invocation_metadata())
    if pb.ECHO_INITIAL in metadata:
        context.send_initial_metadata(((pb.ECHO_INITIAL, metadata[pb.ECHO_INITIAL]),))
    if pb.ECHO_TRAILING in metadata:
        context.set_trailing_metadata(((pb.ECHO_TRAILING, metadata[pb.ECHO_TRAILING]),))


def echo_status(status, context) -> None:
    """Echo Status: ends the call with the status asked for, if any."""
    if status.code != 0:
        code = next(c for c in grpc.StatusCode if c.value[0] == status.code)
        context.abort(code, status.message)


def payload(size: int):
    return pb.Payload(body=bytes(size))


def unary_call(request, context):
    echo_metadata(context)
    if request.HasField("response_status"):
        echo_status(request.response_status, context)
    if request.HasField("response_compressed"):
        wanted = grpc.Compression.Gzip if request.response_compressed.value else grpc.Compression.NoCompression
        context.set_compression(wanted)
    return pb.SimpleResponse(payload=payload(request.response_size))


def answers(requests, context):
    """One answer per ResponseParameters of each request, in order."""
    compressing = False
    for request in requests:
        if request.HasField("response_status"):
            echo_status(request.response_status, context)
        for parameters in request.response_parameters:
            if parameters.interval_us:
                time.sleep(parameters.interval_us / 1e6)
            if parameters.HasField("compressed"):
                if parameters.compressed.value and not compressing:
                    context.set_compression(grpc.Compression.Gzip)
                    compressing = True
                if not parameters.compressed.value:
                    context.disable_next_message_compression()
            yield pb.StreamingOutputCallResponse(payload=payload(parameters.size))


def streaming_output_call(request, context):
    echo_metadata(context)
    yield from answers([request], context)


def full_duplex_call(requests, context):
    echo_metadata(context)
    yield from answers(requests, context)


def half_duplex_call(requests, context):
    echo_metadata(context)
    yield from answers(list(requests), context)


def streaming_input_call(requests, context):
    echo_metadata(context)
    size = sum(len(request.payload.body) for request in requests)
    return pb.StreamingInputCallResponse(aggregated_payload_size=size)


def handler(kind, behaviour, method):
    request, response = pb.METHODS[method]
    return kind(behaviour, request_deserializer=request.FromString, response_serializer=response.SerializeToString)


HANDLERS = {
    "EmptyCall": handler(grpc.unary_unary_rpc_method_handler, lambda request, context: pb.Empty(), "EmptyCall"),
    "UnaryCall": handler(grpc.unary_unary_rpc_method_handler, unary_call, "UnaryCall"),
    "CacheableUnaryCall": handler(grpc.unary_unary_rpc_method_handler, unary_call, "CacheableUnaryCall"),
    "StreamingOutputCall": handler(grpc.unary_stream_rpc_method_handler, streaming_output_call, "StreamingOutputCall"),
    "StreamingInputCall": handler(grpc.stream_unary_rpc_method_handler, streaming_input_call, "StreamingInputCall"),
    "FullDuplexCall": handler(grpc.stream_stream_rpc_method_handler, full_duplex_call, "FullDuplexCall"),
    "HalfDuplexCall": handler(grpc.stream_stream_rpc_method_handler, half_duplex_call, "HalfDuplexCall"),
    # UnimplementedCall is left out: grpcio answers UNIMPLEMENTED.
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--use_tls", type=boolean, default=False)
    parser.add_argument("--tls_cert_file")
    parser.add_argument("--tls_key_file")
    flags = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(pb.SERVICE, HANDLERS),))
    address = f"{flags.host}:{flags.port}"
    if flags.use_tls:
        with open(flags.tls_key_file, "rb") as key, open(flags.tls_cert_file, "rb") as cert:
            credentials = grpc.ssl_server_credentials(((key.read(), cert.read()),))
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    server.start()
    print(f"{flags.host}:{port}", flush=True)
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
