//! How long a round-robin subchannel is out of READY when its server
//! rotates its connection: two servers that age their connections out every
//! few hundred milliseconds, calls one after another, and each subchannel's
//! times out of READY printed (figures only: `tests/it/rotation.rs` checks
//! that each subchannel comes back, this shows how soon).
//!
//! `cargo run --release --example rotation_times -- [SECONDS (5)] [AGE_MS (300)]`

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use search::client::{Client, ClientOptions, ConnectivityState, Event, LoadBalancing, Target};
use search::pb::v1::SearchRequest;
use search::server::{self, Listeners, ServerConfig};

/// Per subchannel: when it last left READY, and each time it was out.
type Away = BTreeMap<String, (Option<Instant>, Vec<Duration>)>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().unwrap_or_else(|| "5".into()).parse()?;
    let age: u64 = args.next().unwrap_or_else(|| "300".into()).parse()?;
    let config = ServerConfig {
        max_connection_age: Duration::from_millis(age),
        // No call is cut by the close: only the rotation is measured.
        max_connection_age_grace: Duration::from_secs(10),
        ..ServerConfig::default()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut addresses = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let listeners = Listeners::bind("127.0.0.1:0").await?;
        addresses.push(listeners.display_addr()?);
        let mut stopped = stopped.clone();
        servers.push(tokio::spawn(server::serve(listeners, config.clone(), async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })));
    }
    let target: Target = format!("ipv4:{}", addresses.join(",")).parse()?;
    let client =
        Client::connect_with(&target, ClientOptions { lb: LoadBalancing::RoundRobin, ..ClientOptions::default() })
            .await?;
    client.settle(Duration::from_secs(5)).await;

    let away = Arc::new(Mutex::new(Away::new()));
    let seen = Arc::clone(&away);
    client.watch_subchannels(Box::new(move |event| {
        if let Event::Subchannel { address, from, to, .. } = event {
            let mut away = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let (left, times) = away.entry(address.clone()).or_default();
            if *from == ConnectivityState::Ready {
                *left = Some(Instant::now());
            } else if *to == ConnectivityState::Ready {
                times.extend(left.take().map(|left| left.elapsed()));
            }
        }
    }));
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut calls = 0u64;
    while Instant::now() < end {
        client.search(SearchRequest { query: "Banana".into() }).await?;
        calls += 1;
    }

    println!("{calls} Search calls in {seconds} s, round robin over two servers rotating connections every {age} ms");
    print(&away.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    stop.send_replace(true);
    for server in servers {
        server.await??;
    }
    Ok(())
}

/// A line a subchannel: how many times it was out of READY, and for how long.
fn print(away: &Away) {
    println!("{:<22} {:>6} {:>10} {:>10} {:>10}", "subchannel", "out", "median", "p90", "longest");
    for (address, (_, times)) in away {
        let mut times = times.clone();
        times.sort();
        let at = |q: f64| times.get(((times.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default();
        println!("{address:<22} {:>6} {:>10.1?} {:>10.1?} {:>10.1?}", times.len(), at(0.5), at(0.9), at(1.0));
    }
}
