//! `server`: serves the Search service until Ctrl-C or SIGTERM, then drains.
//!
//! Prints the bound address on stdout (like the article's `localhost:8100`),
//! logs on stderr. Exit codes: 0 after a clean stop, 1 when it cannot listen
//! or serving fails, 2 for bad flags (unreadable TLS files included).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use search::server::{self, Listeners, ServerArgs};
use search::{logging, traces};

// Every call allocates (headers, buffers, boxed futures); mimalloc takes a
// third of the allocator's instructions per call off glibc's malloc
// (callgrind, see `docs/benchmarks.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Small pages only (Linux), set before anything allocates: mimalloc asks
// for transparent huge pages on its arenas, so that with the kernel's
// common `madvise` setting each arena touched turned into 2 MiB of resident
// memory: 13.7 MiB idle and 60 KiB per connection holding a call, against
// 6.5 MiB and 35 KiB without (bench/compare.py). `main` is too late: the
// runtime's start-up allocates before it, so this runs from `.init_array`.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static SMALL_PAGES: extern "C" fn() = {
    extern "C" fn small_pages() {
        // SAFETY: PR_SET_THP_DISABLE takes one integer flag and touches no
        // memory; on failure (an old kernel) THP stays as it was.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
    small_pages
};

fn main() -> ExitCode {
    let args = ServerArgs::parse();
    logging::init("info", args.log_format);
    match server::runtime() {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(err) => {
            eprintln!("server: cannot start the runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: ServerArgs) -> ExitCode {
    let listen = args.listen.clone();
    let config = match args.into_config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("server: {err}");
            return ExitCode::from(2);
        }
    };
    let traces = match config.traces.as_ref().map(traces::install).transpose() {
        Ok(traces) => traces,
        Err(err) => {
            eprintln!("server: {err}");
            return ExitCode::from(2);
        }
    };
    // A policy or a key set that cannot be used stops the server before it
    // listens: the file, the line and the reason.
    if let Err(err) = server::check_security(&config.security) {
        eprintln!("server: {err}");
        return ExitCode::from(2);
    }
    if listen.starts_with("unix:") && config.tls.is_some() {
        eprintln!("server: TLS serves TCP; a unix: socket is plaintext (drop --tls-cert, or listen on HOST:PORT)");
        return ExitCode::from(2);
    }
    let listeners = match Listeners::bind(&listen).await {
        Ok(listeners) => listeners,
        Err(err) => {
            eprintln!("server: cannot listen on {listen}: {err}");
            return ExitCode::FAILURE;
        }
    };
    match (listeners.display_addr(), listeners.local_addrs()) {
        (Ok(addr), Ok(sockets)) => {
            // stdout carries only this line, for people and for scripts that
            // start the server on port 0 and read where it went.
            println!("{addr}");
            let _ = std::io::stdout().flush();
            tracing::info!(?sockets, tls = config.tls.is_some(), "listening");
        }
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("server: cannot read the bound address: {err}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(err) = server::serve(listeners, config, server::signal()).await {
        eprintln!("server: {err}");
        return ExitCode::FAILURE;
    }
    // Sends the spans of the last calls (traces::SHUTDOWN at most).
    drop(traces);
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
