#!/usr/bin/env bash
# Every fuzz target for a bounded time: cargo fuzz (libFuzzer) on stable
# Rust, without a sanitizer (the code under test is safe Rust; ASan needs a
# nightly flag), from the committed corpus. A crash, a timeout, an
# allocation past the caps (src/server/fuzzing/alloc.rs) or an RSS over
# the limit fails the run; its input is left in fuzz/artifacts/<target>/.
# New inputs the run finds go to a scratch corpus in cargo's target
# directory, not into the committed one.
#
#   bash fuzz/run.sh             # each target 10 s
#   bash fuzz/run.sh 60 dispatch # one target, 60 s
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-10}
shift || true
version=0.13.2
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $version" ]]; then
  cargo install --locked --quiet cargo-fuzz --version "$version"
fi

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(cargo fuzz list)
fi
# cargo fuzz builds where cargo would: CARGO_TARGET_DIR, else fuzz/target.
work="${CARGO_TARGET_DIR:-$PWD/target}/fuzz-run"

# Built once, then each binary run as it is (cargo fuzz run would build
# again whenever a source file changed).
cargo fuzz build -s none
bin="${CARGO_TARGET_DIR:-$PWD/target}/$(rustc -vV | sed -n 's/^host: //p')/release"
passed=0
failed=0
for target in "${targets[@]}"; do
  scratch="$work/corpus/$target"
  log="$work/$target.log"
  mkdir -p "$scratch" "artifacts/$target"
  if "$bin/$target" -artifact_prefix="artifacts/$target/" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=1024 -print_final_stats=1 "$scratch" "corpus/$target" >"$log" 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    tail -n 40 "$log"
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  edges=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
  echo "fuzz $target: ${runs:-?} runs in ${seconds} s, ${edges:-?} edges covered"
done
echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
