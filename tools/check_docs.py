#!/usr/bin/env python3
"""Checks that the documents' links and repository paths resolve, offline.

Reads README.md, ARCHITECTURE.md (when there is one) and docs/*.md, and
reports:
  - a relative link (`[text](docs/guide.md)`, `[text](#limits)`, a
    reference definition `[name]: path`) whose file or folder does not exist;
  - a link's `#anchor` that no heading of its target makes, by GitHub's rules
    (the heading's text lowercased, punctuation other than `-` and `_`
    dropped, each space a `-`, a repeated anchor numbered `-1`, `-2`, ...),
    nor an explicit `<a name="...">` or `id="..."`;
  - a repository path written in backticks (`src/...`, `tests/...`,
    `bench/...`, `deploy/...`, `peers/...`, `examples/...`, `proto/...`,
    `tools/...`, `docs/...`, `benches/...`, `gen/...`, `.ci/...`) that names
    no file or folder; `*` globs and `{a,b}` lists must match something, and
    a `:LINE` or `::item` after the path is ignored.
Web links (http, https, mailto) are not fetched. Fenced code blocks are
skipped: they hold commands and output, not references.

    python3 tools/check_docs.py [FILE.md ...]

Exit 0 with a summary when everything resolves; exit 1 listing FILE:LINE and
what is broken, one line each.
"""

import glob
import re
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH_PREFIXES = (
    "src/",
    "tests/",
    "bench/",
    "benches/",
    "deploy/",
    "peers/",
    "examples/",
    "proto/",
    "tools/",
    "docs/",
    "gen/",
    ".ci/",
)
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# [text](target "title"): the target up to white space or the closing
# parenthesis; an image's ![alt](target) is the same.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s[^>]*\bname=\"([^\"]+)\"|\bid=\"([^\"]+)\"")


def documents() -> list[Path]:
    """The documents a user or a contributor reads."""
    found = [ROOT / "README.md", ROOT / "ARCHITECTURE.md"]
    found += sorted((ROOT / "docs").glob("*.md"))
    return [path for path in found if path.is_file()]


def prose_lines(text: str):
    """(line number, line) for every line outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * len(match.group(1))
            continue
        if fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            continue
        yield number, line


def heading_text(raw: str) -> str:
    """What GitHub renders of a heading's Markdown: links' text, no code marks, no tags."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", raw)
    text = re.sub(r"<[^>]+>", "", text)
    return text.replace("`", "").replace("*", "")


def slug(text: str) -> str:
    """GitHub's anchor for a heading's text (before duplicates are numbered)."""
    kept = []
    for ch in heading_text(text).strip().lower():
        if ch in "-_" or ch == " ":
            kept.append("-" if ch == " " else ch)
        elif unicodedata.category(ch)[0] in "LNM":
            kept.append(ch)
    return "".join(kept)


def anchors(path: Path, cache: dict) -> set[str]:
    """Every anchor a document makes: its headings' (numbered when repeated) and explicit ones."""
    if path not in cache:
        made, seen = set(), {}
        text = path.read_text(encoding="utf-8")
        for _, line in prose_lines(text):
            heading = HEADING.match(line)
            if heading:
                base = slug(heading.group(2))
                count = seen.get(base, 0)
                seen[base] = count + 1
                made.add(base if count == 0 else f"{base}-{count}")
            for name, ident in HTML_ANCHOR.findall(line):
                made.add(name or ident)
        cache[path] = made
    return cache[path]


def without_code_spans(line: str) -> str:
    return CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def check_link(doc: Path, target: str, cache: dict) -> str | None:
    """Why `target`, linked from `doc`, does not resolve; None when it does."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("//"):
        return None  # a web link, a mailto: not checked offline
    file_part, _, anchor = target.partition("#")
    dest = (doc.parent / file_part).resolve() if file_part else doc
    if file_part and not dest.exists():
        return f"link {target}: no such file {display(dest)}"
    if not anchor:
        return None
    if dest.is_dir() or dest.suffix.lower() != ".md":
        return f"link {target}: an anchor into {display(dest)}, which is not a Markdown document"
    if anchor.lower() not in anchors(dest, cache):
        return f"link {target}: no heading makes #{anchor} in {display(dest)}"
    return None


def display(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def expand_braces(pattern: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [out for part in match.group(1).split(",") for out in expand_braces(head + part + tail)]


def path_tokens(span: str):
    """The tokens of a code span that name a repository path."""
    for token in span.split():
        token = token.strip("\"'()[],;")
        token = re.split(r"::|:(?=\d)", token)[0].rstrip(":.")
        if token.startswith(PATH_PREFIXES) and "=" not in token:
            yield token


def check_path(token: str) -> str | None:
    """Why a path written in backticks names nothing here; None when it resolves."""
    for pattern in expand_braces(token):
        if any(ch in pattern for ch in "*?["):
            if not glob.glob(str(ROOT / pattern)):
                return f"path `{token}`: {pattern} matches nothing"
        elif not (ROOT / pattern).exists():
            return f"path `{token}`: no such file or folder"
    return None


def check(doc: Path, cache: dict) -> list[str]:
    problems = []
    name = display(doc)
    for number, line in prose_lines(doc.read_text(encoding="utf-8")):
        for span in CODE_SPAN.finditer(line):
            for token in path_tokens(span.group(2)):
                why = check_path(token)
                if why:
                    problems.append(f"{name}:{number}: {why}")
        prose = without_code_spans(line)
        targets = [m.group(1) for m in INLINE_LINK.finditer(prose)]
        definition = REFERENCE_DEF.match(prose)
        if definition:
            targets.append(definition.group(1))
        for target in targets:
            why = check_link(doc, target, cache)
            if why:
                problems.append(f"{name}:{number}: {why}")
    return problems


def main() -> int:
    docs = [Path(arg).resolve() for arg in sys.argv[1:]] or documents()
    cache: dict = {}
    problems = [problem for doc in docs for problem in check(doc, cache)]
    for problem in problems:
        print(problem)
    if problems:
        print(f"check_docs: {len(problems)} broken links or paths in {len(docs)} documents", file=sys.stderr)
        return 1
    print(f"check_docs: {len(docs)} documents, every relative link, anchor and repository path resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
