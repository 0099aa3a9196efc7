//! The command-line side: the `client` command. `client Banana` is the
//! article's call and prints `status=1`; the subcommands reach the other
//! three RPC kinds, and `client bench` load-tests a server.
//!
//! Files:
//! - `mod.rs`: running one invocation ([`run`]).
//! - `args.rs`: the flags ([`Args`]) and their checked form ([`Invocation`]).
//! - `input/`: queries from lines, texts and `-d` JSON, batched for streams.
//! - `output.rs`: one text or JSON line per answer.
//! - `exit.rs`: what a run can fail with, and its exit code.
//! - `events.rs`: `-v`, the channel's events on stderr.
//! - `bench/`: the load generator behind `client bench`.
//! - `soak/`: mixed traffic for a given time behind `client soak`, with
//!   the server's memory and descriptors sampled.

use std::io::Write;
use std::time::Duration;

mod args;
pub mod bench;
mod events;
pub mod exit;
pub mod input;
pub mod output;
pub mod soak;

pub use self::args::{Args, BenchArgs, Call, Command, Input, Invocation, Query, SoakArgs};
use self::bench::{LoadConfig, Model};
use self::events::Shown;
pub use self::exit::Error;
use self::input::{Batches, LineBatches, Source};
use self::output::Output;
use self::soak::SoakConfig;
use crate::client::{self, Client, ClientOptions, Target, Transition};
use crate::pb::v1::{ClassifyRequest, CountRequest, ScanRequest, SearchRequest};

/// A call with its input read (or opened) and checked, before connecting, so
/// that a local mistake never waits on the network.
enum Ready {
    Rpc(RpcReady),
    Bench(BenchArgs, Vec<String>),
    Soak(SoakArgs),
    XdsStatus,
}

/// One call of the service, its input ready.
enum RpcReady {
    Search(SearchRequest),
    Classify(Batches),
    Count(Batches),
    Scan(ScanRequest),
}

async fn prepare(call: Call) -> Result<Ready, input::Error> {
    Ok(match call {
        Call::Search(Query::Text(query)) => Ready::Rpc(RpcReady::Search(SearchRequest { query })),
        Call::Search(Query::Json(data)) => Ready::Rpc(RpcReady::Search(data.message().await?)),
        Call::Classify(input) => {
            Ready::Rpc(RpcReady::Classify(batches::<ClassifyRequest>(input, |m| m.queries).await?))
        }
        Call::Count(input) => Ready::Rpc(RpcReady::Count(batches::<CountRequest>(input, |m| m.queries).await?)),
        Call::Scan(Input::Plain(source)) => {
            Ready::Rpc(RpcReady::Scan(ScanRequest { text: input::read_text(&source).await? }))
        }
        Call::Scan(Input::Json(data)) => Ready::Rpc(RpcReady::Scan(data.message().await?)),
        Call::Bench(bench) => {
            let queries = match &bench.queries_file {
                Some(file) => input::read_text(&Source::File(file.clone())).await?.lines().map(str::to_owned).collect(),
                None if bench.queries.is_empty() => vec!["Banana".to_owned(), "Apple".to_owned()],
                None => bench.queries.clone(),
            };
            Ready::Bench(bench, queries)
        }
        Call::Soak(soak) => Ready::Soak(soak),
        Call::XdsStatus => Ready::XdsStatus,
    })
}

async fn batches<M: serde::de::DeserializeOwned>(
    input: Input,
    queries: fn(M) -> Vec<String>,
) -> Result<Batches, input::Error> {
    Ok(match input {
        Input::Plain(source) => Batches::Lines(LineBatches::open(source).await?),
        Input::Json(data) => Batches::Given(data.messages::<M>().await?.into_iter().map(queries).collect()),
    })
}

/// How long the spans still queued at exit may take to leave.
const TRACES_AT_EXIT: Duration = Duration::from_secs(2);

/// Runs one invocation, printing responses to `out` as they arrive. With
/// tracing on, the spans still queued are sent before it returns (within
/// 2 s), and spans that could not be are reported on stderr.
///
/// # Errors
/// See [`Error`]; output already printed stays printed.
pub async fn run(mut invocation: Invocation, out: impl Write) -> Result<(), Error> {
    let token = invocation.options.token.is_some();
    let Some(config) = invocation.traces.take() else {
        return run_untraced(invocation, out).await.map_err(|err| err.advised(token));
    };
    let traces = crate::traces::install(&config)?;
    let result = run_untraced(invocation, out).await.map_err(|err| err.advised(token));
    // The exporter's thread runs its requests on this runtime: wait beside it.
    tokio::task::spawn_blocking(move || traces.shutdown(TRACES_AT_EXIT)).await.ok();
    let dropped = crate::traces::dropped();
    if dropped > 0 {
        eprintln!("client: {dropped} trace spans were not exported to {}", config.endpoint);
    }
    result
}

async fn run_untraced(invocation: Invocation, out: impl Write) -> Result<(), Error> {
    let mut out = Output::new(out, invocation.format);
    let (target, options, verbose) = (invocation.target, invocation.options, invocation.verbose);
    let ready = match prepare(invocation.call).await? {
        Ready::Rpc(ready) => ready,
        Ready::Bench(bench, queries) => {
            out.report(&bench::run(load_config(bench, queries, target, options, verbose)).await?)?;
            out.flush()?;
            return Ok(());
        }
        Ready::Soak(soak) => {
            let report = soak::run(soak_config(soak, target, options, verbose)).await?;
            out.soak(&report)?;
            out.flush()?;
            if !report.passed() {
                return Err(Error::SoakFailed {
                    unexpected: report.unexpected,
                    lost: report.started - report.ended + report.lost,
                });
            }
            return Ok(());
        }
        Ready::XdsStatus => return xds_status(&target, options, out.into_inner()).await,
    };
    let client = Client::new(&target, options)?;
    if verbose {
        // Subscribed before the first call: no transition is missed.
        tokio::spawn(show_connectivity(client.connectivity().transitions()));
        events::show(&client, Shown::All, None);
    }
    match ready {
        RpcReady::Search(request) => out.search(&client.search(request).await?)?,
        RpcReady::Classify(batches) => classify(&client, batches, &mut out).await?,
        RpcReady::Count(batches) => {
            let (requests, feeder) = batches.feed(|queries| CountRequest { queries });
            let response = client.count(requests).await?;
            let sent = feeder.finish().await?;
            if response.queries != sent {
                return Err(protocol(format!("sent {sent} queries but the server counted {}", response.queries)));
            }
            out.count(&response)?;
        }
        RpcReady::Scan(request) => {
            let mut responses = client.scan(request).await?;
            while let Some(response) = responses.message().await? {
                out.scan(&response)?;
                out.flush()?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `client xds-status`: the xDS client's resources as JSON, once the
/// channel has reached a server or failed to (within the call timeout).
async fn xds_status(target: &Target, options: ClientOptions, mut out: impl Write) -> Result<(), Error> {
    let client = Client::new(target, options)?;
    // Reached or not, what the xDS client holds is what is asked.
    let _ = client.reach().await;
    let dump = client.xds_dump().unwrap_or_default();
    let json = serde_json::to_string_pretty(&dump).map_err(|err| protocol(err.to_string()))?;
    writeln!(out, "{json}")?;
    out.flush()?;
    Ok(())
}

/// What `client bench` runs, from its flags and the client's.
fn load_config(
    bench: BenchArgs,
    queries: Vec<String>,
    target: Target,
    options: ClientOptions,
    verbose: bool,
) -> LoadConfig {
    LoadConfig {
        target,
        options,
        call: bench.call,
        connections: bench.connections as usize,
        concurrency: bench.concurrency as usize,
        total: bench.total,
        duration: bench.duration.into(),
        model: bench.rate.map_or(Model::Closed, |rate| Model::Open { rate }),
        queries,
        batch: bench.batch as usize,
        legacy: bench.legacy,
        progress: true,
        verbose,
    }
}

/// What `client soak` runs, from its flags and the client's.
fn soak_config(soak: SoakArgs, target: Target, options: ClientOptions, verbose: bool) -> SoakConfig {
    SoakConfig {
        target,
        options,
        duration: soak.duration.into(),
        workers: soak.concurrency as usize,
        burst: soak.burst as usize,
        server_pid: soak.server_pid,
        verbose,
    }
}

/// Streams the batches and prints answers as they arrive, checking that
/// every query is answered once and in order: nothing is silently dropped.
async fn classify(client: &Client, batches: Batches, out: &mut Output<impl Write>) -> Result<(), Error> {
    let (requests, feeder) = batches.feed(|queries| ClassifyRequest { queries });
    let mut responses = client.classify(requests).await?;
    let mut answered = 0u64;
    while let Some(response) = responses.message().await? {
        if response.first_index != answered {
            return Err(protocol(format!(
                "expected the answer to query {answered}, got one to query {}",
                response.first_index
            )));
        }
        answered += response.statuses.len() as u64;
        out.classify(&response)?;
        out.flush()?;
    }
    let sent = feeder.finish().await?;
    if answered != sent {
        return Err(protocol(format!("sent {sent} queries but got {answered} answers")));
    }
    Ok(())
}

/// Prints each connectivity change on stderr, as `-v` asks.
async fn show_connectivity(mut transitions: tokio::sync::mpsc::UnboundedReceiver<Transition>) {
    while let Some((from, to)) = transitions.recv().await {
        eprintln!("client: connectivity {from} -> {to}");
    }
}

fn protocol(message: String) -> Error {
    Error::Client(client::Error::Protocol(message))
}
