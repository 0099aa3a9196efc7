"""The management server alone, driven over ADS by hand (grpcio's generated
stub of xds-protos): what each kind of node is sent, when it answers, what it
logs, a scenario it cannot read, and SIGTERM."""

import queue

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2

import resources as xds
from conftest import ControlPlane, scenario

REPLICAS = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]


class Ads:
    """One ADS stream: requests put in, responses read out, each read within 10 s."""

    def __init__(self, address: str, node: str, user_agent: str = "tests"):
        self.channel = grpc.insecure_channel(address)
        self.requests: queue.Queue = queue.Queue()
        self.node = base_pb2.Node(id=node, user_agent_name=user_agent)
        self.responses = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel).StreamAggregatedResources(
            iter(self.requests.get, None), timeout=30)

    def send(self, url: str, names: list[str], nonce: str = "", version: str = "", error: str = "") -> None:
        request = discovery_pb2.DiscoveryRequest(node=self.node, type_url=url, resource_names=names,
                                                 response_nonce=nonce, version_info=version)
        if error:
            request.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        self.requests.put(request)

    def read(self) -> discovery_pb2.DiscoveryResponse:
        return next(self.responses)

    def close(self) -> None:
        self.requests.put(None)
        self.responses.cancel()
        self.channel.close()


@pytest.fixture
def control(tmp_path):
    server = ControlPlane(tmp_path, scenario(REPLICAS, 10000, {"main": 80, "canary": 20}))
    server.start()
    yield server
    if server.process.poll() is None:
        server.kill()


def listener(response) -> listener_pb2.Listener:
    (resource,) = response.resources
    unpacked = listener_pb2.Listener()
    assert resource.Unpack(unpacked), resource.type_url
    return unpacked


def test_a_grpc_node_gets_an_api_listener_and_envoy_a_listener_on_its_port(control):
    grpc_node, envoy = Ads(control.address, "grpcio-1"), Ads(control.address, "proxy-1", user_agent="envoy")
    try:
        grpc_node.send(xds.LISTENER, ["search"])
        envoy.send(xds.LISTENER, [])
        for_grpc, for_envoy = listener(grpc_node.read()), listener(envoy.read())
    finally:
        grpc_node.close()
        envoy.close()
    manager = http_connection_manager_pb2.HttpConnectionManager()
    assert for_grpc.api_listener.api_listener.Unpack(manager)
    assert manager.rds.route_config_name == "search-routes" and manager.rds.config_source.HasField("ads")
    assert not for_grpc.HasField("address")
    assert for_envoy.address.socket_address.port_value == 10000
    assert not for_envoy.HasField("api_listener")
    assert for_envoy.filter_chains[0].filters[0].name == "envoy.filters.network.http_connection_manager"


def test_it_answers_new_names_ignores_stale_nonces_and_logs_acks_and_nacks(control):
    ads = Ads(control.address, "grpcio-2")
    try:
        ads.send(xds.CLUSTER, ["main"])
        first = ads.read()
        ads.send(xds.CLUSTER, ["main", "missing"], nonce=first.nonce, version=first.version_info)
        second = ads.read()
        # A stale nonce (the first response's), then a NACK of the second: no answer to either.
        ads.send(xds.CLUSTER, ["main", "canary"], nonce=first.nonce, version=first.version_info)
        ads.send(xds.CLUSTER, ["main", "missing"], nonce=second.nonce, version="", error="refused here")
        ads.send(xds.ENDPOINTS, ["canary"])
        endpoints = ads.read()
    finally:
        ads.close()
    assert [len(first.resources), len(second.resources)] == [1, 1], "a name it does not have is left out"
    assert endpoints.type_url == xds.ENDPOINTS, "nothing answered the stale request nor the NACK"
    events = [(r["event"], r.get("type"), r.get("error")) for r in control.records() if r.get("node") == "grpcio-2"]
    assert events[:9] == [
        ("connect", None, None), ("request", "cds", None), ("response", "cds", None), ("ack", "cds", None),
        ("response", "cds", None), ("stale", "cds", None), ("nack", "cds", "refused here"),
        ("request", "eds", None), ("response", "eds", None)], events


def test_a_scenario_it_cannot_read_is_logged_and_the_last_good_one_still_served(control):
    control.scenario_file.write_text('{"clusters": [{"name": "main", "lb_policy": "least_loved"}]}')
    refused = control.wait_for("the refused scenario", lambda records: [
        r for r in records if r["event"] == "scenario"])
    ads = Ads(control.address, "grpcio-3")
    try:
        ads.send(xds.CLUSTER, ["main", "canary"])
        served = ads.read()
    finally:
        ads.close()
    assert "least_loved" in refused[0]["error"], refused
    assert served.version_info == "1" and len(served.resources) == 2, served


def test_sigterm_ends_it_with_a_stream_open(control):
    ads = Ads(control.address, "grpcio-4")
    try:
        ads.send(xds.LISTENER, ["search"])
        ads.read()
        assert control.stop() == 0
        with pytest.raises(grpc.RpcError) as ended:
            ads.read()
    finally:
        ads.close()
    assert ended.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), ended.value
