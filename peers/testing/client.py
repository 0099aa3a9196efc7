"""gRPC's interop test cases on grpcio (PyPI): the client side of the cross
tests, run against the Rust interop server.

    python peers/testing/client.py --server_port N --test_case large_unary [--use_tls true --ca_file CA]

Exit code 0 when the case passes, 1 when it does not (saying why).

What grpcio's client API cannot do is left out: it compresses a whole call
or none of it (no client_compressed_streaming, which mixes the two in one
call), and never says whether an answer came compressed (no
server_compressed_unary nor server_compressed_streaming). `CASES` lists
what it runs.
"""

import argparse
import queue
import sys
import time

import grpc

import contract as pb

REQUEST_SIZE, RESPONSE_SIZE = 271_828, 314_159
STREAM_SIZES, ANSWER_SIZES = [27_182, 8, 1_828, 45_904], [31_415, 9, 2_653, 58_979]
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
# How long a call runs before cancel_after_begin cancels it: long enough
# for its headers to reach the server, which the cross tests check.
BEGUN = 0.2


class Failed(Exception):
    """The case did not pass."""


def check(condition: bool, why: str) -> None:
    if not condition:
        raise Failed(why)


def zeros(size: int):
    return pb.Payload(body=bytes(size))


def check_payload(payload, size: int) -> None:
    check(len(payload.body) == size, f"expected a payload of {size} bytes, got {len(payload.body)}")
    check(payload.body == bytes(size), "the payload is not all zeros")


def expect_code(call, code: grpc.StatusCode, message: str | None = None) -> None:
    try:
        call()
    except grpc.RpcError as err:
        check(err.code() == code, f"expected {code.name}, got {err.code().name}: {err.details()!r}")
        if message is not None:
            check(err.details() == message, f"expected the message {message!r}, got {err.details()!r}")
        return
    raise Failed(f"expected {code.name}, got OK")


class Pipe:
    """A request iterator the case writes into as it goes."""

    def __init__(self):
        self.queue = queue.Queue()

    def add(self, item) -> None:
        self.queue.put(item)

    def close(self) -> None:
        self.queue.put(None)

    def __iter__(self):
        return self

    def __next__(self):
        item = self.queue.get()
        if item is None:
            raise StopIteration
        return item


class Cases:
    """Each case, by its name; `stub(method)` calls the TestService."""

    def __init__(self, channel):
        self.channel = channel

    def stub(self, method: str, service: str = pb.SERVICE):
        request, response = pb.METHODS[method]
        kind = {
            "StreamingOutputCall": self.channel.unary_stream,
            "StreamingInputCall": self.channel.stream_unary,
            "FullDuplexCall": self.channel.stream_stream,
            "HalfDuplexCall": self.channel.stream_stream,
        }.get(method, self.channel.unary_unary)
        return kind(f"/{service}/{method}", request_serializer=request.SerializeToString,
                    response_deserializer=response.FromString)

    def large_request(self, **fields):
        return pb.SimpleRequest(response_size=RESPONSE_SIZE, payload=zeros(REQUEST_SIZE), **fields)

    def empty_unary(self):
        check(isinstance(self.stub("EmptyCall")(pb.Empty(), timeout=10), pb.Empty), "not an Empty")

    def large_unary(self):
        check_payload(self.stub("UnaryCall")(self.large_request(), timeout=10).payload, RESPONSE_SIZE)

    def client_compressed_unary(self):
        unary = self.stub("UnaryCall")
        expect = lambda value: self.large_request(expect_compressed=pb.BoolValue(value=value))
        # The probe: expected compressed, sent plain.
        expect_code(lambda: unary(expect(True), timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
        answer = unary(expect(True), timeout=10, compression=grpc.Compression.Gzip)
        check_payload(answer.payload, RESPONSE_SIZE)
        answer = unary(expect(False), timeout=10, compression=grpc.Compression.NoCompression)
        check_payload(answer.payload, RESPONSE_SIZE)

    def client_streaming(self):
        requests = (pb.StreamingInputCallRequest(payload=zeros(size)) for size in STREAM_SIZES)
        answer = self.stub("StreamingInputCall")(requests, timeout=10)
        check(answer.aggregated_payload_size == 74_922, f"aggregated {answer.aggregated_payload_size}")

    def server_streaming(self):
        request = pb.StreamingOutputCallRequest(
            response_parameters=[pb.ResponseParameters(size=size) for size in ANSWER_SIZES])
        sizes = [len(answer.payload.body) for answer in self.stub("StreamingOutputCall")(request, timeout=10)]
        check(sizes == ANSWER_SIZES, f"answers of {sizes} bytes")

    def ping_pong(self):
        pipe = Pipe()
        answers = self.stub("FullDuplexCall")(pipe, timeout=10)
        for size, answer_size in zip(STREAM_SIZES, ANSWER_SIZES):
            pipe.add(pb.StreamingOutputCallRequest(
                response_parameters=[pb.ResponseParameters(size=answer_size)], payload=zeros(size)))
            check_payload(next(answers).payload, answer_size)
        pipe.close()
        check(next(answers, None) is None, "an answer more than the four asked for")

    def empty_stream(self):
        answers = list(self.stub("FullDuplexCall")(iter([]), timeout=10))
        check(answers == [], f"{len(answers)} answers to none")

    def cancel_after_begin(self):
        pipe = Pipe()
        future = self.stub("StreamingInputCall").future(pipe, timeout=10)
        time.sleep(BEGUN)
        future.cancel()
        check(future.cancelled(), "the call was not cancelled")
        check(future.code() == grpc.StatusCode.CANCELLED, f"expected CANCELLED, got {future.code()}")

    def cancel_after_first_response(self):
        pipe = Pipe()
        answers = self.stub("FullDuplexCall")(pipe, timeout=10)
        pipe.add(pb.StreamingOutputCallRequest(
            response_parameters=[pb.ResponseParameters(size=31_415)], payload=zeros(27_182)))
        check_payload(next(answers).payload, 31_415)
        answers.cancel()
        expect_code(lambda: next(answers), grpc.StatusCode.CANCELLED)

    def timeout_on_sleeping_server(self):
        pipe = Pipe()
        answers = self.stub("FullDuplexCall")(pipe, timeout=0.001)
        pipe.add(pb.StreamingOutputCallRequest(payload=zeros(27_182)))
        expect_code(lambda: next(answers), grpc.StatusCode.DEADLINE_EXCEEDED)

    def custom_metadata(self):
        metadata = ((pb.ECHO_INITIAL, "test_initial_metadata_value"), (pb.ECHO_TRAILING, b"\xab\xab\xab"))

        def echoed(call):
            initial, trailing = dict(call.initial_metadata()), dict(call.trailing_metadata())
            check(initial.get(pb.ECHO_INITIAL) == "test_initial_metadata_value", f"headers: {initial}")
            check(trailing.get(pb.ECHO_TRAILING) == b"\xab\xab\xab", f"trailers: {trailing}")

        answer, call = self.stub("UnaryCall").with_call(self.large_request(), metadata=metadata, timeout=10)
        check_payload(answer.payload, RESPONSE_SIZE)
        echoed(call)
        request = pb.StreamingOutputCallRequest(
            response_parameters=[pb.ResponseParameters(size=RESPONSE_SIZE)], payload=zeros(REQUEST_SIZE))
        call = self.stub("FullDuplexCall")(iter([request]), metadata=metadata, timeout=10)
        sizes = [len(answer.payload.body) for answer in call]
        check(sizes == [RESPONSE_SIZE], f"answers of {sizes} bytes")
        echoed(call)

    def status_code_and_message(self, message="test status message"):
        status = pb.EchoStatus(code=2, message=message)
        unary = self.stub("UnaryCall")
        expect_code(lambda: unary(pb.SimpleRequest(response_status=status), timeout=10),
                    grpc.StatusCode.UNKNOWN, message)
        duplex = self.stub("FullDuplexCall")
        request = pb.StreamingOutputCallRequest(response_status=status)
        expect_code(lambda: list(duplex(iter([request]), timeout=10)), grpc.StatusCode.UNKNOWN, message)

    def special_status_message(self):
        status = pb.EchoStatus(code=2, message=SPECIAL_MESSAGE)
        unary = self.stub("UnaryCall")
        expect_code(lambda: unary(pb.SimpleRequest(response_status=status), timeout=10),
                    grpc.StatusCode.UNKNOWN, SPECIAL_MESSAGE)

    def unimplemented_method(self):
        call = self.stub("UnimplementedCall")
        expect_code(lambda: call(pb.Empty(), timeout=10), grpc.StatusCode.UNIMPLEMENTED)

    def unimplemented_service(self):
        call = self.stub("UnimplementedCall", pb.UNIMPLEMENTED_SERVICE)
        expect_code(lambda: call(pb.Empty(), timeout=10), grpc.StatusCode.UNIMPLEMENTED)


CASES = [
    "empty_unary", "large_unary", "client_compressed_unary", "client_streaming", "server_streaming",
    "ping_pong", "empty_stream", "cancel_after_begin", "cancel_after_first_response",
    "timeout_on_sleeping_server", "custom_metadata", "status_code_and_message", "special_status_message",
    "unimplemented_method", "unimplemented_service",
]


def channel(host: str, port: int, use_tls: bool, ca_file: str | None, host_override: str | None):
    target = f"{host}:{port}"
    if not use_tls:
        return grpc.insecure_channel(target)
    root = open(ca_file, "rb").read() if ca_file else None
    options = [("grpc.ssl_target_name_override", host_override)] if host_override else []
    return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=root), options)


def run(case: str, **connection) -> None:
    """Runs `case`; raises Failed (or grpc.RpcError) when it does not pass."""
    if case not in CASES:
        raise Failed(f"{case} is not run by this client")
    with channel(**connection) as opened:
        getattr(Cases(opened), case)()


def boolean(text: str) -> bool:
    return text.lower() in ("true", "1", "yes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server_host", default="localhost")
    parser.add_argument("--server_port", type=int, required=True)
    parser.add_argument("--server_host_override")
    parser.add_argument("--test_case", required=True)
    parser.add_argument("--use_tls", type=boolean, default=False)
    parser.add_argument("--use_test_ca", type=boolean, default=False)
    parser.add_argument("--ca_file")
    flags = parser.parse_args()
    try:
        run(flags.test_case, host=flags.server_host, port=flags.server_port, use_tls=flags.use_tls,
            ca_file=flags.ca_file, host_override=flags.server_host_override)
    except (Failed, grpc.RpcError) as err:
        print(f"client.py: {flags.test_case}: {err}", file=sys.stderr)
        return 1
    print(f"{flags.test_case}: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
