//! Opens N connections to a Search server, each with one Classify call in
//! flight (one round trip done, the stream left open), then holds them
//! until standard input closes: the load of the memory figure in
//! `bench/compare.py`. With `idle` after the count, each connection makes
//! one Search call instead and is held with no call in flight: what a
//! connection costs without a call.
//!
//! `cargo run --release --example hold_calls -- 127.0.0.1:8100 1000 [idle]`

use std::time::Duration;

use search::client::{Client, ClientOptions, Target};
use search::pb::v1::{ClassifyRequest, SearchRequest};
use tokio::io::AsyncReadExt;
use tokio_stream::wrappers::ReceiverStream;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let target: Target = args.next().unwrap_or_else(|| "127.0.0.1:8100".into()).parse()?;
    let count: usize = args.next().unwrap_or_else(|| "1000".into()).parse()?;
    let idle = match args.next().as_deref() {
        None => false,
        Some("idle") => true,
        Some(other) => anyhow::bail!("unknown mode {other:?}: give `idle`, or nothing for a held Classify call"),
    };
    let options = ClientOptions { timeout: Duration::from_secs(600), ..ClientOptions::default() };
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        // One client each: a connection each.
        let client = Client::connect_with(&target, options.clone()).await?;
        if idle {
            client.search(SearchRequest { query: "banana".into() }).await?;
            held.push((client, None));
            continue;
        }
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut answers = client.classify(ReceiverStream::new(rx)).await?;
        tx.send(ClassifyRequest { queries: vec!["banana".into()] }).await?;
        answers.message().await?;
        held.push((client, Some((tx, answers))));
    }
    let what = if idle { "idle connections" } else { "calls" };
    println!("holding {count} {what}");
    let mut rest = Vec::new();
    tokio::io::stdin().read_to_end(&mut rest).await?;
    Ok(())
}
