//! The xDS client against the tests' management server
//! (`peers/xds/control_plane.py`, built on the xDS project's own Python
//! modules, so our protos' field numbers are checked against envoy's):
//! every part of a scenario decoded as written, ACKs and NACKs in the
//! server's log, the last good resource kept through a NACK, the
//! does-not-exist timer, and the stream redialed when the server comes back.
//!
//! The management server runs in its own venv: `bash peers/xds/venv.sh`
//! makes it (target/xds-venv), or `XDS_PYTHON` names another's python.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use search::client::Backoff;
use search::client::xds::{
    Bootstrap, HashSource, LbPolicy, PathMatch, Resource, ResourceType, ResourceWatch, RouteAction, RouteSource,
    Status, Watched, XdsClient, XdsSettings,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a test waits for the management server's answer before it
/// fails rather than hangs.
const PATIENCE: Duration = Duration::from_secs(20);

/// The management server, serving `scenario.json` of its folder.
pub(crate) struct ControlPlane {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl ControlPlane {
    /// Starts it; `None` when the xDS venv is missing and the test is
    /// skipped ([`xds_python`](crate::common::xds_python)).
    pub(crate) async fn start(scenario: &Value) -> Option<Self> {
        crate::common::xds_python()?;
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("scenario.json"), scenario.to_string()).expect("write the scenario");
        let (child, addr) = Self::spawn(dir.path(), 0).await;
        Some(Self { child, addr, dir })
    }

    async fn spawn(dir: &Path, port: u16) -> (Child, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/xds/control_plane.py");
        let python = crate::common::xds_python().expect("the xDS venv, as start found it");
        let mut child = Command::new(python)
            .arg(script)
            .arg("--scenario")
            .arg(dir.join("scenario.json"))
            .arg("--log")
            .arg(dir.join("log.jsonl"))
            .args(["--port", &port.to_string(), "--poll", "0.05"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the management server");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let addr = lines.next_line().await.expect("read its address").expect("it prints its address");
        (child, addr)
    }

    /// Kills it: no goodbye on the stream.
    pub(crate) async fn kill(&mut self) {
        self.child.kill().await.expect("kill the management server");
    }

    /// Starts it again on the same port with the same scenario and log.
    pub(crate) async fn restart(&mut self) {
        let port = self.addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("a port");
        let (child, addr) = Self::spawn(self.dir.path(), port).await;
        assert_eq!(addr, self.addr);
        self.child = child;
    }

    pub(crate) fn rewrite(&self, scenario: &Value) {
        // Written aside and renamed, so that the server never reads half a file.
        let staged = self.dir.path().join("scenario.json.new");
        std::fs::write(&staged, scenario.to_string()).expect("write the scenario");
        std::fs::rename(staged, self.dir.path().join("scenario.json")).expect("rename the scenario");
    }

    /// The log's events from our client's node.
    pub(crate) fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.path().join("log.jsonl")).unwrap_or_default();
        let events = text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok());
        events.filter(|e| e["node"] == NODE).collect()
    }

    /// A bootstrap's JSON naming it.
    pub(crate) fn bootstrap_json(&self) -> String {
        json!({
            "xds_servers": [{"server_uri": self.addr, "channel_creds": [{"type": "insecure"}],
                             "server_features": ["xds_v3"]}],
            "node": {"id": NODE, "cluster": "tests", "locality": {"zone": "a"}}
        })
        .to_string()
    }

    /// A bootstrap naming it.
    pub(crate) fn bootstrap(&self) -> Bootstrap {
        Bootstrap::parse(&self.bootstrap_json()).expect("a bootstrap")
    }

    pub(crate) fn client(&self, does_not_exist: Duration) -> XdsClient {
        let bootstrap = self.bootstrap();
        let backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(200), 2.0).expect("a backoff");
        let settings = XdsSettings { does_not_exist_timeout: does_not_exist, backoff, ..XdsSettings::default() };
        XdsClient::start(bootstrap, &settings)
    }
}

const NODE: &str = "our-xds-client";

async fn until(watch: &mut ResourceWatch, what: &str, ready: impl FnMut(&Watched) -> bool) -> Watched {
    match tokio::time::timeout(PATIENCE, watch.wait_for(ready)).await {
        Ok(Ok(state)) => state,
        Ok(Err(_)) => panic!("the xDS client ended waiting for {what}"),
        Err(_) => panic!("not so within {PATIENCE:?}: {what}; it is {:?}", watch.current()),
    }
}

async fn acked(client: &XdsClient, kind: ResourceType, name: &str) -> (ResourceWatch, Resource) {
    let mut watch = client.watch(kind, name);
    let state = until(&mut watch, &format!("{kind} {name} ACKed"), |w| w.status == Status::Acked).await;
    let resource = state.resource.as_deref().cloned().expect("an ACKed resource");
    (watch, resource)
}

fn scenario(main_invalid: Option<&str>) -> Value {
    let mut main = json!({
        "name": "main",
        "lb_policy": "ring_hash",
        "ring_hash": {"minimum_ring_size": 2048, "maximum_ring_size": 4096},
        "outlier_detection": {"interval": "2s", "enforcing_failure_percentage": 50},
        "max_requests": 77,
        "localities": [
            {"zone": "a", "weight": 1, "priority": 0, "endpoints": [{"address": "127.0.0.1:5001", "health": "HEALTHY", "weight": 3}]},
            {"zone": "b", "weight": 2, "priority": 0, "endpoints": [{"address": "127.0.0.1:5002", "health": "UNHEALTHY"}]},
            {"zone": "c", "weight": 1, "priority": 1, "endpoints": [{"address": "127.0.0.1:5003", "health": "DRAINING"}]}
        ]
    });
    if let Some(invalid) = main_invalid {
        main["invalid"] = json!(invalid);
    }
    json!({
        "listeners": [{
            "name": "search",
            "port": 1,
            "rds": "search-routes",
            "routes": [
                {"match": {"safe_regex": {"regex": "/search\\.v1\\.Search/S.*"},
                           "headers": [{"name": "x-shard", "exact_match": "7"}]},
                 "cluster": "main", "max_stream_duration": "2s",
                 "retry_policy": {"retry_on": "unavailable,cancelled", "num_retries": 3},
                 "hash_policy": [{"header": {"header_name": "x-user"}, "terminal": true}]},
                {"match": {"prefix": "/"}, "weighted_clusters": {"main": 80, "canary": 20}}
            ]
        }],
        "clusters": [main, {"name": "canary", "lb_policy": "weighted_round_robin",
                            "localities": [{"zone": "a", "endpoints": [{"address": "127.0.0.1:5004"}]}]}]
    })
}

#[tokio::test]
async fn every_resource_decodes_as_the_management_server_wrote_it() {
    let Some(plane) = ControlPlane::start(&scenario(None)).await else { return };
    let client = plane.client(Duration::from_secs(15));
    let (_lds, listener) = acked(&client, ResourceType::Listener, "search").await;
    let Resource::Listener(listener) = listener else { panic!("a Listener") };
    assert_eq!(listener.routes, RouteSource::Rds("search-routes".to_owned()));
    assert_eq!(listener.http_filters, ["envoy.filters.http.router"]);

    let (_rds, routes) = acked(&client, ResourceType::RouteConfiguration, "search-routes").await;
    let Resource::RouteConfiguration(routes) = routes else { panic!("a RouteConfiguration") };
    let host = routes.virtual_host("search").expect("a virtual host for *");
    let [first, second] = host.routes.as_slice() else { panic!("two routes: {:?}", host.routes) };
    let PathMatch::Regex(pattern) = &first.matcher.path else { panic!("a regex path") };
    assert!(pattern.matches("/search.v1.Search/Search") && !pattern.matches("/search.v1.Search/Watch"));
    assert_eq!(first.matcher.headers[0].name, "x-shard");
    let RouteAction::Forward(forward) = &first.action else { panic!("a forwarding route") };
    assert_eq!(forward.clusters[0].name, "main");
    assert_eq!(forward.max_stream_duration, Some(Duration::from_secs(2)));
    let retry = forward.retry_policy.as_ref().expect("a retry policy");
    assert_eq!((retry.retry_on.len(), retry.max_attempts), (2, 4));
    assert_eq!(forward.hash_policies[0].source, HashSource::Header { name: "x-user".to_owned(), rewrite: None });
    assert!(forward.hash_policies[0].terminal);
    let RouteAction::Forward(weighted) = &second.action else { panic!("a forwarding route") };
    let weights: Vec<_> = weighted.clusters.iter().map(|c| (c.name.as_str(), c.weight)).collect();
    // serde_json's objects keep their keys in order, so the scenario lists canary first.
    assert_eq!(weights, [("canary", 20), ("main", 80)]);

    let (_cds, main) = acked(&client, ResourceType::Cluster, "main").await;
    let Resource::Cluster(main) = main else { panic!("a Cluster") };
    assert_eq!(main.eds_service_name, "main");
    assert_eq!(main.lb_policy, LbPolicy::RingHash { minimum_ring_size: 2048, maximum_ring_size: 4096 });
    assert_eq!(main.max_requests, 77);
    let outlier = main.outlier_detection.expect("outlier detection");
    assert_eq!(outlier.interval, Duration::from_secs(2));
    assert_eq!(outlier.failure_percentage.map(|f| f.enforcement_percentage), Some(50));
    let (_canary, canary) = acked(&client, ResourceType::Cluster, "canary").await;
    let Resource::Cluster(canary) = canary else { panic!("a Cluster") };
    assert!(matches!(canary.lb_policy, LbPolicy::WeightedRoundRobin(_)), "{:?}", canary.lb_policy);

    let (_eds, endpoints) = acked(&client, ResourceType::ClusterLoadAssignment, "main").await;
    let Resource::ClusterLoadAssignment(endpoints) = endpoints else { panic!("a ClusterLoadAssignment") };
    let shape: Vec<Vec<(String, u32, usize)>> = endpoints
        .priorities
        .iter()
        .map(|p| p.iter().map(|l| (l.locality.zone.clone(), l.weight, l.endpoints.len())).collect())
        .collect();
    assert_eq!(shape, [vec![("a".to_owned(), 1, 1), ("b".to_owned(), 2, 1)], vec![("c".to_owned(), 1, 1)]]);
    let first = &endpoints.priorities[0][0].endpoints[0];
    assert_eq!(
        (first.address.to_string(), first.weight, first.health.usable()),
        ("127.0.0.1:5001".to_owned(), 3, true)
    );
    assert!(!endpoints.priorities[0][1].endpoints[0].health.usable());

    // The server saw an ACK of each type, with the version it sent.
    common_acked(&plane, &["lds", "rds", "cds", "eds"]).await;
    let dump = serde_json::to_value(client.dump()).expect("JSON");
    assert_eq!(dump.as_array().map(Vec::len), Some(5), "{dump}");
    assert!(dump.as_array().into_iter().flatten().all(|e| e["status"] == "ACKED" && e["version"] == "1"), "{dump}");
}

/// Waits until the server's log holds an ACK of each of `types` from our node.
async fn common_acked(plane: &ControlPlane, types: &[&str]) {
    crate::common::eventually("an ACK of every type in the server's log", || {
        let events = plane.events();
        types.iter().all(|t| events.iter().any(|e| e["event"] == "ack" && e["type"] == *t))
    })
    .await;
}

#[tokio::test]
async fn an_invalid_update_is_nacked_and_the_last_good_cluster_kept() {
    let Some(plane) = ControlPlane::start(&scenario(None)).await else { return };
    let client = plane.client(Duration::from_secs(15));
    let (mut watch, good) = acked(&client, ResourceType::Cluster, "main").await;
    plane.rewrite(&scenario(Some("ring_hash_sizes")));
    let nacked = until(&mut watch, "main NACKed", |w| w.status == Status::Nacked).await;
    assert_eq!(nacked.resource.as_deref(), Some(&good), "the last good cluster is kept");
    assert_eq!(nacked.version, "1");
    let error = nacked.error.expect("the error");
    assert!(error.contains("minimum_ring_size 4096 above maximum_ring_size 1024"), "{error}");
    crate::common::eventually("the NACK in the server's log, with our error", || {
        plane.events().iter().any(|e| {
            e["event"] == "nack"
                && e["type"] == "cds"
                && e["version"] == "1"
                && e["error"].as_str().is_some_and(|m| m.contains("\"main\""))
        })
    })
    .await;
    plane.rewrite(&scenario(None));
    let fixed = until(&mut watch, "main ACKed again", |w| w.status == Status::Acked).await;
    assert_eq!(fixed.version, "3");
    assert_eq!(fixed.error, None);
}

#[tokio::test]
async fn a_resource_never_sent_does_not_exist_after_the_timer() {
    let Some(plane) = ControlPlane::start(&scenario(None)).await else { return };
    let client = plane.client(Duration::from_millis(300));
    let (_main, _) = acked(&client, ResourceType::ClusterLoadAssignment, "main").await;
    // EDS: the server answers only names it has, so only the timer tells.
    let mut eds = client.watch(ResourceType::ClusterLoadAssignment, "nowhere");
    let started = tokio::time::Instant::now();
    until(&mut eds, "nowhere declared missing", |w| w.status == Status::DoesNotExist).await;
    assert!(started.elapsed() >= Duration::from_millis(300), "not before the timer");
    // CDS: a state-of-the-world response without it says so at once.
    let mut cds = client.watch(ResourceType::Cluster, "absent");
    until(&mut cds, "absent deleted", |w| w.status == Status::DoesNotExist).await;
    let main = client.watch(ResourceType::ClusterLoadAssignment, "main");
    assert_eq!(main.current().status, Status::Acked, "a resource that came is not timed out");
}

#[tokio::test]
async fn the_stream_is_redialed_and_the_cache_serves_meanwhile() {
    let Some(mut plane) = ControlPlane::start(&scenario(None)).await else { return };
    let client = plane.client(Duration::from_millis(300));
    let (lds, _) = acked(&client, ResourceType::Listener, "search").await;
    let (eds, _) = acked(&client, ResourceType::ClusterLoadAssignment, "main").await;
    let connects = || plane.events().iter().filter(|e| e["event"] == "connect").count();
    assert_eq!(connects(), 1);
    plane.kill().await;
    // Past the does-not-exist timer with no server: what was held stays.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(lds.current().status, Status::Acked);
    assert_eq!(eds.current().status, Status::Acked);
    plane.restart().await;
    crate::common::eventually("a second stream, each subscription sent again", || {
        let events = plane.events();
        let second = events.iter().rposition(|e| e["event"] == "connect").filter(|&i| i > 0);
        second.is_some_and(|i| {
            let after = &events[i..];
            ["lds", "eds"].iter().all(|t| after.iter().any(|e| e["event"] == "ack" && e["type"] == *t))
        }) && events.iter().filter(|e| e["event"] == "connect").count() == 2
    })
    .await;
    assert_eq!(eds.current().status, Status::Acked);
}
