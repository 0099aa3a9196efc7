//! `cargo run --release --example interop_client -- --server_port N --test_case large_unary`:
//! runs one of gRPC's interop test cases against an interop server (this
//! project's `interop_server`, or any other implementation's), with the
//! flags grpc's interop clients take. Exit code 0 when the case passes, 1
//! with one line saying why when it does not, 2 for bad flags.
//!
//! With `--use_tls true`, the server's certificate is checked against
//! `--ca_file` (grpc's clients use their built-in test CA with
//! `--use_test_ca`; this one has none built in), else the system roots.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser};
use search::interop::{Case, InteropTarget};
use search::tls::ClientTls;

/// gRPC's interop client on this project's library.
#[derive(Debug, Parser)]
// grpc's flags are spelled with underscores.
#[command(rename_all = "snake_case")]
struct Flags {
    /// The server's host.
    #[arg(long, default_value = "localhost")]
    server_host: String,
    /// The server's port.
    #[arg(long)]
    server_port: u16,
    /// The name to check the certificate against and send as :authority.
    #[arg(long)]
    server_host_override: Option<String>,
    /// The case to run, by its name in gRPC's interop test descriptions.
    #[arg(long, value_parser = case)]
    test_case: Case,
    /// Connect with TLS.
    #[arg(long, action = ArgAction::Set, default_value_t = false)]
    use_tls: bool,
    /// Trust --ca_file instead of the system roots (grpc's flag; without
    /// --ca_file it means nothing here).
    #[arg(long, action = ArgAction::Set, default_value_t = false)]
    use_test_ca: bool,
    /// The CA certificate (PEM) the server's must chain to.
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

fn case(name: &str) -> Result<Case, String> {
    Case::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Case::ALL.iter().map(|case| case.name()).collect();
        format!("no case {name:?}; the cases: {}", names.join(", "))
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let flags = Flags::parse();
    let tls = if flags.use_tls {
        match ClientTls::load(flags.ca_file.as_deref(), None, None) {
            Ok(tls) => Some(tls),
            Err(err) => {
                eprintln!("interop_client: {err}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let _ = flags.use_test_ca;
    let peer = InteropTarget {
        host: flags.server_host,
        port: flags.server_port,
        host_override: flags.server_host_override,
        tls,
    };
    match flags.test_case.run(&peer).await {
        Ok(()) => {
            println!("{}: passed", flags.test_case.name());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("interop_client: {}: {err}", flags.test_case.name());
            ExitCode::FAILURE
        }
    }
}
