//! The ORCA cases: the load report a request asks for comes back in its
//! call's `endpoint-load-metrics-bin` trailer (`orca_per_rpc`), and the
//! figures a stream request sets come on the server's out-of-band report
//! stream (`orca_oob`), each report exactly the four figures asked for.

use std::collections::HashMap;
use std::time::Duration;

use prost::Message;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;

use super::calls::{Test, requests};
use crate::interop::client::Failed;
use crate::interop::orca::expected;
use crate::pb::testing::{ResponseParameters, SimpleRequest, StreamingOutputCallRequest, TestOrcaReport};
use crate::pb::xds::data::orca::v3::OrcaLoadReport;
use crate::pb::xds::service::orca::v3::OrcaLoadReportRequest;
use crate::pb::xds::service::orca::v3::open_rca_service_client::OpenRcaServiceClient;
use crate::server::ORCA_TRAILER;

/// The reports the out-of-band case reads before it gives up on one.
const REPORTS_READ: usize = 10;

/// The interval the out-of-band case asks for.
const INTERVAL: Duration = Duration::from_secs(1);

fn test_report(cpu: f64, memory: f64, cost: Option<f64>, utilization: f64) -> TestOrcaReport {
    TestOrcaReport {
        cpu_utilization: cpu,
        memory_utilization: memory,
        request_cost: cost.map(|cost| HashMap::from([("cost".to_owned(), cost)])).unwrap_or_default(),
        utilization: HashMap::from([("util".to_owned(), utilization)]),
    }
}

/// The load report in an answer's metadata.
fn report_of(metadata: &MetadataMap) -> Result<OrcaLoadReport, Failed> {
    let value = metadata.get_bin(ORCA_TRAILER.as_str()).ok_or_else(|| Failed("no load report trailer".into()))?;
    let bytes = value.to_bytes().map_err(|err| Failed(format!("a load report that is not base64: {err}")))?;
    OrcaLoadReport::decode(bytes).map_err(|err| Failed(format!("a load report that does not decode: {err}")))
}

pub(super) async fn orca_per_rpc(client: &mut Test) -> Result<(), Failed> {
    let test = test_report(0.8210, 0.5847, Some(3456.32), 0.30499);
    let request = SimpleRequest { orca_per_query_report: Some(test.clone()), ..SimpleRequest::default() };
    let answer = client.unary_call(request).await?;
    let report = report_of(answer.metadata())?;
    if report != expected(&test) {
        return Err(Failed::expected(format!("the load report {:?}", expected(&test)), report));
    }
    Ok(())
}

pub(super) async fn orca_oob(client: &mut Test, channel: Channel) -> Result<(), Failed> {
    let (send, stream) = requests();
    let closed = || Failed("the call ended while the client still sent".into());
    let request = |test: &TestOrcaReport| StreamingOutputCallRequest {
        orca_oob_report: Some(test.clone()),
        response_parameters: vec![ResponseParameters { size: 1, ..ResponseParameters::default() }],
        ..StreamingOutputCallRequest::default()
    };
    let tests = [test_report(0.8210, 0.5847, None, 0.30499), test_report(0.29309, 0.2, None, 0.2039)];
    send.send(request(&tests[0])).await.map_err(|_| closed())?;
    let mut answers = client.full_duplex_call(stream).await?.into_inner();
    let mut reports = None;
    for (i, test) in tests.iter().enumerate() {
        if i > 0 {
            send.send(request(test)).await.map_err(|_| closed())?;
        }
        answers.message().await?.ok_or_else(|| Failed("the answers ended early".into()))?;
        // Opened once the first figures are set: its first report has them.
        if reports.is_none() {
            let ask = OrcaLoadReportRequest { report_interval: Some(interval()?), request_cost_names: vec![] };
            reports = Some(OpenRcaServiceClient::new(channel.clone()).stream_core_metrics(ask).await?.into_inner());
        }
        let reports = reports.as_mut().ok_or_else(|| Failed("no report stream".into()))?;
        let want = expected(test);
        let mut last = None;
        for _ in 0..REPORTS_READ {
            let report = reports.message().await?.ok_or_else(|| Failed("the report stream ended".into()))?;
            if report == want {
                last = None;
                break;
            }
            last = Some(report);
        }
        if let Some(last) = last {
            return Err(Failed::expected(format!("within {REPORTS_READ} reports, {want:?}"), last));
        }
    }
    drop(send);
    while answers.message().await?.is_some() {}
    Ok(())
}

fn interval() -> Result<prost_types::Duration, Failed> {
    INTERVAL.try_into().map_err(|err| Failed(format!("{err}")))
}
