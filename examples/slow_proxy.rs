//! A TCP proxy in front of one replica that delays everything the replica
//! sends by a fixed time while switched on: the slow replica of
//! `bench/faults.py`. It starts passing bytes straight through; each SIGUSR1
//! switches the delay on or off. Prints its address, then runs until killed.
//!
//! `cargo run --release --example slow_proxy -- 127.0.0.1:0 127.0.0.1:8101 300ms`

#[path = "../tests/it/common/proxy.rs"]
mod proxy;

use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream), Some(delay)) = (args.next(), args.next(), args.next()) else {
        anyhow::bail!("usage: slow_proxy LISTEN UPSTREAM DELAY (e.g. 127.0.0.1:0 127.0.0.1:8101 300ms)");
    };
    let delay = humantime::parse_duration(&delay)?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("{}", listener.local_addr()?);
    let current = proxy::Delay::default();
    let mut toggles = signal(SignalKind::user_defined1())?;
    let serving = tokio::spawn(proxy::serve(listener, upstream.parse()?, Arc::clone(&current)));
    let mut on = false;
    while toggles.recv().await.is_some() {
        on = !on;
        proxy::set(&current, if on { delay } else { std::time::Duration::ZERO });
        eprintln!(
            "slow_proxy: delay {}",
            if on { humantime::format_duration(delay).to_string() } else { "off".into() }
        );
    }
    serving.abort();
    Ok(())
}
