//! Each scenario's calls, their answers checked against what the matcher
//! says, each ending in an [`Outcome`].

use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;

use super::scenario::{Outcome, Scenario};
use crate::client::{self, Client, ClientOptions, Target};
use crate::matcher;
use crate::pb::v1::{ClassifyRequest, CountRequest, ScanRequest, SearchRequest};

/// The outcome of each call of one run of `scenario`: `burst` streams
/// for a burst, the disconnect on a client of its own to `target`, the
/// deadline on the `short` client, the rest on `client`.
pub(super) async fn run(
    scenario: Scenario,
    burst: usize,
    target: &Target,
    options: &ClientOptions,
    client: &Client,
    short: &Client,
) -> Vec<Outcome> {
    match scenario {
        Scenario::Search => vec![Outcome::of(search(client).await)],
        Scenario::Classify => vec![Outcome::of(classify(client, 3).await)],
        Scenario::Count => vec![Outcome::of(count(client).await)],
        Scenario::Scan => vec![Outcome::of(scan(client).await)],
        Scenario::Disconnect => vec![disconnect(target, options).await],
        Scenario::Deadline => vec![Outcome::of(go_quiet(short).await)],
        Scenario::Burst => {
            // All held at once: each waits for the others before it closes.
            let barrier = Arc::new(tokio::sync::Barrier::new(burst));
            let mut held = tokio::task::JoinSet::new();
            for _ in 0..burst {
                let (client, barrier) = (client.clone(), Arc::clone(&barrier));
                held.spawn(async move { Outcome::of(hold(&client, &barrier).await) });
            }
            let mut outcomes = Vec::with_capacity(burst);
            while let Some(outcome) = held.join_next().await {
                outcomes.push(outcome.unwrap_or(Outcome::Lost));
            }
            outcomes
        }
    }
}

fn wrong(message: String) -> client::Error {
    client::Error::Protocol(message)
}

/// Queries with known answers: half contain "banana".
fn queries(n: usize) -> Vec<String> {
    (0..n).map(|i| if i % 2 == 0 { format!("{i} BaNaNa") } else { format!("{i} apple") }).collect()
}

async fn search(client: &Client) -> Result<(), client::Error> {
    let answer = client.search(SearchRequest { query: "a Banana split".into() }).await?;
    if answer.status != 1 {
        return Err(wrong(format!("Search answered {}", answer.status)));
    }
    Ok(())
}

/// A Classify stream of `batches` batches, each answer checked; with one
/// batch, the stream stays open until its answer came (a held stream).
async fn classify(client: &Client, batches: usize) -> Result<(), client::Error> {
    let (tx, rx) = tokio::sync::mpsc::channel(batches.max(1));
    let mut responses = client.classify(ReceiverStream::new(rx)).await?;
    let mut expected_index = 0u64;
    for _ in 0..batches {
        let batch = queries(10);
        let expected: Vec<i32> = batch.iter().map(|q| matcher::status(q)).collect();
        if tx.send(ClassifyRequest { queries: batch }).await.is_err() {
            break; // the call ended: its status comes below
        }
        let Some(answer) = responses.message().await? else {
            return Err(wrong("Classify ended before its answer".into()));
        };
        if answer.first_index != expected_index || answer.statuses != expected {
            return Err(wrong("Classify answered wrongly".into()));
        }
        expected_index += expected.len() as u64;
    }
    drop(tx);
    match responses.message().await? {
        None => Ok(()),
        Some(_) => Err(wrong("Classify answered more than it was asked".into())),
    }
}

async fn count(client: &Client) -> Result<(), client::Error> {
    let batches: Vec<CountRequest> = (0..4).map(|_| CountRequest { queries: queries(25) }).collect();
    let answer = client.count(tokio_stream::iter(batches)).await?;
    if (answer.queries, answer.matches) != (100, 52) {
        return Err(wrong(format!("Count answered {} queries, {} matches", answer.queries, answer.matches)));
    }
    Ok(())
}

async fn scan(client: &Client) -> Result<(), client::Error> {
    let text = "one banana\nno fruit\nBANANA banana\n".repeat(200);
    let mut responses = client.scan(ScanRequest { text }).await?;
    let mut found = 0;
    while let Some(answer) = responses.message().await? {
        found += answer.matches.len();
    }
    if found != 600 {
        return Err(wrong(format!("Scan found {found} matches of 600")));
    }
    Ok(())
}

/// A client of its own that starts a long Scan, reads one answer and goes
/// away, connection and all.
async fn disconnect(target: &Target, options: &ClientOptions) -> Outcome {
    let client = match Client::connect_with(target, options.clone()).await {
        Ok(client) => client,
        Err(err) => return Outcome::of(Err(err)),
    };
    let text = "banana ".repeat(300_000);
    let mut responses = match client.scan(ScanRequest { text }).await {
        Ok(responses) => responses,
        Err(err) => return Outcome::of(Err(err)),
    };
    match responses.message().await {
        Ok(Some(_)) => {
            drop(responses);
            client.shutdown();
            Outcome::Dropped
        }
        Ok(None) => Outcome::WrongAnswer,
        Err(err) => Outcome::of(Err(err)),
    }
}

/// A Classify stream held open until every stream of its burst has been
/// answered or refused, then closed.
async fn hold(client: &Client, barrier: &tokio::sync::Barrier) -> Result<(), client::Error> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let opened = client.classify(ReceiverStream::new(rx)).await;
    let first = match opened {
        Ok(mut responses) => {
            let _ = tx.send(ClassifyRequest { queries: queries(2) }).await;
            responses.message().await.map(|answer| (responses, answer))
        }
        Err(err) => Err(err),
    };
    barrier.wait().await;
    let (mut responses, answer) = first?;
    if answer.is_none_or(|answer| answer.statuses != [1, 0]) {
        return Err(wrong("a held Classify answered wrongly".into()));
    }
    drop(tx);
    match responses.message().await? {
        None => Ok(()),
        Some(_) => Err(wrong("Classify answered more than it was asked".into())),
    }
}

/// A Classify on the short-deadline client: one answer, then silence until
/// the deadline ends the stream.
async fn go_quiet(short: &Client) -> Result<(), client::Error> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut responses = short.classify(ReceiverStream::new(rx)).await?;
    let _ = tx.send(ClassifyRequest { queries: queries(1) }).await;
    while responses.message().await?.is_some() {}
    drop(tx);
    Ok(())
}
