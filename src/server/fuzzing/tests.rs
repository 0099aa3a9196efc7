//! The fuzz targets on stable Rust, in `cargo test`: the committed corpus
//! replayed (its seeds, and the input of every bug a fuzzer found), then
//! mutations of it, a fixed number per target from a fixed seed (more with
//! `FUZZ_MUTATIONS=N`); and each target's four parts present.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use super::{Capped, TARGETS, Target, capped};

/// One allocation past the cap, on a thread running a target, aborts.
#[global_allocator]
static ALLOCATOR: Capped = Capped::WHILE_FUZZING;

/// Mutations per target unless `FUZZ_MUTATIONS` says otherwise.
const MUTATIONS: usize = 300;

/// The fuzz crate's folder.
pub(super) fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The corpus of `target`, sorted by file name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    let mut files: Vec<_> = entries
        .map(|entry| entry.expect("a corpus entry").path())
        .map(|path| (path.display().to_string(), std::fs::read(&path).expect("a corpus file")))
        .collect();
    files.sort();
    files
}

/// Runs `target` on `input`; on a failure, keeps the input where the
/// message says and fails naming it.
fn run(name: &str, target: Target, input: &[u8], from: &str) {
    if catch_unwind(AssertUnwindSafe(|| capped(|| target(input)))).is_err() {
        let kept = std::env::temp_dir().join(format!("fuzz-{name}-{:016x}", fingerprint(input)));
        std::fs::write(&kept, input).expect("the failing input written");
        panic!(
            "the {name} target failed on {from}; the input is {}: `cargo fuzz run {name} <file>` replays it",
            kept.display()
        );
    }
}

/// FNV-1a, to name a failing input.
fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[test]
fn the_corpus_replays() {
    for &(name, target) in TARGETS {
        let files = corpus(name);
        assert!(!files.is_empty(), "fuzz/corpus/{name}/ has no seed");
        for (path, input) in &files {
            run(name, target, input, path);
        }
    }
}

#[test]
fn mutations_of_the_corpus_hold() {
    let rounds = std::env::var("FUZZ_MUTATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(MUTATIONS);
    for &(name, target) in TARGETS {
        let seeds: Vec<Vec<u8>> = corpus(name).into_iter().map(|(_, bytes)| bytes).collect();
        let mut rng = fastrand::Rng::with_seed(fingerprint(name.as_bytes()));
        for round in 0..rounds {
            let mut input = seeds[rng.usize(..seeds.len())].clone();
            for _ in 0..rng.usize(1..=4) {
                mutate(&mut rng, &mut input, &seeds);
            }
            run(name, target, &input, &format!("mutation {round}"));
        }
    }
}

/// One of libFuzzer's simpler mutations of `input`.
fn mutate(rng: &mut fastrand::Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    const INTERESTING: [u8; 8] = [0, 1, 2, 5, 0x7f, 0x80, 0xfe, 0xff];
    let at = rng.usize(..=input.len());
    match rng.u8(..6) {
        0 if at < input.len() => input[at] ^= 1 << rng.u8(..8),
        1 if at < input.len() => input[at] = INTERESTING[rng.usize(..INTERESTING.len())],
        2 => input.splice(at..at, (0..rng.usize(1..8)).map(|_| rng.u8(..))).for_each(drop),
        3 => {
            let end = (at + rng.usize(1..16)).min(input.len());
            input.drain(at..end);
        }
        4 => {
            // Another seed's bytes spliced in.
            let other = &seeds[rng.usize(..seeds.len())];
            let from = rng.usize(..=other.len());
            let to = (from + rng.usize(1..64)).min(other.len());
            input.splice(at..at, other[from..to].iter().copied()).for_each(drop);
        }
        _ => input.truncate(at),
    }
}

/// A file name of the fuzz crate, made from `target`.
fn read_fuzz(path: &str) -> String {
    std::fs::read_to_string(fuzz_dir().join(path)).unwrap_or_default()
}

#[test]
fn every_target_has_its_binary_and_its_corpus() {
    let manifest = read_fuzz("Cargo.toml");
    for &(name, _) in TARGETS {
        let bin = format!("[[bin]]\nname = \"{name}\"\npath = \"fuzz_targets/{name}.rs\"\n");
        assert!(manifest.contains(&bin), "fuzz/Cargo.toml has no [[bin]] for {name}");
        let source = read_fuzz(&format!("fuzz_targets/{name}.rs"));
        assert!(source.contains(&format!("target!({name})")), "fuzz/fuzz_targets/{name}.rs does not call {name}");
    }
    let dirs = std::fs::read_dir(fuzz_dir().join("corpus")).expect("fuzz/corpus/");
    for dir in dirs {
        let dir = dir.expect("a corpus folder").file_name();
        let dir = dir.to_string_lossy();
        assert!(TARGETS.iter().any(|&(name, _)| name == dir), "fuzz/corpus/{dir}/ is no target's");
    }
}
