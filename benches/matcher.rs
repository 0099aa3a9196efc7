//! The matcher's speed: short and multi-MiB texts, ASCII and Unicode, with
//! and without a match, against the naive transcription of the article's
//! Python (`text.to_lowercase().contains("banana")`), which lowercases a
//! copy of every text. `cargo bench --bench matcher`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use search::matcher::{Scanner, contains_banana};

const MIB: usize = 1 << 20;

fn repeat_to(unit: &str, bytes: usize) -> String {
    unit.repeat(bytes / unit.len() + 1)
}

fn inputs() -> Vec<(&'static str, String)> {
    vec![
        ("short ASCII match", "I like BANANAS".to_owned()),
        ("short ASCII miss", "I like apples and pears".to_owned()),
        ("short Unicode miss", "バナナが好き ＢＡＮＡＮＡ İstanbul".to_owned()),
        ("4 MiB ASCII miss", repeat_to("the quick brown fox jumps over the lazy dog ", 4 * MIB)),
        ("4 MiB ASCII match at end", repeat_to("the quick brown fox jumps over the lazy dog ", 4 * MIB) + "Banana"),
        ("4 MiB Unicode miss", repeat_to("Ünïcödé テキスト ｂａｎａｎａ İ ", 4 * MIB)),
        ("4 MiB near misses (every word a candidate)", repeat_to("banan bananb ", 4 * MIB)),
    ]
}

fn matcher(c: &mut Criterion) {
    let mut group = c.benchmark_group("contains_banana");
    for (name, text) in inputs() {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::new("byte search", name), &text, |b, text| {
            b.iter(|| contains_banana(black_box(text)));
        });
        group.bench_with_input(BenchmarkId::new("to_lowercase + contains", name), &text, |b, text| {
            b.iter(|| black_box(text).to_lowercase().contains("banana"));
        });
    }
    group.finish();
}

fn scanner(c: &mut Criterion) {
    let text = repeat_to("a line with banana\nand one without\nBANANA and banana\n", 4 * MIB);
    let mut group = c.benchmark_group("scan");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("4 MiB, 3 occurrences per 3 lines", |b| {
        b.iter(|| {
            let mut scanner = Scanner::new(black_box(text.as_str()));
            let mut found = Vec::new();
            while !scanner.is_done() {
                scanner.scan_window(64 * 1024, &mut found);
            }
            found.len()
        });
    });
    group.finish();
}

criterion_group!(benches, matcher, scanner);
criterion_main!(benches);
