//! The `client` command line: flags ([`Args`]), their checked form
//! ([`Invocation`]), running one call, and the exit codes.
//!
//! `client Banana` is the article's call and prints `status=1`; the
//! subcommands reach the other three RPC kinds.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};

use crate::client::{self, Client, Target};
use crate::input::{self, Batches, Data, LineBatches, Source};
use crate::output::{Format, Output};
use crate::pb::v1::{ClassifyRequest, CountRequest, ScanRequest, SearchRequest};

/// Exit codes of the `client` binary (also listed in the README).
pub mod exit {
    /// The call succeeded.
    pub const OK: u8 = 0;
    /// Anything else failed: writing the output, or the server broke the contract.
    pub const FAILURE: u8 = 1;
    /// Bad flags or arguments (clap prints the usage).
    pub const USAGE: u8 = 2;
    /// The server could not be reached.
    pub const UNREACHABLE: u8 = 3;
    /// The input could not be read or parsed (a file, a non-UTF-8 line, bad JSON).
    pub const INPUT: u8 = 4;
    /// The call ended with gRPC status N: the exit code is 64 + N, as
    /// grpcurl does (UNAVAILABLE, 14, exits 78).
    pub const STATUS_BASE: u8 = 64;
}

/// Calls the Search service: `client Banana` prints `status=1`.
#[derive(Debug, Parser)]
#[command(
    name = "client",
    version,
    subcommand_negates_reqs = true,
    override_usage = "client [OPTIONS] QUERY\n       client [OPTIONS] <COMMAND> [ARGS]"
)]
pub struct Args {
    /// The server: HOST:PORT, [IPv6]:PORT or http://HOST:PORT.
    #[arg(long, short = 't', env = "SEARCH_TARGET", default_value = crate::DEFAULT_ADDR, global = true)]
    pub target: Target,

    /// Print each response message as one JSON line (proto3 JSON mapping)
    /// instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// The request as JSON instead of a query or file: the JSON itself,
    /// @FILE, or @- for standard input. Streaming calls take several
    /// messages, one after another.
    #[arg(long, short = 'd', value_name = "JSON|@FILE|@-", global = true)]
    pub data: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// The query for the unary Search call (the default command).
    pub query: Option<String>,
}

/// The calls, one per RPC kind.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Does QUERY contain "banana"? Prints status=1 or status=0 (unary;
    /// the default command, so `client QUERY` is the same).
    Search {
        /// The text to test.
        query: Option<String>,
    },
    /// Classify every line of FILE (or standard input), printing one
    /// status=N line per input line, in order, as answers arrive
    /// (bidirectional streaming).
    Classify {
        /// One query per line; - or nothing reads standard input.
        file: Option<PathBuf>,
    },
    /// Count the lines of FILE (or standard input) and how many contain
    /// "banana"; prints queries=N matches=M (client streaming).
    Count {
        /// One query per line; - or nothing reads standard input.
        file: Option<PathBuf>,
    },
    /// Print every occurrence of "banana" in FILE (or standard input) as
    /// line=L column=C offset=O, as the server finds them (server streaming).
    Scan {
        /// The text to scan, in UTF-8.
        file: Option<PathBuf>,
    },
}

/// A checked command line: what to call, with what, and where.
#[derive(Debug)]
pub struct Invocation {
    /// The server.
    pub target: Target,
    /// How to print responses.
    pub format: Format,
    /// The call and its input.
    pub call: Call,
}

/// One call with where its input comes from.
#[derive(Debug)]
pub enum Call {
    /// Unary Search.
    Search(Query),
    /// Bidirectional Classify.
    Classify(Input),
    /// Client-streaming Count.
    Count(Input),
    /// Server-streaming Scan.
    Scan(Input),
}

/// The input of the unary call.
#[derive(Debug)]
pub enum Query {
    /// The positional QUERY.
    Text(String),
    /// `-d`.
    Json(Data),
}

/// The input of a streaming call.
#[derive(Debug)]
pub enum Input {
    /// FILE or standard input.
    Plain(Source),
    /// `-d`.
    Json(Data),
}

impl Args {
    /// Checks what clap cannot: that a call has exactly one input.
    ///
    /// # Errors
    /// A usage error, printed by clap with exit code 2.
    pub fn validate(self) -> Result<Invocation, clap::Error> {
        let data = self.data.as_deref().map(Data::from_arg);
        let conflict = |what: &str| {
            Args::command().error(ErrorKind::ArgumentConflict, format!("{what} and --data cannot be used together"))
        };
        let streaming = |file: Option<PathBuf>| match (file, data.clone()) {
            (Some(_), Some(_)) => Err(conflict("FILE")),
            (None, Some(data)) => Ok(Input::Json(data)),
            (file, None) => Ok(Input::Plain(Source::from_arg(file))),
        };
        if self.command.is_some() && self.query.is_some() {
            let message = "a QUERY goes after `search`, not before a command (`client search QUERY`)";
            return Err(Args::command().error(ErrorKind::ArgumentConflict, message));
        }
        let call = match self.command {
            None => Call::Search(query(self.query, data.clone())?),
            Some(Command::Search { query: q }) => Call::Search(query(q, data.clone())?),
            Some(Command::Classify { file }) => Call::Classify(streaming(file)?),
            Some(Command::Count { file }) => Call::Count(streaming(file)?),
            Some(Command::Scan { file }) => Call::Scan(streaming(file)?),
        };
        let format = if self.json { Format::Json } else { Format::Text };
        Ok(Invocation { target: self.target, format, call })
    }
}

fn query(text: Option<String>, data: Option<Data>) -> Result<Query, clap::Error> {
    match (text, data) {
        (Some(text), None) => Ok(Query::Text(text)),
        (None, Some(data)) => Ok(Query::Json(data)),
        (Some(_), Some(_)) => {
            Err(Args::command().error(ErrorKind::ArgumentConflict, "QUERY and --data cannot be used together"))
        }
        (None, None) => Err(Args::command().error(
            ErrorKind::MissingRequiredArgument,
            "a QUERY to search is required (or --data, or a command: classify, count, scan)",
        )),
    }
}

/// Why a run failed; [`Error::exit_code`] maps each to its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Connecting or calling failed.
    #[error(transparent)]
    Client(#[from] client::Error),
    /// The input could not be read or parsed.
    #[error(transparent)]
    Input(#[from] input::Error),
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

impl Error {
    /// The process exit code for this error (see [`exit`]).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Client(client::Error::Connect { .. }) => exit::UNREACHABLE,
            Self::Client(client::Error::Rpc(status)) => exit::STATUS_BASE + status.code() as u8,
            Self::Client(client::Error::Protocol(_)) | Self::Output(_) => exit::FAILURE,
            Self::Input(_) => exit::INPUT,
        }
    }

    /// Whether the reader of the output went away (`client ... | head`):
    /// not a failure, the run just stops.
    #[must_use]
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(err) if err.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// A call with its input read (or opened) and checked, before connecting, so
/// that a local mistake never waits on the network.
enum Ready {
    Search(SearchRequest),
    Classify(Batches),
    Count(Batches),
    Scan(ScanRequest),
}

async fn prepare(call: Call) -> Result<Ready, input::Error> {
    Ok(match call {
        Call::Search(Query::Text(query)) => Ready::Search(SearchRequest { query }),
        Call::Search(Query::Json(data)) => Ready::Search(data.message().await?),
        Call::Classify(input) => Ready::Classify(batches::<ClassifyRequest>(input, |m| m.queries).await?),
        Call::Count(input) => Ready::Count(batches::<CountRequest>(input, |m| m.queries).await?),
        Call::Scan(Input::Plain(source)) => Ready::Scan(ScanRequest { text: input::read_text(&source).await? }),
        Call::Scan(Input::Json(data)) => Ready::Scan(data.message().await?),
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

/// Runs one invocation, printing responses to `out` as they arrive.
///
/// # Errors
/// See [`Error`]; output already printed stays printed.
pub async fn run(invocation: Invocation, out: impl Write) -> Result<(), Error> {
    let ready = prepare(invocation.call).await?;
    let mut client = Client::connect(&invocation.target).await?;
    let mut out = Output::new(out, invocation.format);
    match ready {
        Ready::Search(request) => out.search(&client.search(request).await?)?,
        Ready::Classify(batches) => classify(&mut client, batches, &mut out).await?,
        Ready::Count(batches) => {
            let (requests, feeder) = batches.feed(|queries| CountRequest { queries });
            let response = client.count(requests).await?;
            let sent = feeder.finish().await?;
            if response.queries != sent {
                return Err(protocol(format!("sent {sent} queries but the server counted {}", response.queries)));
            }
            out.count(&response)?;
        }
        Ready::Scan(request) => {
            let mut responses = client.scan(request).await?;
            while let Some(response) = responses.message().await.map_err(client::Error::from)? {
                out.scan(&response)?;
                out.flush()?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Streams the batches and prints answers as they arrive, checking that
/// every query is answered once and in order: nothing is silently dropped.
async fn classify(client: &mut Client, batches: Batches, out: &mut Output<impl Write>) -> Result<(), Error> {
    let (requests, feeder) = batches.feed(|queries| ClassifyRequest { queries });
    let mut responses = client.classify(requests).await?;
    let mut answered = 0u64;
    while let Some(response) = responses.message().await.map_err(client::Error::from)? {
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

fn protocol(message: String) -> Error {
    Error::Client(client::Error::Protocol(message))
}
