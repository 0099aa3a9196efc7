//! The server side of the ORCA interop cases: a request's
//! `orca_per_query_report` becomes its call's load report, a stream
//! request's `orca_oob_report` the server's out-of-band figures, as gRPC's
//! own interop servers do; and the report a `TestOrcaReport` stands for,
//! which the client's cases expect back.

use std::time::Duration;

use crate::pb::testing::TestOrcaReport;
use crate::pb::xds::data::orca::v3::OrcaLoadReport;
use crate::server::{Figures, Orca, OrcaSettings};

/// The shortest out-of-band interval the interop server reports at.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The interop server's reporter: figures set by the requests, not
/// measured, so that each report is exactly what a case asked for.
#[must_use]
pub fn reporter() -> Orca {
    Orca::new(OrcaSettings { figures: Figures::Set, min_interval: MIN_INTERVAL })
}

/// The load report `test` stands for: its four figures, nothing else.
#[must_use]
pub fn expected(test: &TestOrcaReport) -> OrcaLoadReport {
    OrcaLoadReport {
        cpu_utilization: test.cpu_utilization,
        mem_utilization: test.memory_utilization,
        request_cost: test.request_cost.clone(),
        utilization: test.utilization.clone(),
        ..OrcaLoadReport::default()
    }
}

/// Makes a report (a call's, or the server's) exactly the one `test`
/// stands for.
pub(super) fn set_to(test: &TestOrcaReport) -> impl FnOnce(&mut OrcaLoadReport) + use<> {
    let report = expected(test);
    move |current| *current = report
}
