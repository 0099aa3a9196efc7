#!/usr/bin/env python3
"""Checks that no file of the repository repeats the article's code.

The article (shared/seed/, beside the repository) holds the Python service
this project ports. Its code must not be copied here: this lists every
tracked text file that holds three consecutive non-blank lines (white space
trimmed) that are also three consecutive non-blank lines of the article,
skipping runs made only of punctuation such as `}` or `)`.

    python3 tools/article_overlap.py [ARTICLE_DIR]

Exit 0 with a summary when nothing repeats (or the article is not there to
compare with, which it says); exit 1 listing FILE:LINE for each repeat.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WINDOW = 3
SKIPPED = ("gen/", "Cargo.lock")


def lines_of(text: str) -> list[tuple[int, str]]:
    """The non-blank lines, trimmed, with their 1-based numbers."""
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def trivial(window: tuple[str, ...]) -> bool:
    """A run with no letter or digit in it says nothing about where it came from."""
    return not any(ch.isalnum() for line in window for ch in line)


def windows(lines: list[tuple[int, str]]):
    for i in range(len(lines) - WINDOW + 1):
        run = tuple(text for _, text in lines[i : i + WINDOW])
        if not trivial(run):
            yield lines[i][0], run


def main() -> int:
    article_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "seed"
    articles = sorted(p for p in article_dir.glob("*") if p.is_file()) if article_dir.is_dir() else []
    if not articles:
        print(f"article_overlap: no article in {article_dir}; nothing to compare with (skipped)")
        return 0
    article_runs = {run for path in articles for _, run in windows(lines_of(path.read_text(errors="replace")))}
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    hits, checked = [], 0
    for name in filter(None, tracked.decode().split("\0")):
        path = ROOT / name
        if name.startswith(SKIPPED) or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary
        checked += 1
        for number, run in windows(lines_of(data.decode(errors="replace"))):
            if run in article_runs:
                hits.append(f"{name}:{number}: {' / '.join(run)}")
    for hit in hits:
        print(hit)
    if hits:
        print(f"article_overlap: {len(hits)} runs of {WINDOW} lines repeat the article's code", file=sys.stderr)
        return 1
    print(f"article_overlap: {checked} files checked, none repeats {WINDOW} lines of the article")
    return 0


if __name__ == "__main__":
    sys.exit(main())
