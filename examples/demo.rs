//! `cargo run --example demo`: the whole service in one command, nothing but
//! Rust needed. Starts the server on a free localhost port, runs the article's
//! call and one call of every other RPC kind through the `client` command
//! line's own code, prints what a terminal would show, and stops the server.

use clap::Parser;
use search::cli::{self, Args};
use search::server::{self, Listeners, ServerConfig};

/// The client command lines to run, as a user would type them.
const CALLS: &[&[&str]] = &[
    &["Banana"],
    &["Apple"],
    &["--json", "Banana"],
    &["classify", "-d", r#"{"queries": ["Banana", "Apple", "BANANA split"]}"#],
    &["count", "-d", r#"{"queries": ["banana", "kiwi"]} {"queries": ["Banana bread"]}"#],
    &["scan", "-d", r#"{"text": "no match\nbanana and BANANA\n"}"#],
    &["--json", "scan", "-d", r#"{"text": "bAnAnA"}"#],
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listeners = Listeners::bind("localhost:0").await?;
    let addr = listeners.display_addr()?;
    println!("$ cargo run --bin server -- --listen localhost:0\n{addr}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(listeners, ServerConfig::default(), async {
        let _ = stopped.await;
    }));

    for call in CALLS {
        let shown: Vec<String> =
            call.iter().map(|arg| if arg.contains(' ') { format!("'{arg}'") } else { (*arg).to_owned() }).collect();
        println!("\n$ cargo run --bin client -- {}", shown.join(" "));
        let args = Args::try_parse_from(["client", "--target", &addr].iter().chain(call.iter()))?;
        cli::run(args.validate()?, std::io::stdout()).await?;
    }

    let _ = stop.send(());
    server.await??;
    Ok(())
}
