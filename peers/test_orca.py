"""The server's load reports read by a client that is not ours: grpcio from
PyPI, with the ORCA messages compiled from `proto/xds/` by grpc_tools (the
xDS project's definitions; Envoy reads the same reports with its own in
deploy/test_envoy.py). With `--orca`, a call's
trailing metadata carries `endpoint-load-metrics-bin`, an
`xds.data.orca.v3.OrcaLoadReport` (gRFC A51), and
`xds.service.orca.v3.OpenRcaService/StreamCoreMetrics` streams the same
message at the interval asked for, never under the server's minimum (A64).
"""

import base64
import json
import struct
import subprocess
import sys
import time
import urllib.request

import grpc
import pytest
from conftest import ROOT, SERVER
from google.protobuf import message_factory

sys.path.insert(0, str(ROOT / "peers" / "testing"))
from contract import descriptors  # noqa: E402

_ORCA = descriptors("xds/service/orca/v3/orca.proto")
OrcaLoadReport = message_factory.GetMessageClass(_ORCA.FindMessageTypeByName("xds.data.orca.v3.OrcaLoadReport"))
OrcaLoadReportRequest = message_factory.GetMessageClass(
    _ORCA.FindMessageTypeByName("xds.service.orca.v3.OrcaLoadReportRequest"))

SEARCH = "/search.v1.SearchService/Search"
COUNT = "/search.v1.SearchService/Count"
STREAM = "/xds.service.orca.v3.OpenRcaService/StreamCoreMetrics"


def start(*flags):
    process = subprocess.Popen([str(SERVER), "--listen", "127.0.0.1:0", *flags], stdout=subprocess.PIPE, text=True)
    address = process.stdout.readline().strip()
    assert address.startswith("127.0.0.1:"), address
    return process, address


def stop(process):
    process.terminate()
    assert process.wait(timeout=20) == 0


@pytest.fixture(scope="module")
def reporting():
    """A server with load reports on, the stream's minimum at 1 s."""
    process, address = start("--orca", "--orca-min-interval", "1s")
    try:
        with grpc.insecure_channel(address) as channel:
            yield channel, address
    finally:
        stop(process)


def connect(address, method, body):
    """A Connect unary call over HTTP/1.1 (urllib): the answer's JSON, and
    its load report from the `trailer-endpoint-load-metrics-bin` header.
    (grpcio's core takes `endpoint-load-metrics-bin` off a gRPC call's
    trailers for its own load balancing and does not show it to the
    program, so the per-call report is read here the Connect way.)"""
    request = urllib.request.Request(f"http://{address}{method}", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        value = answer.headers.get("trailer-endpoint-load-metrics-bin")
        document = json.loads(answer.read())
    report = None if value is None else OrcaLoadReport.FromString(base64.b64decode(value + "=" * (-len(value) % 4)))
    return document, report


def test_every_answer_carries_a_load_report_protobuf_reads(reporting):
    _, address = reporting
    # The sampler measures once a second: a call after it sees the figures.
    connect(address, SEARCH, {"query": "Banana"})
    time.sleep(1.5)
    answer, report = connect(address, SEARCH, {"query": "Banana"})
    assert answer == {"status": 1}
    print("per call:", report)
    assert report is not None and report.rps_fractional > 0, report
    assert 0 < report.mem_utilization < 1, report
    assert report.cpu_utilization >= 0 and report.application_utilization >= 0, report


def test_a_handler_s_cost_rides_on_its_call_s_report(reporting):
    _, address = reporting
    # Count, a client stream, the Connect way: enveloped JSON messages; the
    # report comes in the end-of-stream message's metadata. Its handler adds
    # the queries it read as the cost `lines`.
    messages = [{"queries": ["Banana", "Apple"]}, {"queries": ["BANANA split"]}]
    body = b"".join(b"\x00" + struct.pack(">I", len(m)) + m for m in (json.dumps(m).encode() for m in messages))
    request = urllib.request.Request(f"http://{address}{COUNT}", data=body,
                                     headers={"content-type": "application/connect+json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        data = answer.read()
    frames = []
    while data:
        flags, size = data[0], struct.unpack(">I", data[1:5])[0]
        frames.append((flags, json.loads(data[5:5 + size])))
        data = data[5 + size:]
    assert frames[0] == (0, {"queries": "3", "matches": "2"}), frames
    flags, end = frames[-1]
    assert flags == 2 and "error" not in end, frames
    (value,) = end["metadata"]["endpoint-load-metrics-bin"]
    report = OrcaLoadReport.FromString(base64.b64decode(value + "=" * (-len(value) % 4)))
    print("Count:", report)
    assert dict(report.request_cost) == {"lines": 3.0}, report


def test_the_out_of_band_stream_reports_at_the_interval_asked_for(reporting):
    channel, _ = reporting
    stream = channel.unary_stream(STREAM, request_serializer=OrcaLoadReportRequest.SerializeToString,
                                    response_deserializer=OrcaLoadReport.FromString)
    request = OrcaLoadReportRequest()
    request.report_interval.FromMilliseconds(1000)
    reports = stream(request, timeout=30)
    arrivals = []
    for report in reports:
        arrivals.append((time.monotonic(), report))
        if len(arrivals) == 3:
            reports.cancel()
            break
    gaps = [later - earlier for (earlier, _), (later, _) in zip(arrivals, arrivals[1:])]
    print("out of band:", [str(report).replace("\n", " ") for _, report in arrivals], "gaps (s):", gaps)
    # The first at once, then one a second: never sooner than asked.
    assert all(gap >= 0.9 for gap in gaps), gaps
    assert all(0 < report.mem_utilization < 1 for _, report in arrivals)


def test_without_the_flag_no_report_and_no_stream():
    process, address = start()
    try:
        assert connect(address, SEARCH, {"query": "Banana"}) == ({"status": 1}, None)
        with grpc.insecure_channel(address) as channel:
            stream = channel.unary_stream(STREAM, request_serializer=OrcaLoadReportRequest.SerializeToString,
                                          response_deserializer=OrcaLoadReport.FromString)
            with pytest.raises(grpc.RpcError) as failed:
                next(stream(OrcaLoadReportRequest(), timeout=10))
            assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        stop(process)
