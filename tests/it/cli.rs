//! The `client` and `server` binaries as a user runs them: stdout, stderr
//! and exit codes. JSON output is parsed into the generated types.

use crate::common;

use std::io::Write;
use std::process::{Output, Stdio};

use crate::common::TestServer;
use search::pb::v1::{ClassifyResponse, CountResponse, ScanResponse, SearchResponse};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const CLIENT: &str = env!("CARGO_BIN_EXE_client");
const SERVER: &str = env!("CARGO_BIN_EXE_server");

/// Runs the client with `args`, `stdin` as its input, no inherited target.
async fn client(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(CLIENT)
        .args(args)
        .env_remove("SEARCH_TARGET")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the client");
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin).await.expect("write stdin");
    drop(input);
    child.wait_with_output().await.expect("client output")
}

fn stdout(output: &Output) -> &str {
    std::str::from_utf8(&output.stdout).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> &str {
    std::str::from_utf8(&output.stderr).expect("stderr is UTF-8")
}

/// Exit code, stdout, stderr: one value to compare.
fn outcome(output: &Output) -> (Option<i32>, &str, &str) {
    (output.status.code(), stdout(output), stderr(output))
}

fn json_lines<T: serde::de::DeserializeOwned>(output: &Output) -> Vec<T> {
    stdout(output).lines().map(|line| serde_json::from_str(line).expect("each line is a JSON message")).collect()
}

#[tokio::test]
async fn prints_the_articles_status_lines() {
    let server = TestServer::start().await;
    let target = server.addr.to_string();
    let banana = client(&["-t", &target, "Banana"], b"").await;
    assert_eq!(outcome(&banana), (Some(0), "status=1\n", ""));
    let apple = client(&["-t", &target, "Apple"], b"").await;
    assert_eq!(outcome(&apple), (Some(0), "status=0\n", ""));
    let explicit = client(&["-t", &target, "search", "classify"], b"").await;
    assert_eq!(outcome(&explicit), (Some(0), "status=0\n", ""), "a query may be named like a command");
    server.stop().await;
}

#[tokio::test]
async fn compress_sends_compressed_calls_of_every_kind() {
    let server = TestServer::start().await;
    let target = server.addr.to_string();
    for encoding in ["gzip", "zstd"] {
        let search = client(&["-t", &target, "--compress", encoding, "Banana"], b"").await;
        assert_eq!(outcome(&search), (Some(0), "status=1\n", ""), "{encoding}");
        let classify = client(&["-t", &target, "--compress", encoding, "classify"], b"banana\nno\n").await;
        assert_eq!(outcome(&classify), (Some(0), "status=1\nstatus=0\n", ""), "{encoding}");
    }
    let unknown = client(&["-t", &target, "--compress", "brotli", "Banana"], b"").await;
    assert_eq!(unknown.status.code(), Some(2), "an encoding the client lacks is a usage error");
    assert!(stderr(&unknown).contains("possible values: gzip, zstd"), "{}", stderr(&unknown));
    server.stop().await;
}

#[tokio::test]
async fn accepts_every_target_form_from_flag_and_environment() {
    let v4 = TestServer::start().await;
    let port = v4.addr.port();
    for target in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("http://localhost:{port}")] {
        let output = client(&["--target", &target, "Banana"], b"").await;
        assert_eq!(outcome(&output), (Some(0), "status=1\n", ""), "{target}");
        let from_env = Command::new(CLIENT).arg("Banana").env("SEARCH_TARGET", &target).output().await.expect("run");
        assert_eq!(outcome(&from_env), (Some(0), "status=1\n", ""), "SEARCH_TARGET={target}");
    }
    v4.stop().await;

    let v6 = TestServer::start_on("[::1]:0").await;
    let target = format!("[::1]:{}", v6.addr.port());
    let output = client(&["-t", &target, "Banana"], b"").await;
    assert_eq!(outcome(&output), (Some(0), "status=1\n", ""), "{target}");
    v6.stop().await;
}

#[tokio::test]
async fn json_output_and_json_requests() {
    let server = TestServer::start().await;
    let target = server.addr.to_string();

    let output = client(&["-t", &target, "--json", "Apple"], b"").await;
    assert_eq!(stdout(&output), "{\"status\":0}\n", "defaults are printed, like grpcurl -emit-defaults");
    assert_eq!(json_lines::<SearchResponse>(&output), [SearchResponse { status: 0 }]);

    let inline = client(&["-t", &target, "-d", r#"{"query":"Banana"}"#], b"").await;
    assert_eq!(outcome(&inline), (Some(0), "status=1\n", ""));

    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(br#"{"query": "xxBANANAxx"}"#).expect("write request");
    let path = format!("@{}", file.path().display());
    let from_file = client(&["-t", &target, "--json", "-d", &path], b"").await;
    assert_eq!(json_lines::<SearchResponse>(&from_file), [SearchResponse { status: 1 }]);

    let from_stdin =
        client(&["-t", &target, "-d", "@-", "count"], br#"{"queries":["banana","a"]} {"queries":["Banana"]}"#).await;
    assert_eq!(outcome(&from_stdin), (Some(0), "queries=3 matches=2\n", ""));
    server.stop().await;
}

#[tokio::test]
async fn classify_prints_one_line_per_input_line_in_order() {
    let server = TestServer::start().await;
    let target = server.addr.to_string();
    let input = b"Banana\napple\n\nbana\nna\r\nBANANA split\r\n";
    let text = client(&["-t", &target, "classify"], input).await;
    let expected = "status=1\nstatus=0\nstatus=0\nstatus=0\nstatus=0\nstatus=1\n";
    assert_eq!(outcome(&text), (Some(0), expected, ""));

    // Enough lines for several batches; JSON answers carry their indexes.
    let many: String = (0..5000u32).map(|i| if i.is_multiple_of(3) { "a banana\n" } else { "an apple\n" }).collect();
    let json = client(&["-t", &target, "--json", "classify", "-"], many.as_bytes()).await;
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let responses: Vec<ClassifyResponse> = json_lines(&json);
    let mut next = 0;
    for response in &responses {
        assert_eq!(response.first_index, next);
        for (i, status) in response.statuses.iter().enumerate() {
            assert_eq!(*status, i32::from((next as usize + i).is_multiple_of(3)), "query {}", next as usize + i);
        }
        next += response.statuses.len() as u64;
    }
    assert_eq!(next, 5000);
    server.stop().await;
}

#[tokio::test]
async fn count_and_scan_read_files() {
    let server = TestServer::start().await;
    let target = server.addr.to_string();
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all("banana\nkiwi\nÉ BANANA\n".as_bytes()).expect("write input");
    let path = file.path().to_str().expect("UTF-8 temp path");

    let count = client(&["-t", &target, "count", path], b"").await;
    assert_eq!(outcome(&count), (Some(0), "queries=3 matches=2\n", ""));
    let count_json = client(&["-t", &target, "count", path, "--json"], b"").await;
    assert_eq!(json_lines::<CountResponse>(&count_json), [CountResponse { queries: 3, matches: 2 }]);

    let scan = client(&["-t", &target, "scan", path], b"").await;
    assert_eq!(outcome(&scan), (Some(0), "line=1 column=1 offset=0\nline=3 column=4 offset=15\n", ""));
    let scan_json = client(&["-t", &target, "--json", "scan"], b"no\nbanana").await;
    let responses: Vec<ScanResponse> = json_lines(&scan_json);
    let found: Vec<(u64, u64)> = responses.iter().flat_map(|r| &r.matches).map(|m| (m.line, m.offset)).collect();
    assert_eq!(found, [(2, 3)]);
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_server_is_one_line_and_exit_3() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let target = format!("127.0.0.1:{port}");
    let output = client(&["-t", &target, "Banana"], b"").await;
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(stdout(&output), "");
    let message = stderr(&output);
    assert!(message.starts_with(&format!("client: cannot connect to {target}: Connection refused")), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
}

#[tokio::test]
async fn usage_errors_exit_2_with_the_usage() {
    for args in [
        vec![],
        vec!["Banana", "-d", "{}"],
        vec!["Banana", "classify"],
        vec!["--target", "localhost", "Banana"],
        vec!["--no-such-flag"],
        vec!["classify", "a.txt", "-d", "{}"],
        vec!["--timeout", "0s", "Banana"],
        vec!["--retry-max-backoff", "1ms", "Banana"],
        vec!["--retry-max-attempts", "0", "Banana"],
        vec!["--ca", "/no/such/ca.pem", "-t", "https://localhost:1", "Banana"],
        vec!["--cert", "client.pem", "Banana"],
    ] {
        let output = client(&args, b"").await;
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).starts_with("error: "), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains("try '--help'"), "{args:?}: {}", stderr(&output));
        assert_eq!(stdout(&output), "");
    }
    let bad_target = client(&["--target", "localhost", "Banana"], b"").await;
    assert!(stderr(&bad_target).contains("the port is missing"), "{}", stderr(&bad_target));
}

#[tokio::test]
async fn bad_input_exits_4_naming_what_is_wrong() {
    // Input is checked before connecting: no server is needed to see these.
    let target = "127.0.0.1:9";
    let missing = client(&["-t", target, "classify", "/no/such/file"], b"").await;
    assert_eq!(
        outcome(&missing),
        (Some(4), "", "client: cannot read /no/such/file: No such file or directory (os error 2)\n")
    );

    let json = client(&["-t", target, "-d", "{\"query\": Banana}"], b"").await;
    let expected = "client: invalid JSON request in the -d argument: expected value at line 1 column 11\n";
    assert_eq!(outcome(&json), (Some(4), "", expected));

    let scan = client(&["-t", target, "scan"], b"ok \xff\xfe").await;
    let expected = "client: standard input is not valid UTF-8 (first invalid byte at offset 3)\n";
    assert_eq!(outcome(&scan), (Some(4), "", expected));
}

#[tokio::test]
async fn a_bad_line_mid_stream_is_reported_not_dropped() {
    let server = TestServer::start().await;
    let output = client(&["-t", &server.addr.to_string(), "classify"], b"banana\n\xff\nbanana\n").await;
    assert_eq!(output.status.code(), Some(4));
    assert_eq!(stderr(&output), "client: standard input: line 2 is not valid UTF-8\n");
    server.stop().await;
}

#[tokio::test]
async fn a_failed_call_exits_64_plus_its_status_code() {
    let server = TestServer::start().await;
    // Over the server's 4 MiB receive limit.
    let text = "banana ".repeat(800_000);
    let output = client(&["-t", &server.addr.to_string(), "scan"], text.as_bytes()).await;
    assert_eq!(output.status.code(), Some(64 + tonic::Code::ResourceExhausted as i32), "{}", stderr(&output));
    let expected = "client: RESOURCE_EXHAUSTED: the request message is 5600005 bytes, \
                    over the server's limit of 4194304 bytes (--max-recv-bytes)\n";
    assert_eq!(stderr(&output), expected);
    server.stop().await;
}

#[tokio::test]
async fn a_closed_pipe_on_stdout_is_a_clean_exit() {
    let server = TestServer::start().await;
    let mut child = Command::new(CLIENT)
        .args(["-t", &server.addr.to_string(), "classify"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let feeding = tokio::spawn(async move {
        // Far more output than a pipe buffer holds; stops when the client goes.
        for _ in 0..200 {
            if stdin.write_all(&b"banana\n".repeat(1000)).await.is_err() {
                break;
            }
        }
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next_line().await.expect("read").as_deref(), Some("status=1"));
    drop(lines); // like `| head -1`
    let output = child.wait_with_output().await.expect("client exits");
    assert_eq!((output.status.code(), stderr(&output)), (Some(0), ""));
    feeding.await.expect("feeder");
    server.stop().await;
}

/// The server binary: prints where it listens, serves, stops on signals.
#[tokio::test]
async fn the_server_prints_its_address_and_stops_on_sigterm_and_ctrl_c() {
    for (signal, signal_name, logged) in
        [(libc::SIGTERM, "TERM", "received SIGTERM"), (libc::SIGINT, "INT", "received Ctrl-C")]
    {
        let (child, addr) = common::server_process(&["--listen", "127.0.0.1:0"]).await;
        let port: u16 = addr.strip_prefix("127.0.0.1:").expect("host as given").parse().expect("a port");
        assert_ne!(port, 0, "port 0 is replaced by the bound port");
        let output = client(&["-t", &addr, "Banana"], b"").await;
        assert_eq!(outcome(&output), (Some(0), "status=1\n", ""));
        common::signal(&child, signal);
        let output = child.wait_with_output().await.expect("server exits");
        assert_eq!(output.status.code(), Some(0), "SIG{signal_name}");
        assert!(stderr(&output).contains(logged), "SIG{signal_name}: {}", stderr(&output));
    }
}

#[tokio::test]
async fn the_server_listens_where_the_environment_says() {
    let (mut child, addr) = common::server_process_with(&[], &[("SEARCH_LISTEN", "localhost:0")]).await;
    assert!(addr.starts_with("localhost:"), "{addr}");
    let output = client(&["-t", &addr, "Banana"], b"").await;
    assert_eq!(outcome(&output), (Some(0), "status=1\n", ""));
    common::signal(&child, libc::SIGTERM);
    assert_eq!(child.wait().await.expect("exit").code(), Some(0));
}

#[tokio::test]
async fn the_server_reports_an_address_it_cannot_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    for (listen, cause) in [(addr.as_str(), "Address already in use"), ("nonsense", "is not HOST:PORT")] {
        let output = Command::new(SERVER).args(["--listen", listen]).output().await.expect("run");
        assert_eq!(output.status.code(), Some(1), "{listen}");
        let message = stderr(&output);
        assert!(message.starts_with(&format!("server: cannot listen on {listen}: ")), "{message}");
        assert!(message.contains(cause), "{message}");
    }
}

/// Writes `pem` to a file in `dir` and returns its path.
fn pem_file(dir: &tempfile::TempDir, name: &str, pem: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, pem).expect("write PEM");
    path.to_str().expect("UTF-8 path").to_owned()
}

#[tokio::test]
async fn tls_through_the_binaries() {
    // The plaintext call below is told to try https:// whether the TLS
    // server's close comes before hyper sent the call or after.
    let _machine = common::needs_a_quiet_machine().await;
    let pki = common::pki::pki();
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = pem_file(&dir, "server.pem", &pki.server.0);
    let key = pem_file(&dir, "server.key", &pki.server.1);
    let ca = pem_file(&dir, "ca.pem", &pki.ca);
    let other_ca = pem_file(&dir, "other.pem", &common::pki::ca("another CA").pem());
    let (child, addr) =
        common::server_process(&["--listen", "127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &key, "--grace", "1s"])
            .await;
    let port = addr.rsplit(':').next().expect("a port");
    let https = format!("https://localhost:{port}");

    let output = client(&["-t", &https, "--ca", &ca, "Banana"], b"").await;
    assert_eq!(outcome(&output), (Some(0), "status=1\n", ""));

    let wrong = client(&["-t", &https, "--ca", &other_ca, "Banana"], b"").await;
    let expected =
        format!("client: cannot connect to {https}: TLS handshake failed: invalid peer certificate: UnknownIssuer\n");
    assert_eq!(outcome(&wrong), (Some(3), "", expected.as_str()));

    let plaintext = client(&["-t", &format!("localhost:{port}"), "Banana"], b"").await;
    assert_eq!(plaintext.status.code(), Some(3));
    assert!(stderr(&plaintext).contains("try https://"), "{}", stderr(&plaintext));
    assert_eq!(stderr(&plaintext).lines().count(), 1, "{}", stderr(&plaintext));

    // Connect JSON over TLS, with either HTTP version in ALPN.
    let url = format!("{https}/search.v1.SearchService/Search");
    let tls = ["--cacert", ca.as_str(), "-H", "content-type: application/json"];
    for version in ["--http2", "--http1.1"] {
        let mut curl = Command::new("curl");
        curl.args(["-sS", version]).args(tls).args(["-d", r#"{"query":"Banana"}"#, &url]);
        let output = curl.output().await.expect("curl is installed (Debian's curl)");
        assert_eq!(String::from_utf8_lossy(&output.stdout), r#"{"status":1}"#, "{version}: {}", stderr(&output));
    }

    common::signal(&child, libc::SIGTERM);
    assert_eq!(child.wait_with_output().await.expect("exit").status.code(), Some(0));
}

#[tokio::test]
async fn verbose_shows_the_connectivity_changes() {
    let server = TestServer::start().await;
    let output = client(&["-v", "-t", &server.addr.to_string(), "Banana"], b"").await;
    assert_eq!(stdout(&output), "status=1\n");
    let log = stderr(&output);
    assert!(log.contains("client: connectivity IDLE -> CONNECTING\n"), "{log}");
    assert!(log.contains("client: connectivity CONNECTING -> READY\n"), "{log}");
    server.stop().await;
}

#[tokio::test]
async fn a_passed_deadline_exits_68_saying_how_long_it_waited() {
    let server = TestServer::start().await;
    // classify from a stdin that stays open: only the deadline ends it.
    let mut child = Command::new(CLIENT)
        .args(["-t", &server.addr.to_string(), "--timeout", "300ms", "classify"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdin = child.stdin.take();
    let output = child.wait_with_output().await.expect("exits at the deadline");
    drop(stdin);
    assert_eq!(output.status.code(), Some(64 + tonic::Code::DeadlineExceeded as i32), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.starts_with("client: DEADLINE_EXCEEDED: "), "{message}");
    assert!(message.contains("300ms"), "{message}");
    server.stop().await;
}

#[tokio::test]
async fn wait_for_ready_waits_for_the_server_to_come_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let addr = format!("127.0.0.1:{port}");
    let waiting = Command::new(CLIENT)
        .args(["-t", &addr, "--wait-for-ready", "--timeout", "20s", "Banana"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let server = TestServer::start_on(&addr).await;
    let output = waiting.wait_with_output().await.expect("exits");
    assert_eq!(outcome(&output), (Some(0), "status=1\n", ""));
    server.stop().await;
}

/// The server's log lines on stderr, after a call and a SIGTERM.
async fn server_log(format: &str) -> String {
    let (child, addr) = common::server_process(&["--listen", "127.0.0.1:0", "--log-format", format]).await;
    let output = client(&["-t", &addr, "Banana"], b"").await;
    assert_eq!(stdout(&output), "status=1\n");
    common::signal(&child, libc::SIGTERM);
    let output = child.wait_with_output().await.expect("exit");
    String::from_utf8(output.stderr).expect("UTF-8 log")
}

#[tokio::test]
async fn the_server_logs_one_line_per_call() {
    let text = server_log("text").await;
    let calls: Vec<&str> = text.lines().filter(|line| line.contains("search::call")).collect();
    assert_eq!(calls.len(), 1, "{text}");
    for field in ["method=/search.v1.SearchService/Search", "code=\"OK\"", "duration=", "peer=127.0.0.1:"] {
        assert!(calls[0].contains(field), "{field} in {}", calls[0]);
    }

    let json = server_log("json").await;
    let lines: Vec<serde_json::Value> =
        json.lines().map(|line| serde_json::from_str(line).expect("every log line is JSON")).collect();
    let calls: Vec<&serde_json::Value> = lines.iter().filter(|line| line["target"] == "search::call").collect();
    assert_eq!(calls.len(), 1, "{json}");
    assert_eq!(calls[0]["method"], "/search.v1.SearchService/Search");
    assert_eq!(calls[0]["protocol"], "grpc");
    assert_eq!(calls[0]["code"], "OK");
    assert!(calls[0]["peer"].as_str().is_some_and(|peer| peer.starts_with("127.0.0.1:")), "{}", calls[0]);
    assert!(calls[0]["duration"].is_string(), "{}", calls[0]);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_server_process_runs_without_transparent_huge_pages() {
    // Set from .init_array, before anything allocates (src/bin/server.rs).
    let (child, _) = common::server_process(&["--listen", "127.0.0.1:0"]).await;
    let pid = child.id().expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    assert!(status.lines().any(|line| line.split_whitespace().eq(["THP_enabled:", "0"])), "{status}");
    common::signal(&child, libc::SIGTERM);
}

#[tokio::test]
async fn a_call_line_is_written_once_the_server_is_idle_not_at_its_exit() {
    // Worker threads batch their lines and write them when they go idle:
    // the line must come while the server runs on, not when it stops.
    let (mut child, addr) = common::server_process(&["--listen", "127.0.0.1:0"]).await;
    let mut log = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let output = client(&["-t", &addr, "Banana"], b"").await;
    assert_eq!(stdout(&output), "status=1\n");
    let line = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(line) = log.next_line().await.expect("read stderr") {
            if line.contains("search::call") {
                return line;
            }
        }
        panic!("stderr ended without the call line");
    })
    .await
    .expect("the call line within 5 s of the call");
    assert!(line.contains("method=/search.v1.SearchService/Search"), "{line}");
    assert!(child.try_wait().expect("status").is_none(), "the server still runs");
    common::signal(&child, libc::SIGTERM);
    assert_eq!(child.wait().await.expect("exit").code(), Some(0));
}

/// curl, as a user would run it, against the server binary.
async fn curl(args: &[&str]) -> (String, String) {
    let output = Command::new("curl").args(["--silent", "--show-error", "--http1.1"]).args(args).output().await;
    let output = output.expect("curl is installed (Debian's curl)");
    assert_eq!(output.status.code(), Some(0), "curl {args:?}: {}", stderr(&output));
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (text(&output.stdout), text(&output.stderr))
}

#[tokio::test]
async fn curl_calls_the_server_with_connect_json_over_http1() {
    let (child, addr) = common::server_process(&["--listen", "127.0.0.1:0"]).await;
    let url = format!("http://{addr}/search.v1.SearchService/Search");
    let json = ["-H", "content-type: application/json"];
    let (body, _) = curl(&[json[0], json[1], "-d", r#"{"query":"Banana"}"#, &url]).await;
    assert_eq!(body, r#"{"status":1}"#);
    let legacy = format!("http://{addr}/Search/search");
    let (body, _) = curl(&[json[0], json[1], "-d", r#"{"query":"Apple"}"#, &legacy]).await;
    assert_eq!(body, r#"{"status":0}"#, "the article's path answers the same way");
    let get = format!("{url}?connect=v1&encoding=json&message=%7B%22query%22%3A%22xbananax%22%7D");
    let (body, _) = curl(&[&get]).await;
    assert_eq!(body, r#"{"status":1}"#);
    let (body, _) = curl(&["-w", " %{http_code}", json[0], json[1], "-d", r#"{"query":"#, &url]).await;
    assert!(body.starts_with(r#"{"code":"invalid_argument","message":"#) && body.ends_with(" 400"), "{body}");

    common::signal(&child, libc::SIGTERM);
    let output = child.wait_with_output().await.expect("exit");
    let log = stderr(&output);
    let calls: Vec<&str> = log.lines().filter(|line| line.contains("search::call")).collect();
    assert_eq!(calls.len(), 4, "one line per call: {log}");
    assert!(calls.iter().all(|line| line.contains("protocol=\"connect\"")), "{log}");
    assert!(calls[3].contains("code=\"INVALID_ARGUMENT\""), "{}", calls[3]);
}
