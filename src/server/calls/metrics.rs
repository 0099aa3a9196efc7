//! Prometheus metrics, served at `/metrics` on `--metrics-listen` (off by
//! default), named after the OpenTelemetry gRPC metrics
//! (`grpc.server.call.started`, `grpc.server.call.duration`, with
//! `grpc.method` and `grpc.status`) as Prometheus spells them, and the
//! server's own gauges and counters.
//!
//! Per call: one counter and one histogram found in their families (a read
//! lock and a hash of three static strings), and atomic additions for the
//! messages and bytes; everything else is read from the server's own
//! atomics at scrape time.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tonic::Code;

use super::policy::CallPolicy;
use crate::rpc::code_name;
use crate::server::method_table::MethodTable;
use crate::server::protocols::Flows;
use crate::server::transport::Limits;

/// The bucket bounds of the call duration, in seconds: the ones the gRPC
/// OpenTelemetry metrics recommend for latency.
const DURATION_BUCKETS: [f64; 40] = [
    0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.013,
    0.016, 0.02, 0.025, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0, 2.0,
    5.0, 10.0, 20.0, 50.0, 100.0,
];

/// A call as its started counter knows it.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Started {
    grpc_method: &'static str,
    protocol: &'static str,
}

/// A finished call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Finished {
    grpc_method: &'static str,
    protocol: &'static str,
    grpc_status: &'static str,
}

/// The server's metrics.
#[derive(Debug)]
pub(in crate::server) struct Metrics {
    registry: Registry,
    started: Family<Started, Counter>,
    duration: Family<Finished, Histogram>,
    /// The messages each way, counted by the framing (requests) and the
    /// per-call layer (answers).
    pub(super) flows: Arc<Flows>,
    /// What the server serves: the methods that have a label of their own.
    table: &'static MethodTable,
}

impl Metrics {
    /// The metrics of a server whose calls `policy` admits, whose
    /// connections `limits` counts, and which serves what `served` lists.
    pub(in crate::server) fn new(
        policy: &Arc<CallPolicy>,
        limits: &Arc<Limits>,
        table: &'static MethodTable,
    ) -> Arc<Self> {
        let mut registry = Registry::default();
        let started = Family::<Started, Counter>::default();
        registry.register(
            "grpc_server_call_started",
            "Calls started (OpenTelemetry grpc.server.call.started)",
            started.clone(),
        );
        let duration =
            Family::<Finished, Histogram>::new_with_constructor(|| Histogram::new(DURATION_BUCKETS.iter().copied()));
        registry.register_with_unit(
            "grpc_server_call_duration",
            "Calls finished, by how long they took (OpenTelemetry grpc.server.call.duration)",
            Unit::Seconds,
            duration.clone(),
        );
        let flows = Arc::new(Flows::default());
        let scraped = Scraped { flows: Arc::clone(&flows), policy: Arc::clone(policy), limits: Arc::clone(limits) };
        registry.register_collector(Box::new(scraped));
        Arc::new(Self { registry, started, duration, flows, table })
    }

    /// A call to `path` starts; the method's label, for [`Metrics::finish`]
    /// (looked up once per call).
    pub(super) fn start(&self, path: &str, protocol: &'static str) -> &'static str {
        let grpc_method = method_label(self.table, path);
        self.started.get_or_create(&Started { grpc_method, protocol }).inc();
        grpc_method
    }

    /// A call of `grpc_method` (as [`Metrics::start`] named it) ends with
    /// `code` after `duration`.
    pub(super) fn finish(&self, grpc_method: &'static str, protocol: &'static str, code: Code, duration: Duration) {
        let labels = Finished { grpc_method, protocol, grpc_status: code_name(code) };
        self.duration.get_or_create(&labels).observe(duration.as_secs_f64());
    }

    /// The exposition, in the OpenMetrics text format (which Prometheus
    /// scrapes).
    fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// A served method as the `grpc_method` label spells it
/// (`package.Service/Method`); anything else is `other`, so that a client
/// cannot grow the label set (as the OpenTelemetry gRPC metrics say).
fn method_label(table: &MethodTable, path: &str) -> &'static str {
    table.path(path).map_or("other", |served| &served[1..])
}

/// What is read at scrape time from the server's own counters.
#[derive(Debug)]
struct Scraped {
    flows: Arc<Flows>,
    policy: Arc<CallPolicy>,
    limits: Arc<Limits>,
}

impl Collector for Scraped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = |encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64| {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
        };
        let counter = |encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64| {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
        };
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        gauge(
            &mut encoder,
            "search_server_calls_in_flight",
            "Calls admitted and not finished",
            count(self.policy.in_flight()),
        )?;
        counter(
            &mut encoder,
            "search_server_calls_shed",
            "Calls refused at --max-concurrent-calls",
            self.policy.shed(),
        )?;
        if let Some((limit, shed)) = self.policy.adaptive() {
            gauge(
                &mut encoder,
                "search_server_adaptive_limit",
                "The adaptive limit of calls in flight now (--adaptive-concurrency)",
                count(limit),
            )?;
            counter(
                &mut encoder,
                "search_server_adaptive_shed",
                "Calls refused at the adaptive limit (--adaptive-concurrency), answered UNAVAILABLE",
                shed,
            )?;
        }
        gauge(&mut encoder, "search_server_connections", "Connections open", count(self.limits.open()))?;
        counter(
            &mut encoder,
            "search_server_connections_refused",
            "Connections closed at once over --max-connections",
            self.limits.refused(),
        )?;
        counter(
            &mut encoder,
            "search_server_spans_dropped",
            "Trace spans dropped: the export queue was full, or the collector failed or did not answer in time",
            crate::traces::dropped(),
        )?;
        for (direction, flow) in [("received", &self.flows.received), ("sent", &self.flows.sent)] {
            let (messages, bytes) = flow.load();
            counter(
                &mut encoder,
                &format!("search_server_messages_{direction}"),
                &format!("gRPC messages {direction}"),
                messages,
            )?;
            counter(
                &mut encoder,
                &format!("search_server_message_bytes_{direction}"),
                &format!("Bytes of gRPC messages {direction}, 5-byte prefixes included, as on the wire"),
                bytes,
            )?;
        }
        Ok(())
    }
}

/// Serves `/metrics` on `listener` until the process ends.
pub(in crate::server) async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let metrics = Arc::clone(&metrics);
                async move { Ok::<_, Infallible>(answer(&request, &metrics)) }
            });
            let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            http.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
            let _ = http.serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

fn answer(request: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&http::Method::GET, "/metrics") => {
            (StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", metrics.render())
        }
        (_, "/metrics") => (StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET\n".to_owned()),
        _ => (StatusCode::NOT_FOUND, "text/plain", "the metrics are at /metrics\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = http::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(http::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_methods_are_named_and_anything_else_is_other() {
        let table = MethodTable::of(&crate::server::AddedServices::default());
        let method_label = |path| method_label(table, path);
        assert_eq!(method_label("/search.v1.SearchService/Search"), "search.v1.SearchService/Search");
        assert_eq!(method_label("/grpc.health.v1.Health/Check"), "grpc.health.v1.Health/Check");
        assert_eq!(method_label("/Search/search"), "Search/search");
        assert_eq!(method_label("/search.v1.SearchService/Nope"), "other");
        assert_eq!(method_label("/x"), "other");
    }
}
