//! A TCP proxy that delays every read from the server by a fixed time (a
//! replica that answers, but slowly), without limiting throughput: each
//! chunk read is written on at its read time plus the delay. Used by the
//! tests and, through `examples/slow_proxy.rs`, by `bench/faults.py`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Sets `delay` (a [`Delay`]) to `to`.
pub fn set(delay: &Delay, to: Duration) {
    delay.store(u64::try_from(to.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// The delay, in microseconds, that a test or a signal changes as the
/// proxy runs (0: none).
pub type Delay = Arc<AtomicU64>;

/// Proxies every connection accepted on `listener` to `upstream`, adding
/// `delay` to what comes back. Runs until the task is dropped.
pub async fn serve(listener: TcpListener, upstream: SocketAddr, delay: Delay) {
    while let Ok((client, _)) = listener.accept().await {
        let delay = Arc::clone(&delay);
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else { return };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (mut client_read, client_write) = client.into_split();
            let (server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                let _ = server_write.shutdown().await;
            });
            delayed(server_read, client_write, &delay).await;
        });
    }
}

/// Copies `from` to `to`, each chunk the delay after it was read.
async fn delayed(
    mut from: impl AsyncReadExt + Unpin + Send + 'static,
    mut to: impl AsyncWriteExt + Unpin,
    delay: &Delay,
) {
    let (chunks, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let delay = Arc::clone(delay);
    tokio::spawn(async move {
        let mut buffer = vec![0; 64 << 10];
        while let Ok(n) = from.read(&mut buffer).await {
            let at = Instant::now() + Duration::from_micros(delay.load(Ordering::Relaxed));
            if n == 0 || chunks.send((at, buffer[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    while let Some((at, chunk)) = due.recv().await {
        tokio::time::sleep_until(at).await;
        if to.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}
