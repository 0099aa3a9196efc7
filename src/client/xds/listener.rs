//! Listener (LDS): the API listener's HttpConnectionManager, which names
//! the RouteConfiguration (by RDS, or inline), the default stream duration
//! (gRFC A31) and the HTTP filters (gRFC A39: the router last).

use std::time::Duration;

use prost_types::Any;
use serde::Serialize;

use super::fields::{duration, message};
use super::route::{RouteConfig, validate as validate_routes};
use crate::pb::envoy::config::core::v3 as core;
use crate::pb::envoy::config::listener::v3 as lds;
use crate::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm;

/// The HttpConnectionManager's type URL, inside `api_listener`.
pub const HCM_TYPE_URL: &str =
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
/// The router filter's type URL: the last filter, and the only one this
/// client runs.
pub const ROUTER_TYPE_URL: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
/// The TypedStruct wrappers a filter's config may come in (then the type
/// is the wrapped one's).
const TYPED_STRUCTS: [&str; 2] =
    ["type.googleapis.com/xds.type.v3.TypedStruct", "type.googleapis.com/udpa.type.v1.TypedStruct"];

/// A validated Listener.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listener {
    /// Where its routes come from.
    pub routes: RouteSource,
    /// `common_http_protocol_options.max_stream_duration`: the deadline cap
    /// of routes that set none.
    #[serde(serialize_with = "super::fields::human_opt")]
    pub max_stream_duration: Option<Duration>,
    /// The HTTP filters' names, the router last.
    pub http_filters: Vec<String>,
}

/// Where a Listener's routes come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteSource {
    /// A RouteConfiguration to subscribe to by RDS, by name.
    Rds(String),
    /// The RouteConfiguration itself.
    Inline(RouteConfig),
}

/// Validates a client's Listener (A27): an API listener holding an
/// HttpConnectionManager.
///
/// # Errors
/// The first rule broken, named.
pub(super) fn validate(listener: &lds::Listener) -> Result<Listener, String> {
    let any = listener.api_listener.as_ref().and_then(|a| a.api_listener.as_ref());
    let Some(any) = any else { return Err("no api_listener: not a listener for a gRPC client".to_owned()) };
    if any.type_url != HCM_TYPE_URL {
        return Err(format!("api_listener holds {}, not an HttpConnectionManager", any.type_url));
    }
    let manager: hcm::HttpConnectionManager = message(&any.value, "HttpConnectionManager")?;
    validate_manager(&manager)
}

fn validate_manager(manager: &hcm::HttpConnectionManager) -> Result<Listener, String> {
    use hcm::http_connection_manager::RouteSpecifier;
    let routes = match &manager.route_specifier {
        Some(RouteSpecifier::Rds(rds)) => {
            config_source_is_ads(rds.config_source.as_ref())?;
            RouteSource::Rds(rds.route_config_name.clone())
        }
        Some(RouteSpecifier::RouteConfig(config)) => {
            RouteSource::Inline(validate_routes(config).map_err(|e| format!("route_config: {e}"))?)
        }
        #[allow(unreachable_patterns)]
        _ => return Err("HttpConnectionManager has neither rds nor route_config".to_owned()),
    };
    let max_stream_duration = manager
        .common_http_protocol_options
        .as_ref()
        .and_then(|o| o.max_stream_duration.as_ref())
        .map(|d| duration(d, "common_http_protocol_options.max_stream_duration"))
        .transpose()?;
    let http_filters = validate_filters(&manager.http_filters)?;
    Ok(Listener { routes, max_stream_duration, http_filters })
}

/// The RDS config source must be ADS or `self`, the one stream there is.
fn config_source_is_ads(source: Option<&core::ConfigSource>) -> Result<(), String> {
    use core::config_source::ConfigSourceSpecifier as S;
    match source.and_then(|s| s.config_source_specifier.as_ref()) {
        Some(S::Ads(_) | S::Self_(_)) => Ok(()),
        _ => Err("rds.config_source is neither ads nor self".to_owned()),
    }
}

/// The filters' names: unique, the router present and last, and every
/// other filter one this client knows or marked optional (skipped).
fn validate_filters(filters: &[hcm::HttpFilter]) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::with_capacity(filters.len());
    for (i, filter) in filters.iter().enumerate() {
        if filter.name.is_empty() {
            return Err(format!("http_filters[{i}] has no name"));
        }
        if filters[..i].iter().any(|f| f.name == filter.name) {
            return Err(format!("http filter {:?} appears twice", filter.name));
        }
        let config = match &filter.typed_config {
            Some(any) => any,
            None if filter.is_optional => continue,
            None => return Err(format!("http filter {:?} has no typed_config", filter.name)),
        };
        let type_url = filter_type(config);
        let last = i + 1 == filters.len();
        match (type_url.as_str() == ROUTER_TYPE_URL, last) {
            (true, true) => names.push(filter.name.clone()),
            (true, false) => return Err(format!("the router filter {:?} is not the last", filter.name)),
            (false, true) => return Err("the last http filter is not the router".to_owned()),
            (false, false) if filter.is_optional => continue,
            (false, false) => return Err(format!("http filter {:?} ({type_url}) is not supported", filter.name)),
        }
    }
    if names.is_empty() {
        return Err("no http filters: the router must be the last".to_owned());
    }
    Ok(names)
}

/// A filter config's type: the wrapped type's of a TypedStruct.
fn filter_type(any: &Any) -> String {
    if TYPED_STRUCTS.contains(&any.type_url.as_str()) {
        // TypedStruct { type_url = 1, value = 2 }: read field 1 alone.
        #[derive(Clone, PartialEq, prost::Message)]
        struct TypedStruct {
            #[prost(string, tag = "1")]
            type_url: String,
        }
        if let Ok(inner) = <TypedStruct as prost::Message>::decode(any.value.as_slice()) {
            return inner.type_url;
        }
    }
    any.type_url.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(name: &str, type_url: &str, is_optional: bool) -> hcm::HttpFilter {
        let any = Any { type_url: type_url.to_owned(), value: Vec::new() };
        hcm::HttpFilter { name: name.to_owned(), typed_config: Some(any), is_optional }
    }

    const FAULT: &str = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";

    #[test]
    fn the_router_must_be_last_and_present() {
        let ok = validate_filters(&[filter("fault", FAULT, true), filter("router", ROUTER_TYPE_URL, false)]);
        assert_eq!(ok, Ok(vec!["router".to_owned()]));
        let after = validate_filters(&[filter("router", ROUTER_TYPE_URL, false), filter("fault", FAULT, true)]);
        assert!(after.expect_err("refused").contains("is not the last"));
        assert!(validate_filters(&[]).expect_err("refused").contains("no http filters"));
    }

    #[test]
    fn an_unknown_filter_is_refused_unless_optional() {
        let refused = validate_filters(&[filter("fault", FAULT, false), filter("router", ROUTER_TYPE_URL, false)]);
        assert!(refused.expect_err("refused").contains("\"fault\""));
    }

    #[test]
    fn filter_names_are_unique() {
        let twice = validate_filters(&[filter("a", FAULT, true), filter("a", ROUTER_TYPE_URL, false)]);
        assert!(twice.expect_err("refused").contains("appears twice"));
    }

    #[test]
    fn a_listener_without_an_http_connection_manager_is_refused() {
        let err = validate(&lds::Listener::default()).expect_err("refused");
        assert!(err.contains("no api_listener"), "{err}");
        let any = Any { type_url: "type.googleapis.com/other".to_owned(), value: Vec::new() };
        let listener =
            lds::Listener { api_listener: Some(lds::ApiListener { api_listener: Some(any) }), ..Default::default() };
        assert!(validate(&listener).expect_err("refused").contains("not an HttpConnectionManager"));
    }

    #[test]
    fn rds_must_come_over_ads() {
        use hcm::http_connection_manager::RouteSpecifier;
        let manager = hcm::HttpConnectionManager {
            route_specifier: Some(RouteSpecifier::Rds(hcm::Rds {
                config_source: Some(core::ConfigSource::default()),
                route_config_name: "r".to_owned(),
            })),
            http_filters: vec![filter("router", ROUTER_TYPE_URL, false)],
            ..Default::default()
        };
        assert!(validate_manager(&manager).expect_err("refused").contains("neither ads nor self"));
    }
}
