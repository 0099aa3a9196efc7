//! The resources an xDS client holds, each with its watchers (a tokio
//! watch channel), its status as grpc's CSDS names them (requested,
//! ACKed, NACKed, does not exist), its does-not-exist deadline, and the
//! dump of them all.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::protocol::Outcome;
use super::resource::{Resource, ResourceType};

/// A resource's status (CSDS's ClientResourceStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Asked for, nothing heard yet.
    Requested,
    /// Received and valid.
    Acked,
    /// The last update was invalid; the last good one (if any) still holds.
    Nacked,
    /// The management server says it does not exist, or said nothing of it
    /// within the does-not-exist timer.
    DoesNotExist,
}

/// What a watcher sees of one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Watched {
    /// Its status.
    pub status: Status,
    /// The last good resource (kept through a NACK; none once deleted).
    #[serde(serialize_with = "shared")]
    pub resource: Option<Arc<Resource>>,
    /// The version of the response that brought it.
    pub version: String,
    /// Why the last update was refused, while NACKed.
    pub error: Option<String>,
    /// When the status last changed.
    #[serde(serialize_with = "unix_seconds")]
    pub updated: SystemTime,
}

fn shared<S: serde::Serializer>(resource: &Option<Arc<Resource>>, s: S) -> Result<S::Ok, S::Error> {
    resource.as_deref().serialize(s)
}

fn unix_seconds<S: serde::Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(time.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()))
}

impl Watched {
    fn requested() -> Self {
        Self {
            status: Status::Requested,
            resource: None,
            version: String::new(),
            error: None,
            updated: SystemTime::now(),
        }
    }
}

/// One line of the dump: a resource and its state.
#[derive(Debug, Clone, Serialize)]
pub struct DumpEntry {
    /// The type (LDS, RDS, CDS, EDS).
    #[serde(rename = "type")]
    pub kind: ResourceType,
    /// The resource's name.
    pub name: String,
    /// Its state.
    #[serde(flatten)]
    pub state: Watched,
}

struct Entry {
    tx: watch::Sender<Watched>,
    /// When it is declared not to exist, while its timer runs.
    deadline: Option<Instant>,
}

/// Every resource subscribed to, by type and name.
pub(super) struct Cache {
    entries: BTreeMap<(ResourceType, String), Entry>,
    does_not_exist_after: Duration,
}

impl Cache {
    pub(super) fn new(does_not_exist_after: Duration) -> Self {
        Self { entries: BTreeMap::new(), does_not_exist_after }
    }

    /// A watcher of `name`; `true` when it is a new subscription.
    pub(super) fn watch(&mut self, kind: ResourceType, name: &str) -> (watch::Receiver<Watched>, bool) {
        if let Some(entry) = self.entries.get(&(kind, name.to_owned())) {
            return (entry.tx.subscribe(), false);
        }
        let (tx, rx) = watch::channel(Watched::requested());
        self.entries.insert((kind, name.to_owned()), Entry { tx, deadline: None });
        (rx, true)
    }

    /// Drops `name` when nothing watches it any more; `true` when it did.
    pub(super) fn unwatch_if_unwatched(&mut self, kind: ResourceType, name: &str) -> bool {
        let key = (kind, name.to_owned());
        let idle = self.entries.get(&key).is_some_and(|e| e.tx.receiver_count() == 0);
        if idle {
            self.entries.remove(&key);
        }
        idle
    }

    /// The names of `kind` subscribed to.
    pub(super) fn names(&self, kind: ResourceType) -> BTreeSet<String> {
        self.entries.keys().filter(|(k, _)| *k == kind).map(|(_, n)| n.clone()).collect()
    }

    /// Starts the does-not-exist timer of every resource of `kind` not yet
    /// heard of (its request was just sent).
    pub(super) fn arm_timers(&mut self, kind: ResourceType, now: Instant) {
        let deadline = now + self.does_not_exist_after;
        for ((k, _), entry) in &mut self.entries {
            if *k == kind && entry.deadline.is_none() && entry.tx.borrow().status == Status::Requested {
                entry.deadline = Some(deadline);
            }
        }
    }

    /// Stops every timer (the stream is gone: the server cannot be blamed).
    pub(super) fn disarm_timers(&mut self) {
        for entry in self.entries.values_mut() {
            entry.deadline = None;
        }
    }

    /// The earliest running timer.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.entries.values().filter_map(|e| e.deadline).min()
    }

    /// Declares every resource whose timer ran out by `now` not to exist.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<(ResourceType, String)> {
        let mut expired = Vec::new();
        for ((kind, name), entry) in &mut self.entries {
            if entry.deadline.is_some_and(|d| d <= now) {
                entry.deadline = None;
                set(&entry.tx, |w| {
                    w.status = Status::DoesNotExist;
                    w.resource = None;
                });
                expired.push((*kind, name.clone()));
            }
        }
        expired
    }

    /// Applies a response's outcome for `kind`, received with `version`.
    pub(super) fn apply(&mut self, kind: ResourceType, version: &str, outcome: Outcome) {
        for (name, resource) in outcome.valid {
            let Some(entry) = self.entries.get_mut(&(kind, name)) else { continue };
            entry.deadline = None;
            let resource = Arc::new(resource);
            set(&entry.tx, |w| {
                w.status = Status::Acked;
                w.resource = Some(resource);
                version.clone_into(&mut w.version);
                w.error = None;
            });
        }
        for (name, error) in outcome.invalid {
            let Some(entry) = self.entries.get_mut(&(kind, name)) else { continue };
            entry.deadline = None;
            set(&entry.tx, |w| {
                w.status = Status::Nacked;
                w.error = Some(error);
            });
        }
        for name in outcome.deleted {
            let Some(entry) = self.entries.get_mut(&(kind, name)) else { continue };
            entry.deadline = None;
            set(&entry.tx, |w| {
                w.status = Status::DoesNotExist;
                w.resource = None;
                w.error = None;
            });
        }
    }

    /// Everything held, by type then name.
    pub(super) fn dump(&self) -> Vec<DumpEntry> {
        let entries = self.entries.iter();
        entries
            .map(|((kind, name), e)| DumpEntry { kind: *kind, name: name.clone(), state: e.tx.borrow().clone() })
            .collect()
    }
}

/// Changes a watched state and stamps it; watchers wake.
fn set(tx: &watch::Sender<Watched>, change: impl FnOnce(&mut Watched)) {
    tx.send_modify(|w| {
        change(w);
        w.updated = SystemTime::now();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::xds::endpoint::Endpoints;

    fn resource() -> Resource {
        Resource::ClusterLoadAssignment(Endpoints { priorities: Vec::new(), drop_overloads: Vec::new() })
    }

    const EDS: ResourceType = ResourceType::ClusterLoadAssignment;

    #[test]
    fn a_nack_keeps_the_last_good_resource() {
        let mut cache = Cache::new(Duration::from_secs(15));
        let (rx, new) = cache.watch(EDS, "a");
        assert!(new);
        assert_eq!(rx.borrow().status, Status::Requested);
        let valid = Outcome { valid: vec![("a".to_owned(), resource())], ..Outcome::default() };
        cache.apply(EDS, "v1", valid);
        assert_eq!(rx.borrow().status, Status::Acked);
        let invalid = Outcome { invalid: vec![("a".to_owned(), "broken".to_owned())], ..Outcome::default() };
        cache.apply(EDS, "v2", invalid);
        let seen = rx.borrow().clone();
        assert_eq!((seen.status, seen.version.as_str(), seen.error.as_deref()), (Status::Nacked, "v1", Some("broken")));
        assert!(seen.resource.is_some(), "the last good one is kept");
        let json = serde_json::to_value(cache.dump()).expect("JSON");
        assert_eq!(json[0]["type"], "ClusterLoadAssignment");
        assert_eq!(json[0]["status"], "NACKED");
        assert_eq!(json[0]["version"], "v1");
    }

    #[test]
    fn the_timer_declares_a_silent_resource_missing() {
        let mut cache = Cache::new(Duration::from_secs(15));
        let (rx, _) = cache.watch(EDS, "a");
        let (heard, _) = cache.watch(EDS, "b");
        let now = Instant::now();
        cache.arm_timers(EDS, now);
        assert_eq!(cache.next_deadline(), Some(now + Duration::from_secs(15)));
        cache.apply(EDS, "v1", Outcome { valid: vec![("b".to_owned(), resource())], ..Outcome::default() });
        // Sent again (a new stream): a resource already heard of gets no timer.
        cache.arm_timers(EDS, now);
        assert!(cache.expire(now + Duration::from_secs(14)).is_empty());
        assert_eq!(cache.expire(now + Duration::from_secs(15)), [(EDS, "a".to_owned())]);
        assert_eq!(rx.borrow().status, Status::DoesNotExist);
        assert_eq!(heard.borrow().status, Status::Acked);
        assert_eq!(cache.next_deadline(), None);
    }

    #[test]
    fn a_resource_goes_with_its_last_watcher() {
        let mut cache = Cache::new(Duration::from_secs(15));
        let (first, _) = cache.watch(EDS, "a");
        let (second, new) = cache.watch(EDS, "a");
        assert!(!new);
        drop(first);
        assert!(!cache.unwatch_if_unwatched(EDS, "a"));
        drop(second);
        assert!(cache.unwatch_if_unwatched(EDS, "a"));
        assert!(cache.names(EDS).is_empty());
    }
}
