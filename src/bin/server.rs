//! `server`: serves the Search service until Ctrl-C or SIGTERM.
//!
//! Prints the bound address on stdout (like the article's `localhost:8100`),
//! logs on stderr. Exit codes: 0 after a clean stop, 1 when it cannot listen
//! or serving fails, 2 for bad flags.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use search::server::{self, Listeners};
use search::{shutdown, telemetry};

/// Serves the Search service (does a query contain "banana"?) over gRPC.
#[derive(Debug, Parser)]
#[command(name = "server", version, about)]
struct Args {
    /// The address to listen on, HOST:PORT. Every address HOST resolves to is
    /// bound (localhost: IPv4 and IPv6 loopback); port 0 picks a free port.
    #[arg(long, short = 'l', env = "SEARCH_LISTEN", default_value = search::DEFAULT_ADDR)]
    listen: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    telemetry::init("info");
    let listeners = match Listeners::bind(&args.listen).await {
        Ok(listeners) => listeners,
        Err(err) => {
            eprintln!("server: cannot listen on {}: {err}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    match (listeners.display_addr(), listeners.local_addrs()) {
        (Ok(addr), Ok(sockets)) => {
            // stdout carries only this line, for people and for scripts that
            // start the server on port 0 and read where it went.
            println!("{addr}");
            let _ = std::io::stdout().flush();
            tracing::info!(?sockets, "listening");
        }
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("server: cannot read the bound address: {err}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(err) = server::serve(listeners, shutdown::signal()).await {
        eprintln!("server: {err}");
        return ExitCode::FAILURE;
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
