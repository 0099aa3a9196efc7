//! `client`: calls the Search service. `client Banana` prints `status=1`.
//!
//! Parses the flags, runs one call, and turns its result into an exit code
//! (see `search::cli::exit` and the README); errors are one line on stderr.

use std::io::{self, BufWriter};
use std::process::ExitCode;

use clap::Parser;
use search::cli::{self, Args};
use search::logging;

fn main() -> ExitCode {
    let invocation = match Args::parse().validate() {
        Ok(invocation) => invocation,
        Err(err) => err.exit(),
    };
    // -v shows the retries (debug events of this crate) besides the
    // connectivity changes the run prints itself.
    let filter = if invocation.verbose { "warn,search=debug" } else { "warn" };
    logging::init(filter, logging::LogFormat::Text);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("client: cannot start the async runtime: {err}");
            return ExitCode::from(cli::exit::FAILURE);
        }
    };
    let stdout = BufWriter::new(io::stdout().lock());
    let result = runtime.block_on(cli::run(invocation, stdout));
    // A read of standard input may still be blocked in a worker thread (the
    // call ended first): exit without waiting for it.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::from(cli::exit::OK),
        Err(err) if err.is_broken_pipe() => ExitCode::from(cli::exit::OK),
        Err(err) => {
            eprintln!("client: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
