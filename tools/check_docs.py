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

And ARCHITECTURE.md, the code map, is checked both ways:
  - every path it names exists: a token in backticks that ends with `/` or
    with a file extension (`.rs`, `.py`, `.sh`, `.mjs`, ...) names a file or
    folder under the repository's root, under `src/`, under a folder its
    section or its block names (below) or the folder above one, or, when it
    has a `/`, the end of the path of a file of `src/` (`calls/layer.rs`);
    a bare name (`frames.rs`, `config/`) that is none of these, as in a
    paragraph on a rule that crosses folders, may be any file or folder of
    that name under `src/` or the section's folder;
  - every folder and file of `src/` is named in it, one of two ways:
      1. by its path: `src/cli/events.rs`, `cli/events.rs`, or any end of
         the path with a `/` in it (`call/rules.rs` for
         `src/client/call/rules.rs`);
      2. by its file name, in a block (a paragraph or a list item) that
         names its folder: the block is in the section whose heading names
         the folder (`### `src/client/``), or the block itself names the
         folder in backticks (`call/`, relative to the section's folder, or
         from `src/`). So `mod.rs` is named for `src/cli/soak/` by the
         paragraph that says `soak/` ... `mod.rs`. A folder is named by its
         path (`src/client/channel/`, `channel/` in its parent's section,
         or a section's heading); a folder's `mod.rs` is named with it (the
         code map says that every folder has one, saying what it holds).

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


FILE_TOKEN = re.compile(r"^[\w./-]*\.(rs|py|sh|mjs|js|html|css|proto|yaml|toml|json)$")


def blocks(text: str):
    """(line number, heading folders, text) for every paragraph or list item of
    prose; a heading's folders are the spans of the heading above that end
    with `/` (`### `src/client/``, `### `benches/`, `bench/``)."""
    folders: list[str] = []
    current: list[str] = []
    start = 0

    def flush():
        if current:
            yield start, list(folders), " ".join(current)

    for number, line in prose_lines(text):
        heading = HEADING.match(line)
        if heading or not line.strip() or re.match(r"^\s*(?:[-*]|\d+\.)\s", line):
            yield from flush()
            current.clear()
        if heading:
            folders[:] = [span.group(2) for span in CODE_SPAN.finditer(heading.group(2)) if span.group(2).endswith("/")]
            continue
        if line.strip():
            if not current:
                start = number
            current.append(line)
    yield from flush()


def spans(text: str) -> list[str]:
    """The tokens of the code spans of a text, trimmed as path_tokens does."""
    found = []
    for span in CODE_SPAN.finditer(text):
        for token in span.group(2).split():
            token = token.strip("\"'()[],;")
            token = re.split(r"::|:(?=\d)", token)[0].rstrip(":.")
            if token and "=" not in token and not token.startswith(("-", "http")):
                found.append(token)
    return found


def bases(heading_folders: list[str], tokens: list[str]) -> set[Path]:
    """The folders a block's bare file names may be in: the root, `src/`, its
    heading's folders, and the folders the block names, from any of these."""
    roots = [ROOT, ROOT / "src"] + [ROOT / folder for folder in heading_folders]
    roots += [root.parent for root in roots[2:]]
    found = {root for root in roots if root.is_dir()}
    for token in tokens:
        if token.endswith("/"):
            found |= {root / token for root in roots if (root / token).is_dir()}
    return {path.resolve() for path in found}


def check_architecture(path: Path) -> list[str]:
    """The code map's paths that name nothing, and the files and folders of
    src/ it does not name (the rules are in this script's docstring)."""
    src = ROOT / "src"
    sources = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix == ".rs")
    folders = sorted(p for p in src.rglob("*") if p.is_dir())
    relative = {p: p.relative_to(src).as_posix() for p in sources + folders}
    named: set[Path] = set()
    problems = []
    by_name: dict[str, list[Path]] = {}
    for p in ROOT.rglob("*"):
        if not any(part in ("target", "node_modules", ".git") for part in p.relative_to(ROOT).parts):
            by_name.setdefault(p.name, []).append(p)
    for number, heading_folders, text in blocks(path.read_text(encoding="utf-8")):
        tokens = spans(text)
        where = bases(heading_folders, tokens)
        named |= {p for p in folders if f"src/{relative[p]}/" in heading_folders}
        for token in tokens:
            if not (token.endswith("/") or FILE_TOKEN.match(token)) or any(ch in token for ch in "*?{"):
                continue
            bare = token.rstrip("/")
            hits = {p for p, rel in relative.items() if rel == bare or f"src/{rel}" == bare or ("/" in bare and rel.endswith("/" + bare))}
            if "/" not in bare:
                hits |= {p for p in sources + folders if p.parent.resolve() in where and p.name == bare}
            named |= hits
            exists = hits or (ROOT / bare).exists() or any((base / bare).exists() for base in where)
            if not exists and "/" not in bare:
                # A cross-cutting paragraph names a file or folder by its name alone.
                scope = [ROOT / "src"] + [ROOT / folder for folder in heading_folders]
                exists = any(any(s.resolve() in f.resolve().parents for s in scope) for f in by_name.get(bare, []))
            if not exists:
                problems.append(f"{display(path)}:{number}: `{token}` names no file or folder here")
    named |= {p for p in sources if p.name == "mod.rs" and p.parent in named}
    for p in folders + sources:
        if p not in named:
            kind = "folder" if p.is_dir() else "file"
            problems.append(f"{display(path)}: the {kind} src/{relative[p]}{'/' if p.is_dir() else ''} is not named in the code map")
    return problems


def main() -> int:
    docs = [Path(arg).resolve() for arg in sys.argv[1:]] or documents()
    cache: dict = {}
    problems = [problem for doc in docs for problem in check(doc, cache)]
    architecture = ROOT / "ARCHITECTURE.md"
    if architecture in docs:
        problems += check_architecture(architecture)
    for problem in problems:
        print(problem)
    if problems:
        print(f"check_docs: {len(problems)} broken links or paths in {len(docs)} documents", file=sys.stderr)
        return 1
    print(
        f"check_docs: {len(docs)} documents, every relative link, anchor and repository path resolves;"
        " ARCHITECTURE.md names every file and folder of src/, and nothing that is not there"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
