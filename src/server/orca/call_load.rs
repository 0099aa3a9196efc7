//! One call's own load figures ([`CallLoad`]): the per-call layer puts it
//! in the request's extensions when load reports are on, the handler adds
//! to it, and the call's `endpoint-load-metrics-bin` trailer carries it.

use std::sync::{Arc, Mutex};

use prost::Message;

use crate::pb::xds::data::orca::v3::OrcaLoadReport;

/// One call's own load figures, which its handler may add to: a named cost
/// (`request_cost`, as Classify records the lines it classified), a named
/// utilization or metric, or any field of the report. Taken from the
/// request's extensions ([`CallLoad::of`]); absent when load reports are
/// off. A clone shares the figures.
#[derive(Debug, Clone, Default)]
pub struct CallLoad {
    /// `None` until the handler records something: a call that records
    /// nothing costs one allocation (the `Arc`) and no lock.
    figures: Arc<Mutex<Option<Box<OrcaLoadReport>>>>,
}

impl CallLoad {
    /// The call's figures, from its request's extensions (a tonic request's
    /// `extensions()` or an http request's); `None` when reports are off.
    #[must_use]
    pub fn of(extensions: &http::Extensions) -> Option<&Self> {
        extensions.get::<Self>()
    }

    /// Adds `value` to the call's cost `name` (a cost recorded twice is the
    /// sum of both).
    pub fn add_cost(&self, name: &str, value: f64) {
        self.update(|report| *report.request_cost.entry(name.to_owned()).or_default() += value);
    }

    /// Changes the call's report with `change`: its fields go over the
    /// server's in the call's trailer.
    pub fn update(&self, change: impl FnOnce(&mut OrcaLoadReport)) {
        let mut figures = self.figures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        change(figures.get_or_insert_default());
    }

    /// The call's report encoded, if it recorded anything.
    pub(super) fn encoded(&self) -> Option<Vec<u8>> {
        let figures = self.figures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        figures.as_ref().map(|report| report.encode_to_vec())
    }
}
