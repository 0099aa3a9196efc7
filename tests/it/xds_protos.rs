//! The xDS protos (`proto/envoy/`, our subset of Envoy's API) decode real
//! resources: bytes encoded by Envoy's own generated code (PyPI `xds-protos`,
//! `tests/fixtures/xds/make.py`), checked field by field, the fields our
//! subset leaves out skipped.

use std::time::Duration;

use prost::{Message, Name};
use prost_types::Any;
use search::pb::envoy::admin::v3::ClientResourceStatus;
use search::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType, LbPolicy};
use search::pb::envoy::config::cluster::v3::{Cluster, LoadBalancingPolicy};
use search::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier;
use search::pb::envoy::config::core::v3::{ApiVersion, HealthStatus, RoutingPriority};
use search::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use search::pb::envoy::config::listener::v3::Listener;
use search::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use search::pb::envoy::config::route::v3::route::Action;
use search::pb::envoy::config::route::v3::route_action::ClusterSpecifier;
use search::pb::envoy::config::route::v3::route_action::hash_policy::PolicySpecifier;
use search::pb::envoy::config::route::v3::route_match::PathSpecifier;
use search::pb::envoy::config::route::v3::{Route, RouteAction, RouteConfiguration};
use search::pb::envoy::extensions::filters::http::router::v3::Router;
use search::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use search::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use search::pb::envoy::extensions::load_balancing_policies::client_side_weighted_round_robin::v3::ClientSideWeightedRoundRobin;
use search::pb::envoy::extensions::load_balancing_policies::ring_hash::v3::RingHash;
use search::pb::envoy::extensions::load_balancing_policies::ring_hash::v3::ring_hash::HashFunction;
use search::pb::envoy::extensions::load_balancing_policies::round_robin::v3::RoundRobin;
use search::pb::envoy::extensions::load_balancing_policies::wrr_locality::v3::WrrLocality;
use search::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse, Resource};
use search::pb::envoy::service::status::v3::{ClientStatusResponse, ConfigStatus};
use search::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use search::pb::envoy::r#type::v3::fractional_percent::DenominatorType;
use search::pb::udpa::r#type::v1::TypedStruct as OlderTypedStruct;
use search::pb::xds::r#type::v3::TypedStruct;

/// The bytes of fixture `name` (`tests/fixtures/xds/NAME.hex`).
fn fixture(name: &str) -> Vec<u8> {
    let hex = match name {
        "listeners" => include_str!("../fixtures/xds/listeners.hex"),
        "cluster" => include_str!("../fixtures/xds/cluster.hex"),
        "assignment" => include_str!("../fixtures/xds/assignment.hex"),
        "nack" => include_str!("../fixtures/xds/nack.hex"),
        "client_status" => include_str!("../fixtures/xds/client_status.hex"),
        other => panic!("no fixture {other}"),
    };
    let hex = hex.trim().as_bytes();
    let digit = |c: u8| char::from(c).to_digit(16).expect("a hex digit") as u8;
    hex.chunks(2).map(|pair| digit(pair[0]) << 4 | digit(pair[1])).collect()
}

/// `any` unpacked as `M`, its type URL checked.
fn unpack<M: Message + Name + Default>(any: Option<&Any>) -> M {
    let any = any.expect("an Any");
    assert_eq!(any.type_url, format!("type.googleapis.com/{}", M::full_name()));
    M::decode(any.value.as_slice()).expect("the Any's message")
}

fn duration(d: Option<&prost_types::Duration>) -> Duration {
    Duration::try_from(*d.expect("a duration")).expect("a positive duration")
}

fn action(route: &Route) -> &RouteAction {
    match &route.action {
        Some(Action::Route(action)) => action,
        other => panic!("not a route action: {other:?}"),
    }
}

#[test]
fn a_listener_response_decodes_with_its_inline_routes_and_a_wrapped_rds_listener() {
    let response = DiscoveryResponse::decode(fixture("listeners").as_slice()).unwrap();
    assert_eq!(
        (response.version_info.as_str(), response.nonce.as_str(), response.type_url.as_str()),
        ("7", "nonce-7", "type.googleapis.com/envoy.config.listener.v3.Listener")
    );
    assert_eq!(response.control_plane.unwrap().identifier, "xds-test-server");
    assert_eq!(response.resources.len(), 2);

    let inline: Listener = unpack(response.resources.first());
    assert_eq!(inline.name, "search.example.com");
    let manager: HttpConnectionManager = unpack(inline.api_listener.unwrap().api_listener.as_ref());
    let filters: Vec<_> = manager.http_filters.iter().map(|f| (f.name.as_str(), f.is_optional)).collect();
    assert_eq!(filters, [("fault", true), ("router", false)]);
    assert_eq!(
        manager.http_filters[0].typed_config.as_ref().unwrap().type_url,
        "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
    );
    let _: Router = unpack(manager.http_filters[1].typed_config.as_ref());
    let options = manager.common_http_protocol_options.unwrap();
    assert_eq!(duration(options.max_stream_duration.as_ref()), Duration::from_secs(30));
    let Some(RouteSpecifier::RouteConfig(routes)) = manager.route_specifier else {
        panic!("routes not inline: {:?}", manager.route_specifier)
    };
    check_routes(&routes);

    let wrapped: Resource = unpack(response.resources.get(1));
    assert_eq!((wrapped.name.as_str(), wrapped.version.as_str()), ("search-rds", "7"));
    let by_rds: Listener = unpack(wrapped.resource.as_ref());
    let manager: HttpConnectionManager = unpack(by_rds.api_listener.unwrap().api_listener.as_ref());
    let Some(RouteSpecifier::Rds(rds)) = manager.route_specifier else {
        panic!("not by RDS: {:?}", manager.route_specifier)
    };
    assert_eq!(rds.route_config_name, "search-routes");
    let source = rds.config_source.unwrap();
    assert!(matches!(source.config_source_specifier, Some(ConfigSourceSpecifier::Ads(_))));
    assert_eq!(source.resource_api_version(), ApiVersion::V3);
}

/// The RouteConfiguration of the listeners fixture, route by route.
fn check_routes(routes: &RouteConfiguration) {
    assert_eq!(routes.name, "search-routes");
    let [host] = routes.virtual_hosts.as_slice() else { panic!("one virtual host") };
    assert_eq!(
        (host.name.as_str(), host.domains.as_slice()),
        ("search", &["search.example.com".to_owned(), "*".to_owned()][..])
    );
    assert_eq!(host.retry_policy.as_ref().unwrap().retry_on, "unavailable");
    let [canary, regex, server_side] = host.routes.as_slice() else { panic!("three routes") };

    let matcher = canary.r#match.as_ref().unwrap();
    assert_eq!(canary.name, "canary");
    assert_eq!(matcher.path_specifier, Some(PathSpecifier::Prefix("/search.v1.SearchService/".into())));
    assert_eq!(matcher.case_sensitive, Some(false));
    let fraction = matcher.runtime_fraction.as_ref().unwrap().default_value.unwrap();
    assert_eq!((fraction.numerator, fraction.denominator()), (25, DenominatorType::TenThousand));
    let headers: Vec<_> = matcher.headers.iter().map(|h| (h.name.as_str(), h.invert_match)).collect();
    assert_eq!(headers, [("x-canary", false), ("x-build", true), ("x-legacy", false)]);
    let Some(HeaderMatchSpecifier::StringMatch(exact)) = &matcher.headers[0].header_match_specifier else {
        panic!("not a string match")
    };
    assert_eq!((&exact.match_pattern, exact.ignore_case), (&Some(MatchPattern::Exact("yes".into())), true));
    let Some(HeaderMatchSpecifier::RangeMatch(range)) = matcher.headers[1].header_match_specifier else {
        panic!("not a range")
    };
    assert_eq!((range.start, range.end), (10, 20));
    assert_eq!(matcher.headers[2].header_match_specifier, Some(HeaderMatchSpecifier::PrefixMatch("v1".into())));

    let route = action(canary);
    let Some(ClusterSpecifier::WeightedClusters(split)) = &route.cluster_specifier else {
        panic!("not weighted clusters")
    };
    let weights: Vec<_> = split.clusters.iter().map(|c| (c.name.as_str(), c.weight)).collect();
    assert_eq!(weights, [("search-a", Some(80)), ("search-b", Some(20))]);
    assert_eq!(duration(route.timeout.as_ref()), Duration::from_secs(7));
    let retry = route.retry_policy.as_ref().unwrap();
    assert_eq!((retry.retry_on.as_str(), retry.num_retries), ("unavailable,cancelled", Some(3)));
    let backoff = retry.retry_back_off.as_ref().unwrap();
    assert_eq!(duration(backoff.base_interval.as_ref()), Duration::from_millis(25));
    assert_eq!(duration(backoff.max_interval.as_ref()), Duration::from_millis(250));
    let limit = route.max_stream_duration.as_ref().unwrap();
    assert_eq!(duration(limit.max_stream_duration.as_ref()), Duration::from_secs(5));
    assert_eq!(duration(limit.grpc_timeout_header_max.as_ref()), Duration::from_secs(2));
    let [header, connection, state] = route.hash_policy.as_slice() else { panic!("three hash policies") };
    let Some(PolicySpecifier::Header(header)) = &header.policy_specifier else { panic!("not a header") };
    let rewrite = header.regex_rewrite.as_ref().unwrap();
    assert_eq!(header.header_name, "x-user");
    assert_eq!(
        (rewrite.pattern.as_ref().unwrap().regex.as_str(), rewrite.substitution.as_str()),
        ("^user-(.*)$", "\\1")
    );
    // Hashing the peer's address is one of Envoy's kinds our subset skips.
    assert_eq!((&connection.policy_specifier, connection.terminal), (&None, false));
    let Some(PolicySpecifier::FilterState(key)) = &state.policy_specifier else { panic!("not filter state") };
    assert_eq!((key.key.as_str(), state.terminal), ("io.grpc.channel_id", true));

    let Some(PathSpecifier::SafeRegex(expression)) = &regex.r#match.as_ref().unwrap().path_specifier else {
        panic!("not a regex")
    };
    assert_eq!(expression.regex, "/grpc\\.testing\\..*/.*");
    assert_eq!(action(regex).cluster_specifier, Some(ClusterSpecifier::Cluster("interop".into())));

    let matcher = server_side.r#match.as_ref().unwrap();
    assert_eq!(matcher.path_specifier, Some(PathSpecifier::Path("/search.v1.SearchService/Search".into())));
    assert_eq!(matcher.query_parameters.len(), 1);
    assert!(matches!(server_side.action, Some(Action::NonForwardingAction(_))));
}

#[test]
fn a_cluster_decodes_with_its_breakers_outlier_detection_and_policies() {
    let cluster = Cluster::decode(fixture("cluster").as_slice()).unwrap();
    assert_eq!(cluster.name, "search-a");
    assert_eq!(cluster.cluster_discovery_type, Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)));
    let eds = cluster.eds_cluster_config.clone().unwrap();
    assert_eq!(eds.service_name, "search-a-endpoints");
    let Some(ConfigSourceSpecifier::Self_(source)) = eds.eds_config.unwrap().config_source_specifier else {
        panic!("not self")
    };
    assert_eq!(source.transport_api_version(), ApiVersion::V3);
    assert_eq!(cluster.lb_policy(), LbPolicy::RingHash);
    let ring = cluster.ring_hash_lb_config.unwrap();
    assert_eq!((ring.minimum_ring_size, ring.maximum_ring_size), (Some(128), Some(2048)));
    let limits: Vec<_> =
        cluster.circuit_breakers.unwrap().thresholds.iter().map(|t| (t.priority(), t.max_requests)).collect();
    assert_eq!(limits, [(RoutingPriority::High, Some(9)), (RoutingPriority::Default, Some(64))]);

    let outliers = cluster.outlier_detection.unwrap();
    assert_eq!(duration(outliers.interval.as_ref()), Duration::from_secs(1));
    assert_eq!(duration(outliers.base_ejection_time.as_ref()), Duration::from_secs(3));
    assert_eq!(duration(outliers.max_ejection_time.as_ref()), Duration::from_secs(30));
    let percents = [
        outliers.max_ejection_percent,
        outliers.enforcing_success_rate,
        outliers.success_rate_minimum_hosts,
        outliers.success_rate_request_volume,
        outliers.success_rate_stdev_factor,
        outliers.failure_percentage_threshold,
        outliers.enforcing_failure_percentage,
        outliers.failure_percentage_minimum_hosts,
        outliers.failure_percentage_request_volume,
    ];
    assert_eq!(percents, [50, 90, 3, 20, 1000, 40, 100, 2, 10].map(Some));
    assert!(matches!(cluster.lrs_server.unwrap().config_source_specifier, Some(ConfigSourceSpecifier::Self_(_))));
    check_policies(&cluster.load_balancing_policy.unwrap());
}

/// The cluster fixture's policy list: ring hash, WRR by locality over
/// client-side WRR and round robin, and two custom policies.
fn check_policies(policy: &LoadBalancingPolicy) {
    let configs: Vec<_> = policy.policies.iter().map(|p| p.typed_extension_config.as_ref().unwrap()).collect();
    let [ring, locality, custom, older] = configs.as_slice() else { panic!("four policies") };
    assert_eq!((ring.name.as_str(), locality.name.as_str()), ("ring", "locality"));
    let ring: RingHash = unpack(ring.typed_config.as_ref());
    assert_eq!(ring.hash_function(), HashFunction::XxHash);
    assert_eq!((ring.minimum_ring_size, ring.maximum_ring_size), (Some(64), Some(4096)));
    let locality: WrrLocality = unpack(locality.typed_config.as_ref());
    let inner = locality.endpoint_picking_policy.unwrap().policies;
    let wrr: ClientSideWeightedRoundRobin =
        unpack(inner[0].typed_extension_config.as_ref().unwrap().typed_config.as_ref());
    assert_eq!(wrr.enable_oob_load_report, Some(true));
    assert_eq!(duration(wrr.oob_reporting_period.as_ref()), Duration::from_secs(5));
    assert_eq!(duration(wrr.blackout_period.as_ref()), Duration::from_secs(2));
    assert_eq!(duration(wrr.weight_expiration_period.as_ref()), Duration::from_secs(120));
    assert_eq!(duration(wrr.weight_update_period.as_ref()), Duration::from_millis(500));
    assert_eq!(wrr.error_utilization_penalty, Some(1.5));
    assert_eq!(wrr.metric_names_for_computing_utilization, ["named_metrics.gpu", "named_metrics.queue"]);
    let _: RoundRobin = unpack(inner[1].typed_extension_config.as_ref().unwrap().typed_config.as_ref());

    // A custom policy, under the xDS project's name for TypedStruct and under
    // its older one.
    let custom: TypedStruct = unpack(custom.typed_config.as_ref());
    let older: OlderTypedStruct = unpack(older.typed_config.as_ref());
    assert_eq!(custom.type_url, "type.googleapis.com/test.ChoiceLb");
    assert_eq!(older.type_url, "type.googleapis.com/test.OldChoiceLb");
    for config in [custom.value, older.value] {
        let choices = config.unwrap().fields.remove("choice_count").unwrap().kind;
        assert_eq!(choices, Some(prost_types::value::Kind::NumberValue(3.0)));
    }
}

#[test]
fn an_assignment_decodes_with_its_priorities_localities_health_and_drops() {
    let assignment = ClusterLoadAssignment::decode(fixture("assignment").as_slice()).unwrap();
    assert_eq!(assignment.cluster_name, "search-a-endpoints");
    let localities: Vec<_> = assignment
        .endpoints
        .iter()
        .map(|l| {
            let at = l.locality.as_ref().unwrap();
            (at.region.as_str(), at.zone.as_str(), at.sub_zone.as_str(), l.load_balancing_weight, l.priority)
        })
        .collect();
    assert_eq!(
        localities,
        [("eu-west1", "b", "", Some(2), 0), ("eu-west1", "c", "rack-9", Some(1), 0), ("us-east1", "a", "", Some(1), 1)]
    );
    let endpoints: Vec<_> = assignment
        .endpoints
        .iter()
        .flat_map(|l| &l.lb_endpoints)
        .map(|e| {
            let address = e.endpoint.as_ref().unwrap().address.as_ref().unwrap();
            let socket = address.socket_address.as_ref().unwrap();
            (socket.address.as_str(), socket.port_value, e.health_status(), e.load_balancing_weight)
        })
        .collect();
    assert_eq!(
        endpoints,
        [
            ("127.0.0.1", 5001, HealthStatus::Healthy, Some(3)),
            ("::1", 5002, HealthStatus::Unhealthy, None),
            ("127.0.0.1", 5003, HealthStatus::Unknown, None),
            ("127.0.0.1", 5004, HealthStatus::Degraded, None),
            ("127.0.0.2", 5005, HealthStatus::Draining, None),
            ("127.0.0.2", 5006, HealthStatus::Timeout, None),
        ]
    );
    let drops: Vec<_> = assignment
        .policy
        .unwrap()
        .drop_overloads
        .iter()
        .map(|d| {
            let fraction = d.drop_percentage.unwrap();
            (d.category.clone(), fraction.numerator, fraction.denominator())
        })
        .collect();
    assert_eq!(
        drops,
        [("throttle".to_owned(), 5, DenominatorType::Hundred), ("lb".to_owned(), 250, DenominatorType::Million)]
    );
}

#[test]
fn a_nack_decodes_with_its_node_and_error_detail() {
    let nack = DiscoveryRequest::decode(fixture("nack").as_slice()).unwrap();
    assert_eq!(
        (nack.version_info.as_str(), nack.response_nonce.as_str(), nack.type_url.as_str()),
        ("6", "nonce-7", "type.googleapis.com/envoy.config.cluster.v3.Cluster")
    );
    assert_eq!(nack.resource_names, ["search-a", "search-b"]);
    let node = nack.node.unwrap();
    assert_eq!((node.id.as_str(), node.cluster.as_str()), ("client-1", "search-clients"));
    assert_eq!((node.user_agent_name.as_str(), node.user_agent_version.as_str()), ("gRPC Python", "1.85.0"));
    assert_eq!(node.locality.unwrap().zone, "b");
    assert_eq!(node.client_features[1], "xds.config.resource-in-sotw");
    let metadata = node.metadata.unwrap().fields;
    assert_eq!(
        metadata["TRAFFICDIRECTOR_NETWORK_NAME"].kind,
        Some(prost_types::value::Kind::StringValue("default".into()))
    );
    assert_eq!(metadata["replicas"].kind, Some(prost_types::value::Kind::NumberValue(3.0)));
    let detail = nack.error_detail.unwrap();
    assert_eq!(detail.code, tonic::Code::InvalidArgument as i32);
    assert_eq!(detail.message, "cluster search-a: ring_hash_lb_config: maximum below minimum");
    assert_eq!(detail.details[0].type_url, "type.googleapis.com/google.protobuf.StringValue");
}

#[test]
fn a_client_status_answer_decodes_with_each_resource_state() {
    let status = ClientStatusResponse::decode(fixture("client_status").as_slice()).unwrap();
    let [client] = status.config.as_slice() else { panic!("one client") };
    assert_eq!(
        (client.node.as_ref().unwrap().id.as_str(), client.client_scope.as_str()),
        ("client-1", "xds:///search")
    );
    let [listener, cluster] = client.generic_xds_configs.as_slice() else { panic!("two resources") };
    assert_eq!((listener.name.as_str(), listener.version_info.as_str()), ("search.example.com", "7"));
    assert_eq!(listener.client_status(), ClientResourceStatus::Acked);
    assert_eq!(listener.last_updated, Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 5 }));
    let held: Listener = unpack(listener.xds_config.as_ref());
    assert_eq!(held.name, "search.example.com");
    assert_eq!((cluster.client_status(), cluster.config_status()), (ClientResourceStatus::Nacked, ConfigStatus::Error));
    let failure = cluster.error_state.as_ref().unwrap();
    assert_eq!((failure.details.as_str(), failure.version_info.as_str()), ("maximum below minimum", "6"));
    assert_eq!(failure.last_update_attempt.unwrap().seconds, 1_700_000_100);
}
