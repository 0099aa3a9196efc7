//! `cargo run --release --example interop_server -- --port N [--use_tls true]`:
//! gRPC's interop `TestService` served by this project's server, with the
//! flags grpc's interop servers take (TLS files as grpc-go's server names
//! them). Every call goes through the same stack as Search: the connection
//! loop and its limits (the server's defaults), the protocols (gRPC,
//! gRPC-Web, Connect), the per-call layer, compression.
//!
//! Prints the address it listens on (port 0 picks a free one), then the
//! metrics' with `--metrics_port`; logs one line per call on stderr, and
//! stops on Ctrl-C or SIGTERM. The cases and what
//! runs them: `docs/interop.md`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser};
use search::interop::{self, Interop};
use search::logging::{self, LogFormat};
use search::server::{self, Listeners, ServerConfig};
use search::tls::ServerTls;

/// gRPC's interop server on this project's stack.
#[derive(Debug, Parser)]
// grpc's flags are spelled with underscores.
#[command(rename_all = "snake_case")]
struct Flags {
    /// The port to listen on; 0 picks a free one.
    #[arg(long)]
    port: u16,
    /// The host to listen on (every address it resolves to).
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Serve TLS (with ALPN: h2, http/1.1).
    #[arg(long, action = ArgAction::Set, default_value_t = false)]
    use_tls: bool,
    /// The certificate chain (PEM), with --use_tls.
    #[arg(long, required_if_eq("use_tls", "true"))]
    tls_cert_file: Option<PathBuf>,
    /// Its private key (PEM), with --use_tls.
    #[arg(long, required_if_eq("use_tls", "true"))]
    tls_key_file: Option<PathBuf>,
    /// Serve Prometheus metrics at http://localhost:PORT/metrics (0 picks a
    /// free port, printed on the second line), where the cross tests see
    /// that cancelled calls ended.
    #[arg(long)]
    metrics_port: Option<u16>,
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    logging::init("info", LogFormat::Text);
    match server::runtime() {
        Ok(runtime) => runtime.block_on(run(flags)),
        Err(err) => {
            eprintln!("interop_server: cannot start the runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(flags: Flags) -> ExitCode {
    let tls = match (flags.use_tls, &flags.tls_cert_file, &flags.tls_key_file) {
        (true, Some(cert), Some(key)) => match ServerTls::load(cert, key, None) {
            Ok(tls) => Some(tls),
            Err(err) => {
                eprintln!("interop_server: {err}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    // Load reports as gRPC's interop servers give them: the figures the
    // ORCA cases' requests set, per call and out of band.
    let orca = interop::orca::reporter();
    let mut config = ServerConfig {
        tls,
        metrics_listen: flags.metrics_port.map(|p| format!("localhost:{p}")),
        orca: Some(orca.clone()),
        ..ServerConfig::default()
    };
    config.services = interop::services(Interop::with_orca(orca), config.max_recv_bytes);
    let listen = format!("{}:{}", flags.host, flags.port);
    let listeners = match Listeners::bind(&listen).await {
        Ok(listeners) => listeners,
        Err(err) => {
            eprintln!("interop_server: cannot listen on {listen}: {err}");
            return ExitCode::FAILURE;
        }
    };
    match listeners.display_addr() {
        Ok(addr) => {
            println!("{addr}");
            let _ = std::io::stdout().flush();
        }
        Err(err) => {
            eprintln!("interop_server: cannot read the bound address: {err}");
            return ExitCode::FAILURE;
        }
    }
    let (serving, handle) = match server::start(listeners, config, server::signal()).await {
        Ok(started) => started,
        Err(err) => {
            eprintln!("interop_server: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(metrics) = handle.metrics_addr() {
        println!("{metrics}");
        let _ = std::io::stdout().flush();
    }
    match serving.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("interop_server: {err}");
            ExitCode::FAILURE
        }
    }
}
