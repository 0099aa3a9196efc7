//! Name resolution: a target's addresses, given (`ipv4:`, `unix:`) or
//! looked up through the system's resolver (a DNS name), and how often a
//! name is looked up again.

use std::time::Duration;

use super::dial::Address;
use super::target::{Kind, Target};
use crate::client::Error;

/// How often a DNS name is resolved again while nothing is lost.
pub(super) const RERESOLVE_EVERY: Duration = Duration::from_secs(30);
/// The least time between two resolutions of a name.
pub(super) const MIN_RERESOLVE: Duration = Duration::from_secs(1);

/// The addresses `target` gives as they are; `None` for a name to resolve.
pub(super) fn fixed(target: &Target) -> Option<Vec<Address>> {
    match target.kind() {
        Kind::Dns { .. } | Kind::Xds(_) => None,
        Kind::Addresses(addresses) => Some(addresses.iter().copied().map(Address::Tcp).collect()),
        Kind::Unix(path) => Some(vec![Address::Unix(path.clone())]),
    }
}

/// The addresses `target`'s name resolves to now, each once, in the
/// resolver's order; `None` when the target is not a name.
///
/// # Errors
/// [`Error::Connect`] when the name does not resolve within `timeout`, or to
/// no address.
pub(super) async fn resolve(target: &Target, timeout: Duration) -> Option<Result<Vec<Address>, Error>> {
    let Kind::Dns { host, port } = target.kind() else { return None };
    let failed = |cause: String| Error::Connect { target: target.to_string(), cause };
    let found = match tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), *port))).await {
        Err(_) => return Some(Err(failed(format!("{host} did not resolve within the connect timeout")))),
        Ok(Err(err)) => return Some(Err(failed(format!("cannot resolve {host}: {err}")))),
        Ok(Ok(found)) => found,
    };
    let mut addresses: Vec<Address> = Vec::new();
    for address in found.map(Address::Tcp) {
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    if addresses.is_empty() {
        return Some(Err(failed(format!("{host} resolves to no address"))));
    }
    Some(Ok(addresses))
}
