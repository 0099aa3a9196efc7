"""The xDS resources the management server serves, made from a scenario file.

A scenario is JSON: listeners (each with its routes) and clusters (each with
its endpoints). Every resource comes in two forms, one for each kind of
client that subscribes:

- a gRPC client (proxyless: grpcio, our client) gets a Listener whose
  api_listener holds the HttpConnectionManager, as gRFC A27 asks;
- Envoy gets the same routes behind a real listener on 127.0.0.1 and the
  listener's `port`, and clusters that speak HTTP/2 to the endpoints.

Both forms share the route configurations, the clusters' EDS over ADS and
the ClusterLoadAssignments. The messages are xds-protos' (PyPI), the xDS
project's own generated modules; parts of a route or cluster that the
schema below passes through (match, retry_policy, hash_policy,
outlier_detection) are proto3 JSON, parsed into the real message, so a
misspelt field fails at load time.

The schema (every key but the names optional):

    {
      "listeners": [{
        "name": "search",                 # what the client's xds:///search asks for
        "port": 10000,                    # Envoy's listener on 127.0.0.1
        "rds": "search-routes",           # route config by RDS under this name (default: inline)
        "routes": [{
          "match": {"prefix": "/"},       # RouteMatch JSON: prefix, path or safe_regex; headers
          "cluster": "main",              # or:
          "weighted_clusters": {"main": 80, "canary": 20},
          "timeout": "5s",                # RouteAction.timeout (Envoy's; gRPC ignores it)
          "max_stream_duration": "2s",    # RouteAction.max_stream_duration.max_stream_duration
          "retry_policy": {"retry_on": "unavailable", "num_retries": 3},   # RetryPolicy JSON
          "hash_policy": [{"header": {"header_name": "x-user"}}]          # RouteAction.HashPolicy JSON
        }],
        "invalid": "no_api_listener"      # a Listener both refuse: no api_listener, no address
      }],
      "clusters": [{
        "name": "main",
        "lb_policy": "round_robin",       # or weighted_round_robin, ring_hash
        "weighted_round_robin": {"blackout_period": "0s"},   # ClientSideWeightedRoundRobin JSON
        "ring_hash": {"minimum_ring_size": 1024, "maximum_ring_size": 8192},
        "outlier_detection": {"consecutive_5xx": 5, "interval": "1s"},    # OutlierDetection JSON
        "max_requests": 100,              # circuit breaking: the DEFAULT priority's threshold
        "drop_overloads": [{"category": "throttle",                       # the assignment's DropOverload JSON
                            "drop_percentage": {"numerator": 25, "denominator": "HUNDRED"}}],
        "localities": [{
          "zone": "a", "region": "", "sub_zone": "",
          "weight": 1,                    # the locality's load_balancing_weight (default 1)
          "priority": 0,
          "endpoints": [{"address": "127.0.0.1:5001", "health": "HEALTHY", "weight": 1}]
        }],
        "invalid": "ring_hash_sizes"      # a ring hash with minimum > maximum: both refuse it
                                          # or "static": a STATIC cluster, which gRPC refuses
      }]
    }

A duration is "5s", "0.25s" or "250ms". An endpoint's health is an
envoy.config.core.v3.HealthStatus name (HEALTHY, UNHEALTHY, DRAINING, ...).
"""

from google.protobuf import any_pb2, duration_pb2, json_format, wrappers_pb2

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2, extension_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3 import (
    client_side_weighted_round_robin_pb2 as wrr_pb2,
)
from envoy.extensions.load_balancing_policies.wrr_locality.v3 import wrr_locality_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

PREFIX = "type.googleapis.com/"
LISTENER = PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = PREFIX + "envoy.config.route.v3.RouteConfiguration"
CLUSTER = PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINTS = PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
TYPES = (LISTENER, ROUTE, CLUSTER, ENDPOINTS)
# The short names the log uses.
SHORT = {LISTENER: "lds", ROUTE: "rds", CLUSTER: "cds", ENDPOINTS: "eds"}
KINDS = ("grpc", "envoy")
LB_POLICIES = ("round_robin", "weighted_round_robin", "ring_hash")


class ScenarioError(ValueError):
    """The scenario cannot be made into resources (the message says where)."""


def duration(text: str) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    try:
        seconds = float(text[:-2]) / 1000 if text.endswith("ms") else float(text.removesuffix("s"))
    except (AttributeError, ValueError):
        raise ScenarioError(f"not a duration: {text!r} (5s, 0.25s, 250ms)") from None
    value.FromNanoseconds(round(seconds * 1e9))
    return value


def packed(message) -> any_pb2.Any:
    value = any_pb2.Any()
    value.Pack(message)
    return value


def parse(spec, message, where: str):
    """`spec` (proto3 JSON) merged into `message`."""
    try:
        json_format.ParseDict(spec, message)
    except json_format.ParseError as e:
        raise ScenarioError(f"{where}: {e}") from None
    return message


def ads_source() -> config_source_pb2.ConfigSource:
    source = config_source_pb2.ConfigSource(resource_api_version=config_source_pb2.V3)
    source.ads.SetInParent()
    return source


def route(spec: dict, where: str) -> route_components_pb2.Route:
    built = route_components_pb2.Route()
    parse(spec.get("match", {"prefix": "/"}), built.match, f"{where}.match")
    action = built.route
    if "cluster" in spec:
        action.cluster = spec["cluster"]
    elif "weighted_clusters" in spec:
        for name, weight in spec["weighted_clusters"].items():
            action.weighted_clusters.clusters.add(name=name, weight=wrappers_pb2.UInt32Value(value=weight))
    else:
        raise ScenarioError(f"{where}: a route needs a cluster or weighted_clusters")
    if "timeout" in spec:
        action.timeout.CopyFrom(duration(spec["timeout"]))
    if "max_stream_duration" in spec:
        action.max_stream_duration.max_stream_duration.CopyFrom(duration(spec["max_stream_duration"]))
    if "retry_policy" in spec:
        parse(spec["retry_policy"], action.retry_policy, f"{where}.retry_policy")
    for i, policy in enumerate(spec.get("hash_policy", [])):
        parse(policy, action.hash_policy.add(), f"{where}.hash_policy[{i}]")
    return built


def route_configuration(name: str, routes: list[dict], where: str) -> route_pb2.RouteConfiguration:
    config = route_pb2.RouteConfiguration(name=name)
    host = config.virtual_hosts.add(name=name, domains=["*"])
    for i, spec in enumerate(routes):
        host.routes.append(route(spec, f"{where}.routes[{i}]"))
    return config


def connection_manager(spec: dict, where: str) -> hcm_pb2.HttpConnectionManager:
    manager = hcm_pb2.HttpConnectionManager(stat_prefix=spec["name"], codec_type=hcm_pb2.HttpConnectionManager.AUTO)
    if "rds" in spec:
        manager.rds.route_config_name = spec["rds"]
        manager.rds.config_source.CopyFrom(ads_source())
    else:
        manager.route_config.CopyFrom(route_configuration(spec["name"], spec.get("routes", []), where))
    manager.http_filters.add(name="envoy.filters.http.router", typed_config=packed(router_pb2.Router()))
    return manager


def listener(spec: dict, kind: str, where: str) -> listener_pb2.Listener:
    built = listener_pb2.Listener(name=spec["name"])
    if spec.get("invalid") == "no_api_listener":
        # Neither an api_listener (gRPC's) nor an address (Envoy's): both refuse it.
        return built
    if spec.get("invalid"):
        raise ScenarioError(f"{where}.invalid: {spec['invalid']!r} is not no_api_listener")
    manager = connection_manager(spec, where)
    if kind == "grpc":
        built.api_listener.api_listener.CopyFrom(packed(manager))
        return built
    if "port" not in spec:
        raise ScenarioError(f"{where}: Envoy's listener needs a port")
    built.address.socket_address.address = "127.0.0.1"
    built.address.socket_address.port_value = spec["port"]
    chain = built.filter_chains.add()
    chain.filters.append(listener_components_pb2.Filter(
        name="envoy.filters.network.http_connection_manager", typed_config=packed(manager)))
    return built


def weighted_round_robin(spec: dict, kind: str, where: str) -> any_pb2.Any:
    picker = wrr_pb2.ClientSideWeightedRoundRobin()
    parse(spec, picker, where)
    if kind == "envoy":
        return packed(picker)
    # gRPC weighs localities itself only under wrr_locality (gRFC A52), as
    # Traffic Director and Istio send it.
    locality = wrr_locality_pb2.WrrLocality()
    locality.endpoint_picking_policy.policies.add().typed_extension_config.CopyFrom(
        extension_pb2.TypedExtensionConfig(name="envoy.load_balancing_policies.client_side_weighted_round_robin",
                                      typed_config=packed(picker)))
    return packed(locality)


def cluster(spec: dict, kind: str, where: str) -> cluster_pb2.Cluster:
    built = cluster_pb2.Cluster(name=spec["name"], type=cluster_pb2.Cluster.EDS, connect_timeout=duration("1s"))
    built.eds_cluster_config.eds_config.CopyFrom(ads_source())
    built.eds_cluster_config.service_name = spec["name"]
    policy = spec.get("lb_policy", "round_robin")
    if policy not in LB_POLICIES:
        raise ScenarioError(f"{where}.lb_policy: {policy!r} is not one of {', '.join(LB_POLICIES)}")
    if policy == "ring_hash":
        built.lb_policy = cluster_pb2.Cluster.RING_HASH
        parse(spec.get("ring_hash", {}), built.ring_hash_lb_config, f"{where}.ring_hash")
    elif policy == "weighted_round_robin":
        name = "envoy.load_balancing_policies." + ("client_side_weighted_round_robin" if kind == "envoy"
                                                   else "wrr_locality")
        built.load_balancing_policy.policies.add().typed_extension_config.CopyFrom(
            extension_pb2.TypedExtensionConfig(name=name, typed_config=weighted_round_robin(
                spec.get("weighted_round_robin", {}), kind, f"{where}.weighted_round_robin")))
    elif kind == "envoy":
        built.common_lb_config.locality_weighted_lb_config.SetInParent()
    if "outlier_detection" in spec:
        parse(spec["outlier_detection"], built.outlier_detection, f"{where}.outlier_detection")
    if "max_requests" in spec:
        built.circuit_breakers.thresholds.add(max_requests=wrappers_pb2.UInt32Value(value=spec["max_requests"]))
    if kind == "envoy":
        options = http_protocol_options_pb2.HttpProtocolOptions()
        options.explicit_http_config.http2_protocol_options.SetInParent()
        built.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].CopyFrom(
            packed(options))
    invalid = spec.get("invalid")
    if invalid == "ring_hash_sizes":
        built.lb_policy = cluster_pb2.Cluster.RING_HASH
        built.ring_hash_lb_config.minimum_ring_size.value = 4096
        built.ring_hash_lb_config.maximum_ring_size.value = 1024
    elif invalid == "static":
        built.type = cluster_pb2.Cluster.STATIC
        built.ClearField("eds_cluster_config")
    elif invalid:
        raise ScenarioError(f"{where}.invalid: {invalid!r} is not ring_hash_sizes or static")
    return built


def health(name: str, where: str) -> int:
    try:
        return health_check_pb2.HealthStatus.Value(name)
    except ValueError:
        raise ScenarioError(f"{where}.health: {name!r} is not a HealthStatus") from None


def load_assignment(spec: dict, where: str) -> endpoint_pb2.ClusterLoadAssignment:
    assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=spec["name"])
    for i, locality in enumerate(spec.get("localities", [])):
        at = f"{where}.localities[{i}]"
        group = assignment.endpoints.add(priority=locality.get("priority", 0))
        group.locality.region = locality.get("region", "")
        group.locality.zone = locality.get("zone", "")
        group.locality.sub_zone = locality.get("sub_zone", "")
        group.load_balancing_weight.value = locality.get("weight", 1)
        for j, endpoint in enumerate(locality.get("endpoints", [])):
            host, _, port = endpoint["address"].rpartition(":")
            if not host or not port.isdigit():
                raise ScenarioError(f"{at}.endpoints[{j}].address: {endpoint['address']!r} is not HOST:PORT")
            entry = group.lb_endpoints.add(health_status=health(endpoint.get("health", "HEALTHY"), at))
            entry.endpoint.address.socket_address.address = host
            entry.endpoint.address.socket_address.port_value = int(port)
            if "weight" in endpoint:
                entry.load_balancing_weight.value = endpoint["weight"]
    for i, drop in enumerate(spec.get("drop_overloads", [])):
        parse(drop, assignment.policy.drop_overloads.add(), f"{where}.drop_overloads[{i}]")
    return assignment


def resources(scenario: dict, kind: str) -> dict[str, dict[str, any_pb2.Any]]:
    """Every resource of the scenario in `kind`'s form ("grpc" or "envoy"):
    {type URL: {resource name: the resource in an Any}}. Raises ScenarioError,
    or KeyError and TypeError for a missing name or a value of the wrong type."""
    made = {url: {} for url in TYPES}
    for i, spec in enumerate(scenario.get("listeners", [])):
        where = f"listeners[{i}]"
        made[LISTENER][spec["name"]] = packed(listener(spec, kind, where))
        if "rds" in spec:
            made[ROUTE][spec["rds"]] = packed(route_configuration(spec["rds"], spec.get("routes", []), where))
    for i, spec in enumerate(scenario.get("clusters", [])):
        where = f"clusters[{i}]"
        made[CLUSTER][spec["name"]] = packed(cluster(spec, kind, where))
        made[ENDPOINTS][spec["name"]] = packed(load_assignment(spec, where))
    return made


def snapshot(scenario: dict) -> dict[str, dict[str, dict[str, any_pb2.Any]]]:
    """Both forms: {kind: resources(scenario, kind)}. Raises ScenarioError
    when the scenario does not make valid messages."""
    if not isinstance(scenario, dict):
        raise ScenarioError("a scenario is a JSON object")
    try:
        return {kind: resources(scenario, kind) for kind in KINDS}
    except (KeyError, TypeError, AttributeError) as e:
        raise ScenarioError(f"malformed scenario: {e!r}") from None
