"""gRPC's interop contract for the Python peers, without generated code.

The messages come from `proto/grpc/testing/` as grpc_tools compiles them
into a descriptor set at start-up: the Python package that generated code
would live in, `grpc.testing`, is grpcio's own `grpc` package, so the
messages are made from their descriptors instead, and the services are
called and served through grpcio's generic handlers by method path.
"""

import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc

PROTO = Path(__file__).resolve().parents[2] / "proto"
SERVICE = "grpc.testing.TestService"
UNIMPLEMENTED_SERVICE = "grpc.testing.UnimplementedService"


def descriptors(*protos: str) -> descriptor_pool.DescriptorPool:
    """The messages and services of `protos` (paths under proto/), compiled by grpc_tools."""
    with tempfile.TemporaryDirectory() as out:
        descriptor = Path(out) / "contract.binpb"
        include = str(Path(protoc.__file__).parent / "_proto")
        args = ["protoc", f"-I{PROTO}", f"-I{include}", "--include_imports", f"--descriptor_set_out={descriptor}",
                *protos]
        if protoc.main(args) != 0:
            raise RuntimeError(f"grpc_tools cannot compile {', '.join(protos)}")
        files = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return pool


_POOL = descriptors("grpc/testing/test.proto")


def message(name: str):
    """The class of the message `grpc.testing.NAME`."""
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"grpc.testing.{name}"))


Empty = message("Empty")
BoolValue = message("BoolValue")
Payload = message("Payload")
EchoStatus = message("EchoStatus")
SimpleRequest = message("SimpleRequest")
SimpleResponse = message("SimpleResponse")
StreamingInputCallRequest = message("StreamingInputCallRequest")
StreamingInputCallResponse = message("StreamingInputCallResponse")
ResponseParameters = message("ResponseParameters")
StreamingOutputCallRequest = message("StreamingOutputCallRequest")
StreamingOutputCallResponse = message("StreamingOutputCallResponse")

# Each method: its request and response classes.
METHODS = {
    "EmptyCall": (Empty, Empty),
    "UnaryCall": (SimpleRequest, SimpleResponse),
    "CacheableUnaryCall": (SimpleRequest, SimpleResponse),
    "StreamingOutputCall": (StreamingOutputCallRequest, StreamingOutputCallResponse),
    "StreamingInputCall": (StreamingInputCallRequest, StreamingInputCallResponse),
    "FullDuplexCall": (StreamingOutputCallRequest, StreamingOutputCallResponse),
    "HalfDuplexCall": (StreamingOutputCallRequest, StreamingOutputCallResponse),
    "UnimplementedCall": (Empty, Empty),
}

# The metadata the custom_metadata case echoes.
ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
