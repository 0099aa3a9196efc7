#!/usr/bin/env python3
"""Checks this project's xDS protos against the real ones, field by field.

proto/envoy/, proto/google/rpc/, proto/xds/type/ and proto/udpa/ are our own
text of a subset of Envoy's API (and googleapis', and the xDS project's): every
message, field, enum and value there must exist in the real API with the
same number, type and cardinality. The real descriptors come from the PyPI
package `xds-protos` (Envoy's generated Python modules), so this runs with a
Python that has it installed, never the project's peers/ venv (xds-protos
ships its own opentelemetry/ modules over opentelemetry-proto's):

    python3 -m venv /tmp/xds && /tmp/xds/bin/pip install xds-protos
    /tmp/xds/bin/python tools/xds_subset.py      # exit 1 listing every difference

Our protos are read as `buf build` compiles them, so buf must be on PATH. A
oneof of Envoy's of which we keep one member is a plain field here (the same
bytes); that is the one difference allowed, and counted.
"""

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool

ROOT = Path(__file__).resolve().parents[1]
# The packages of ours that stand for someone else's.
FOREIGN = ("envoy.", "google.rpc", "xds.type.", "udpa.type.")
LABELS = {1: "optional", 2: "required", 3: "repeated"}


def ours() -> descriptor_pb2.FileDescriptorSet:
    """Our protos, as buf compiles them."""
    with tempfile.TemporaryDirectory() as out:
        image = Path(out) / "image.binpb"
        subprocess.run(["buf", "build", "-o", str(image)], cwd=ROOT, check=True, timeout=120)
        return descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes())


def real(files: list[descriptor_pb2.FileDescriptorProto]) -> descriptor_pool.DescriptorPool:
    """The real descriptors of the same files, imported from xds-protos."""
    for file in files:
        importlib.import_module(file.name.removesuffix(".proto").replace("/", ".") + "_pb2")
    return descriptor_pool.Default()


def compare_enum(name: str, enum: descriptor_pb2.EnumDescriptorProto, pool, problems: list[str]) -> None:
    """Every value of our enum `name` has the real value's number."""
    try:
        theirs = pool.FindEnumTypeByName(name)
    except KeyError:
        problems.append(f"enum {name}: not in the real API")
        return
    for value in enum.value:
        real_value = theirs.values_by_name.get(value.name)
        if real_value is None:
            problems.append(f"{name}.{value.name}: no such value")
        elif real_value.number != value.number:
            problems.append(f"{name}.{value.name}: number {value.number}, real {real_value.number}")


def compare_field(name: str, field, theirs, flattened: list[str], problems: list[str]) -> None:
    """Our field `field` of message `name` against the real message `theirs`."""
    where = f"{name}.{field.name}"
    real_field = theirs.fields_by_name.get(field.name)
    if real_field is None:
        problems.append(f"{where}: no such field")
        return
    if real_field.number != field.number:
        problems.append(f"{where}: number {field.number}, real {real_field.number}")
    if real_field.type != field.type:
        problems.append(f"{where}: type {field.type}, real {real_field.type}")
    real_repeated = real_field.is_repeated
    if real_repeated != (field.label == field.LABEL_REPEATED):
        problems.append(f"{where}: {LABELS[field.label]}, real {'repeated' if real_repeated else 'singular'}")
    real_type = (real_field.message_type or real_field.enum_type)
    if field.type_name and (real_type is None or field.type_name.lstrip(".") != real_type.full_name):
        problems.append(f"{where}: type {field.type_name}, real {real_type and real_type.full_name}")
    real_oneof = real_field.containing_oneof
    if not field.HasField("oneof_index") and real_oneof is not None:
        flattened.append(f"{where} (oneof {real_oneof.name})")
    elif field.HasField("oneof_index") and real_oneof is None:
        problems.append(f"{where}: in a oneof, real is not")


def compare_message(name: str, message: descriptor_pb2.DescriptorProto, pool, flattened, problems) -> int:
    """Our message `name` against the real one, nested types included; the fields checked."""
    try:
        theirs = pool.FindMessageTypeByName(name)
    except KeyError:
        problems.append(f"message {name}: not in the real API")
        return 0
    checked = len(message.field)
    for field in message.field:
        compare_field(name, field, theirs, flattened, problems)
    for oneof_index, oneof in enumerate(message.oneof_decl):
        members = [f for f in message.field if f.HasField("oneof_index") and f.oneof_index == oneof_index]
        real_oneofs = {theirs.fields_by_name[f.name].containing_oneof for f in members
                       if f.name in theirs.fields_by_name}
        if {o and o.name for o in real_oneofs} != {oneof.name}:
            problems.append(f"{name}: oneof {oneof.name} is {[o and o.name for o in real_oneofs]} in the real API")
    for nested in message.nested_type:
        if not nested.options.map_entry:
            checked += compare_message(f"{name}.{nested.name}", nested, pool, flattened, problems)
    for enum in message.enum_type:
        compare_enum(f"{name}.{enum.name}", enum, pool, problems)
    return checked


def main() -> int:
    files = [f for f in ours().file if f.package.startswith(FOREIGN)]
    pool = real(files)
    problems: list[str] = []
    flattened: list[str] = []
    fields = messages = 0
    for file in files:
        for service in file.service:
            theirs = pool.FindServiceByName(f"{file.package}.{service.name}")
            for method in service.method:
                real_method = theirs.methods_by_name.get(method.name)
                if real_method is None or (real_method.input_type.full_name, real_method.output_type.full_name,
                                           real_method.client_streaming, real_method.server_streaming) != (
                        method.input_type.lstrip("."), method.output_type.lstrip("."),
                        method.client_streaming, method.server_streaming):
                    problems.append(f"rpc {service.name}.{method.name}: differs from the real API")
        for enum in file.enum_type:
            compare_enum(f"{file.package}.{enum.name}", enum, pool, problems)
        for message in file.message_type:
            messages += 1
            fields += compare_message(f"{file.package}.{message.name}", message, pool, flattened, problems)
    for problem in problems:
        print(f"xds_subset: {problem}", file=sys.stderr)
    print(f"xds_subset: {len(files)} files, {messages} top-level messages, {fields} fields checked against "
          f"xds-protos; {len(flattened)} oneof members kept as plain fields: {', '.join(flattened)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
