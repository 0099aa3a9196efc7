//! The state-of-the-world protocol of one resource type on the ADS
//! stream, with no I/O: what to ask for, and what a response means (the
//! ACK or NACK to send, the resources to keep, the ones deleted), as gRFC
//! A27 and A46 (a NACK keeps the valid resources of the response) say.

use std::collections::BTreeSet;

use super::resource::{Decoded, Resource, ResourceType};

/// What one type's requests carry between responses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeState {
    /// The last version ACKed (empty before any).
    pub version: String,
    /// The nonce of the last response (empty before any).
    pub nonce: String,
}

/// A DiscoveryRequest to send, in plain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its type.
    pub kind: ResourceType,
    /// Every name subscribed to (the whole set: state of the world).
    pub names: Vec<String>,
    /// The last good version.
    pub version: String,
    /// The nonce answered.
    pub nonce: String,
    /// For a NACK: every resource's error, one per line.
    pub error: Option<String>,
}

/// What a response means.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The valid resources, by name (kept even when the response is NACKed).
    pub valid: Vec<(String, Resource)>,
    /// The invalid resources, by name, with why (their last good kept).
    pub invalid: Vec<(String, String)>,
    /// The subscribed names the response deletes: LDS and CDS names it
    /// leaves out, unless the server's features say to ignore deletions,
    /// or a resource of the response could not even be named.
    pub deleted: Vec<String>,
}

impl TypeState {
    /// The request that subscribes to `names` (sent when they change, and
    /// on every new stream).
    #[must_use]
    pub fn subscribe(&self, kind: ResourceType, names: &BTreeSet<String>) -> Request {
        Request {
            kind,
            names: names.iter().cloned().collect(),
            version: self.version.clone(),
            nonce: self.nonce.clone(),
            error: None,
        }
    }

    /// Takes a response of `kind` (its version, nonce and decoded
    /// resources) while `names` are subscribed: returns the ACK or NACK to
    /// send and what the response means for the cache.
    pub fn respond(
        &mut self,
        kind: ResourceType,
        names: &BTreeSet<String>,
        version: &str,
        nonce: &str,
        decoded: Vec<Decoded>,
        ignore_deletion: bool,
    ) -> (Request, Outcome) {
        let mut outcome = Outcome::default();
        let mut errors = Vec::new();
        let mut seen = BTreeSet::new();
        let mut unnamed = false;
        for Decoded { name, result } in decoded {
            match (name, result) {
                (Some(name), Ok(resource)) => {
                    seen.insert(name.clone());
                    outcome.valid.push((name, resource));
                }
                (Some(name), Err(error)) => {
                    seen.insert(name.clone());
                    errors.push(format!("{kind} resource {name:?}: {error}"));
                    outcome.invalid.push((name, error));
                }
                (None, Err(error)) => {
                    unnamed = true;
                    errors.push(format!("{kind} resource: {error}"));
                }
                (None, Ok(_)) => unnamed = true,
            }
        }
        if kind.deleted_when_absent() && !ignore_deletion && !unnamed {
            outcome.deleted = names.iter().filter(|n| !seen.contains(*n)).cloned().collect();
        }
        self.nonce = nonce.to_owned();
        let error = if errors.is_empty() {
            self.version = version.to_owned();
            None
        } else {
            Some(errors.join("\n"))
        };
        let mut request = self.subscribe(kind, names);
        request.error = error;
        (request, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::xds::endpoint::Endpoints;

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn good(name: &str) -> Decoded {
        let resource =
            Resource::ClusterLoadAssignment(Endpoints { priorities: Vec::new(), drop_overloads: Vec::new() });
        Decoded { name: Some(name.to_owned()), result: Ok(resource) }
    }

    fn bad(name: Option<&str>) -> Decoded {
        Decoded { name: name.map(str::to_owned), result: Err("broken".to_owned()) }
    }

    #[test]
    fn a_valid_response_is_acked_with_its_version_and_nonce() {
        let mut state = TypeState::default();
        let first = state.subscribe(ResourceType::ClusterLoadAssignment, &names(&["a"]));
        assert_eq!((first.version.as_str(), first.nonce.as_str(), first.error), ("", "", None));
        let (ack, outcome) =
            state.respond(ResourceType::ClusterLoadAssignment, &names(&["a"]), "v1", "n1", vec![good("a")], false);
        assert_eq!((ack.version.as_str(), ack.nonce.as_str(), ack.error), ("v1", "n1", None));
        assert_eq!(ack.names, ["a"]);
        assert_eq!(outcome.valid.len(), 1);
    }

    #[test]
    fn an_invalid_resource_is_nacked_with_the_last_good_version_and_the_valid_ones_kept() {
        let mut state = TypeState { version: "v1".to_owned(), nonce: "n1".to_owned() };
        let subscribed = names(&["a", "b"]);
        let (nack, outcome) =
            state.respond(ResourceType::Cluster, &subscribed, "v2", "n2", vec![good("a"), bad(Some("b"))], false);
        assert_eq!((nack.version.as_str(), nack.nonce.as_str()), ("v1", "n2"));
        let error = nack.error.expect("a NACK");
        assert!(error.contains("CDS resource \"b\": broken"), "{error}");
        assert_eq!(outcome.valid.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(outcome.invalid, [("b".to_owned(), "broken".to_owned())]);
        assert!(outcome.deleted.is_empty());
        assert_eq!(state.version, "v1");
        assert_eq!(state.nonce, "n2");
    }

    #[test]
    fn lds_and_cds_delete_what_a_response_leaves_out_and_rds_eds_do_not() {
        let subscribed = names(&["a", "b"]);
        let mut state = TypeState::default();
        let (_, outcome) = state.respond(ResourceType::Listener, &subscribed, "v1", "n1", vec![good("a")], false);
        assert_eq!(outcome.deleted, ["b"]);
        let (_, outcome) = state.respond(ResourceType::Listener, &subscribed, "v2", "n2", vec![good("a")], true);
        assert!(outcome.deleted.is_empty(), "ignore_resource_deletion");
        let (_, outcome) =
            state.respond(ResourceType::RouteConfiguration, &subscribed, "v1", "n1", vec![good("a")], false);
        assert!(outcome.deleted.is_empty());
        let (nack, outcome) = state.respond(ResourceType::Cluster, &subscribed, "v3", "n3", vec![bad(None)], false);
        assert!(outcome.deleted.is_empty(), "a resource without a name might be any of them");
        assert!(nack.error.is_some());
    }
}
