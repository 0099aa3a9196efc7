//! The HTTP/2 and TLS stack in `Cargo.lock` against the advisories known
//! for it: a test fails when the lock holds a release of h2, hyper, rustls
//! or the crates beside them (rustls-webpki, tokio-rustls, tonic) older
//! than the one that fixes a known advisory. The table is the RustSec
//! advisory database's, as of November 2026; a new advisory is a new row.
//!
//! MadeYouReset (CVE-2025-8671) has no advisory against h2: the resets a
//! client makes h2 send are bounded since the fix of RUSTSEC-2024-0003, and
//! the server's own reset budget counts them (`tests/it/attacks.rs`).

use std::collections::BTreeMap;

/// One advisory against one crate.
struct Advisory {
    krate: &'static str,
    id: &'static str,
    what: &'static str,
    /// The releases that fix it: `>=X` every version from X on, `^X` the
    /// versions from X on within X's line (0.3.24 for 0.3.x).
    patched: &'static [&'static str],
    /// `<X`: versions before X never had the flaw.
    unaffected: &'static [&'static str],
}

const fn advisory(
    krate: &'static str,
    id: &'static str,
    what: &'static str,
    patched: &'static [&'static str],
    unaffected: &'static [&'static str],
) -> Advisory {
    Advisory { krate, id, what, patched, unaffected }
}

#[rustfmt::skip]
const ADVISORIES: &[Advisory] = &[
    advisory("h2", "RUSTSEC-2023-0034", "streams reset before the server took them pile up (CVE-2023-26964)", &[">=0.3.17"], &[]),
    advisory("h2", "RUSTSEC-2024-0003", "resets a peer makes the server send, unbounded (reset flood)", &["^0.3.24", ">=0.4.2"], &[]),
    advisory("h2", "RUSTSEC-2024-0332", "CONTINUATION flood", &["^0.3.26", ">=0.4.4"], &[]),
    advisory("h2", "RUSTSEC-2026-0258", "empty DATA frames accepted and queued without limit", &[">=0.4.16"], &[]),
    advisory("hyper", "RUSTSEC-2021-0020", "several Transfer-Encoding headers misread (request smuggling)", &[">=0.14.3", "^0.13.10", "^0.12.36"], &["<0.12.0"]),
    advisory("hyper", "RUSTSEC-2021-0078", "lenient Content-Length parsing (request smuggling)", &[">=0.14.10"], &[]),
    advisory("hyper", "RUSTSEC-2021-0079", "integer overflow parsing Transfer-Encoding chunk sizes", &[">=0.14.10"], &[]),
    advisory("hyper", "RUSTSEC-2022-0022", "the parser creates an invalid uninitialized value", &[">=0.14.12"], &[]),
    advisory("rustls", "RUSTSEC-2024-0336", "complete_io loops forever on some network input", &[">=0.23.5", "^0.22.4", "^0.21.11"], &[]),
    advisory("rustls", "RUSTSEC-2024-0399", "a network-reachable panic in Acceptor::accept", &[">=0.23.18"], &["<0.23.13"]),
    advisory("rustls", "RUSTSEC-2026-0285", "TLS 1.3 handshake messages accepted across encryption levels", &[">=0.23.45"], &["<0.23.13"]),
    advisory("rustls", "RUSTSEC-2026-0346", "one of four published on 2026-10-14", &[">=0.23.46"], &[]),
    advisory("rustls", "RUSTSEC-2026-0347", "one of four published on 2026-10-14", &[">=0.23.46"], &[]),
    advisory("rustls", "RUSTSEC-2026-0348", "one of four published on 2026-10-14", &[">=0.23.46"], &[]),
    advisory("rustls", "RUSTSEC-2026-0349", "one of four published on 2026-10-14", &[">=0.23.46"], &[]),
    advisory("rustls-webpki", "RUSTSEC-2023-0053", "CPU denial of service in certificate path building", &["^0.100.2", ">=0.101.4"], &[]),
    advisory("rustls-webpki", "RUSTSEC-2026-0049", "CRLs not authoritative by distribution point", &[">=0.103.10"], &["<0.102.0"]),
    advisory("rustls-webpki", "RUSTSEC-2026-0098", "name constraints for URI names accepted", &["^0.103.12", ">=0.104.0"], &[]),
    advisory("rustls-webpki", "RUSTSEC-2026-0099", "name constraints accepted for wildcard names", &["^0.103.12", ">=0.104.0"], &[]),
    advisory("rustls-webpki", "RUSTSEC-2026-0104", "a reachable panic parsing a CRL", &["^0.103.13", ">=0.104.0"], &[]),
    advisory("tokio-rustls", "RUSTSEC-2020-0019", "reads may use excessive memory", &["^0.12.3", ">=0.13.1"], &["<0.12.0"]),
    advisory("tonic", "RUSTSEC-2024-0376", "a remotely exploitable denial of service", &[">=0.12.3"], &["<0.12.2"]),
];

/// A version's numbers (a pre-release or build suffix ignored).
fn numbers(version: &str) -> (u64, u64, u64) {
    let core = version.split(['-', '+']).next().unwrap_or(version);
    let mut parts = core.split('.').map(|part| part.parse::<u64>().expect("a version number"));
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

/// Whether `version` meets `requirement` (`>=X`, `^X` or `<X`).
fn meets(version: &str, requirement: &str) -> bool {
    let v = numbers(version);
    if let Some(min) = requirement.strip_prefix(">=") {
        return v >= numbers(min);
    }
    if let Some(max) = requirement.strip_prefix('<') {
        return v < numbers(max);
    }
    let min = numbers(requirement.strip_prefix('^').expect("a requirement: >=X, ^X or <X"));
    // The semver-compatible line: same major, and same minor below 1.0.
    let line = |(major, minor, _): (u64, u64, u64)| if major == 0 { (0, minor) } else { (major, 0) };
    line(v) == line(min) && v >= min
}

/// The advisories of `ADVISORIES` that `version` of `krate` is open to.
fn open_to(krate: &str, version: &str) -> Vec<&'static Advisory> {
    ADVISORIES
        .iter()
        .filter(|a| a.krate == krate)
        .filter(|a| !a.unaffected.iter().any(|r| meets(version, r)) && !a.patched.iter().any(|r| meets(version, r)))
        .collect()
}

/// Every crate of a `Cargo.lock`, with its versions.
fn locked(lock: &str) -> BTreeMap<String, Vec<String>> {
    let mut crates: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            package
                .lines()
                .find_map(|line| line.strip_prefix(key)?.trim().strip_prefix("= "))
                .map(|v| v.trim_matches('"'))
        };
        if let (Some(name), Some(version)) = (field("name "), field("version ")) {
            crates.entry(name.to_owned()).or_default().push(version.to_owned());
        }
    }
    crates
}

#[test]
fn cargo_lock_holds_no_release_of_the_http_and_tls_stack_open_to_a_known_advisory() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock");
    let crates = locked(&std::fs::read_to_string(path).expect("Cargo.lock"));
    for krate in ["h2", "hyper", "rustls"] {
        assert!(crates.contains_key(krate), "{krate} is not in Cargo.lock: is the table still about this project?");
    }
    let open: Vec<String> = crates
        .iter()
        .flat_map(|(krate, versions)| versions.iter().map(move |version| (krate, version)))
        .flat_map(|(krate, version)| {
            open_to(krate, version)
                .into_iter()
                .map(move |a| format!("{krate} {version}: {} ({}), fixed in {}", a.id, a.what, a.patched.join(" or ")))
        })
        .collect();
    assert!(open.is_empty(), "Cargo.lock holds releases open to known advisories; update them:\n{}", open.join("\n"));
}

#[test]
fn the_table_catches_the_releases_before_each_fix() {
    let open = |krate, version| open_to(krate, version).iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(open("h2", "0.4.15"), ["RUSTSEC-2026-0258"]);
    assert_eq!(open("h2", "0.4.3"), ["RUSTSEC-2024-0332", "RUSTSEC-2026-0258"]);
    // A fix on an older line holds on that line only; 0.3 has none for the
    // empty DATA frames.
    assert_eq!(open("h2", "0.3.26"), ["RUSTSEC-2026-0258"]);
    assert_eq!(open("h2", "0.3.25"), ["RUSTSEC-2024-0332", "RUSTSEC-2026-0258"]);
    // Before the flaw came in: open only to the advisories without such a line.
    assert_eq!(open("rustls", "0.23.12").len(), 4);
    assert_eq!(open("rustls", "0.23.44")[0], "RUSTSEC-2026-0285");
    assert_eq!(
        open("rustls", "0.21.10"),
        ["RUSTSEC-2024-0336", "RUSTSEC-2026-0346", "RUSTSEC-2026-0347", "RUSTSEC-2026-0348", "RUSTSEC-2026-0349"]
    );
    assert_eq!(open("hyper", "0.14.11"), ["RUSTSEC-2022-0022"]);
    assert!(open("hyper", "1.0.0").is_empty());
    let lock = "[[package]]\nname = \"h2\"\nversion = \"0.4.15\"\n\n[[package]]\nname = \"h2\"\nversion = \"0.3.26\"\n";
    assert_eq!(locked(lock)["h2"], ["0.4.15", "0.3.26"]);
}
