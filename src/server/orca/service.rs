//! The out-of-band load reports (gRFC A64): `xds.service.orca.v3.
//! OpenRcaService/StreamCoreMetrics` answers a request with the server's
//! figures at once and then at the interval asked for, raised to the
//! server's minimum, until the client goes away or the call's deadline.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_stream::wrappers::IntervalStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::Orca;
use crate::pb::xds::data::orca::v3::OrcaLoadReport;
use crate::pb::xds::service::orca::v3::OrcaLoadReportRequest;
use crate::pb::xds::service::orca::v3::open_rca_service_server::{OpenRcaService, OpenRcaServiceServer};

/// The generated server over `orca`'s figures.
pub(in crate::server) fn service(orca: &Orca) -> OpenRcaServiceServer<Reports> {
    OpenRcaServiceServer::new(Reports { orca: orca.clone() })
}

/// `OpenRcaService` over the server's reporter.
#[derive(Debug)]
pub(in crate::server) struct Reports {
    orca: Orca,
}

/// The report stream, as the generated trait asks for.
type ReportStream = Pin<Box<dyn Stream<Item = Result<OrcaLoadReport, Status>> + Send>>;

#[tonic::async_trait]
impl OpenRcaService for Reports {
    type StreamCoreMetricsStream = ReportStream;

    async fn stream_core_metrics(
        &self,
        request: Request<OrcaLoadReportRequest>,
    ) -> Result<Response<ReportStream>, Status> {
        let request = request.into_inner();
        let interval = interval(request.report_interval, self.orca.settings().min_interval);
        let names = request.request_cost_names;
        let orca = self.orca.clone();
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first tick is at once: a client has figures as soon as it asks.
        let reports = IntervalStream::new(ticks).map(move |_| {
            let mut report = orca.report();
            if !names.is_empty() {
                report.request_cost.retain(|name, _| names.contains(name));
            }
            Ok(report)
        });
        Ok(Response::new(Box::pin(reports)))
    }
}

/// The interval to report at: the one asked for, never under `min` (an
/// interval that is absent, negative or out of range is `min`).
fn interval(asked: Option<prost_types::Duration>, min: Duration) -> Duration {
    asked.and_then(|asked| Duration::try_from(asked).ok()).map_or(min, |asked| asked.max(min))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_never_under_the_minimum() {
        let min = Duration::from_secs(30);
        let asked = |seconds, nanos| Some(prost_types::Duration { seconds, nanos });
        assert_eq!(interval(asked(60, 0), min), Duration::from_secs(60));
        assert_eq!(interval(asked(1, 500), min), min);
        assert_eq!(interval(asked(-5, 0), min), min);
        assert_eq!(interval(None, min), min);
    }
}
