//! RouteConfiguration (RDS, or inline in a Listener): virtual hosts and
//! the one a call's authority picks (gRFC A27's domain rules), each with
//! its routes (`route_match.rs`, `route_action.rs`).

use serde::Serialize;

use super::route_action::{RetryPolicy, RouteAction, decode_action, decode_retry};
use super::route_match::{RouteMatch, decode_match};
use crate::pb::envoy::config::route::v3 as rds;

/// A validated RouteConfiguration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteConfig {
    /// Its virtual hosts, in order.
    pub virtual_hosts: Vec<VirtualHost>,
}

/// A virtual host: the domains it answers and its routes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualHost {
    /// Its name.
    pub name: String,
    /// The domain patterns it answers (`foo.com`, `*.foo.com`, `foo.*`, `*`).
    pub domains: Vec<String>,
    /// Its routes, the first that matches a call wins.
    pub routes: Vec<Route>,
    /// The retry policy of routes that have none of their own (gRFC A44).
    pub retry_policy: Option<RetryPolicy>,
}

/// A route: what a call must match, and where it goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    /// What a call must match.
    pub matcher: RouteMatch,
    /// What happens to a call that matches.
    pub action: RouteAction,
}

impl RouteConfig {
    /// The virtual host for `authority` (the target's name), by A27's
    /// rules: an exact domain first, then the longest suffix wildcard
    /// (`*.foo.com`), then the longest prefix wildcard (`foo.*`), then `*`;
    /// case-insensitive.
    #[must_use]
    pub fn virtual_host(&self, authority: &str) -> Option<&VirtualHost> {
        let authority = authority.to_ascii_lowercase();
        let mut best: Option<((u8, usize), &VirtualHost)> = None;
        for host in &self.virtual_hosts {
            for domain in &host.domains {
                let Some(score) = domain_match(&domain.to_ascii_lowercase(), &authority) else { continue };
                if best.is_none_or(|(b, _)| score > b) {
                    best = Some((score, host));
                }
            }
        }
        best.map(|(_, host)| host)
    }
}

/// How well `pattern` matches `host`, higher better: (kind, length), kind
/// 4 exact, 3 suffix wildcard, 2 prefix wildcard, 1 `*`; `None` when it
/// does not match or is no valid pattern (a `*` in the middle).
fn domain_match(pattern: &str, host: &str) -> Option<(u8, usize)> {
    if pattern.is_empty() {
        return None;
    }
    if pattern == "*" {
        return Some((1, 1));
    }
    let len = pattern.len();
    if let Some(suffix) = pattern.strip_prefix('*') {
        // "*foo" needs at least one character before "foo".
        return (!suffix.contains('*') && host.len() > suffix.len() && host.ends_with(suffix)).then_some((3, len));
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return (!prefix.contains('*') && host.len() > prefix.len() && host.starts_with(prefix)).then_some((2, len));
    }
    (!pattern.contains('*') && pattern == host).then_some((4, len))
}

/// Validates a RouteConfiguration (from RDS, or inline in a Listener).
///
/// # Errors
/// The first rule a virtual host or a route breaks, named.
pub(super) fn validate(config: &rds::RouteConfiguration) -> Result<RouteConfig, String> {
    let mut virtual_hosts = Vec::with_capacity(config.virtual_hosts.len());
    for host in &config.virtual_hosts {
        let at = format!("virtual host {:?}", host.name);
        let retry_policy = match &host.retry_policy {
            Some(policy) => decode_retry(policy).map_err(|e| format!("{at}: {e}"))?,
            None => None,
        };
        let mut routes = Vec::with_capacity(host.routes.len());
        for (i, route) in host.routes.iter().enumerate() {
            let at = format!("{at}, route {i}");
            let Some(matcher) = &route.r#match else { return Err(format!("{at}: no match")) };
            // A route whose match or action this client cannot honour is
            // skipped, as grpc does, rather than refusing the whole config.
            let Some(matcher) = decode_match(matcher).map_err(|e| format!("{at}: {e}"))? else { continue };
            let Some(mut action) = decode_action(route.action.as_ref()).map_err(|e| format!("{at}: {e}"))? else {
                continue;
            };
            if let (RouteAction::Forward(forward), Some(rds::route::Action::Route(raw))) = (&mut action, &route.action)
                && raw.retry_policy.is_none()
            {
                forward.retry_policy.clone_from(&retry_policy);
            }
            routes.push(Route { matcher, action });
        }
        virtual_hosts.push(VirtualHost {
            name: host.name.clone(),
            domains: host.domains.clone(),
            routes,
            retry_policy,
        });
    }
    Ok(RouteConfig { virtual_hosts })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(hosts: &[(&str, &[&str])]) -> RouteConfig {
        let virtual_hosts = hosts
            .iter()
            .map(|(name, domains)| VirtualHost {
                name: (*name).to_owned(),
                domains: domains.iter().map(|d| (*d).to_owned()).collect(),
                routes: Vec::new(),
                retry_policy: None,
            })
            .collect();
        RouteConfig { virtual_hosts }
    }

    fn pick<'a>(config: &'a RouteConfig, authority: &str) -> Option<&'a str> {
        config.virtual_host(authority).map(|h| h.name.as_str())
    }

    #[test]
    fn an_exact_domain_beats_every_wildcard() {
        let c = config(&[
            ("any", &["*"]),
            ("prefix", &["search.*"]),
            ("suffix", &["*.example.com"]),
            ("exact", &["Search.Example.com"]),
        ]);
        assert_eq!(pick(&c, "search.example.com"), Some("exact"));
        assert_eq!(pick(&c, "SEARCH.example.com"), Some("exact"));
    }

    #[test]
    fn a_suffix_wildcard_beats_a_prefix_wildcard_and_the_longest_wins() {
        let c = config(&[("prefix", &["search.*"]), ("short", &["*.com"]), ("long", &["*.example.com"])]);
        assert_eq!(pick(&c, "search.example.com"), Some("long"));
        assert_eq!(pick(&c, "search.example.org"), Some("prefix"));
        // The kind first, then the length: a short suffix beats a long prefix.
        let c = config(&[("long prefix", &["search.example.*"]), ("short suffix", &["*.com"])]);
        assert_eq!(pick(&c, "search.example.com"), Some("short suffix"));
        let c = config(&[("p1", &["s*"]), ("p2", &["search.*"]), ("any", &["*"])]);
        assert_eq!(pick(&c, "search.org"), Some("p2"));
        assert_eq!(pick(&c, "other"), Some("any"));
    }

    #[test]
    fn a_wildcard_in_the_middle_matches_nothing() {
        let c = config(&[("bad", &["se*ch"])]);
        assert_eq!(pick(&c, "search"), None);
        assert_eq!(pick(&c, "se*ch"), None);
        // A wildcard stands for at least one character.
        let c = config(&[("suffix", &["*.com"])]);
        assert_eq!(pick(&c, ".com"), None);
    }
}
