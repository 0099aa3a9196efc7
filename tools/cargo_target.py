#!/usr/bin/env python3
"""Where cargo puts what it builds, for the scripts and test peers that run
the built binaries: `cargo metadata`'s target directory, which follows
CARGO_TARGET_DIR (and a Cargo config's `build.target-dir`), so that the
binaries are found wherever the build went, not only in ./target.

    sys.path.insert(0, str(ROOT / "tools"))
    from cargo_target import built
    SERVER = built("debug/server", "SEARCH_SERVER")

    python3 tools/cargo_target.py     # prints the directory (for shell scripts)
"""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def target_dir() -> Path:
    """Cargo's target directory for this package."""
    done = subprocess.run(
        [os.environ.get("CARGO", "cargo"), "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    return Path(json.loads(done.stdout)["target_directory"])


# The release build every benchmark script and CI step shares, word for
# word: the binaries and the one example measured beside them (h2_floor, the
# floor). Each of them is a fat LTO link of minutes, so nothing else is built
# in release, and any other command would link them again (an example brings
# the dev-dependencies' features in, which changes the binaries).
RELEASE_BUILD = ["cargo", "build", "--release", "--quiet", "--bins", "--example", "h2_floor"]

# The debug build of `cargo test` and the test peers, for the tools the
# benchmarks run whose speed is not measured (jwt, hold_calls, slow_proxy).
DEBUG_BUILD = ["cargo", "build", "--quiet", "--bins", "--examples"]


def built(relative: str, variable: str | None = None) -> Path:
    """A build product: the path in `variable` when that is set, else
    `relative` (`debug/server`, `release/examples`) in cargo's target
    directory."""
    if variable and os.environ.get(variable):
        return Path(os.environ[variable])
    return target_dir() / relative


if __name__ == "__main__":
    print(target_dir())
    sys.exit(0)
