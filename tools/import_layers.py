#!/usr/bin/env python3
"""Checks the crate's import rules: no import circle anywhere in src/, no
arrow that runs up a layer of the server or the client, and no side
importing another.

Reads every module of src/ (src/bin/ aside), without its `#[cfg(test)]`
modules, comments and strings, and follows each path it names: `use` trees,
paths in the code that start with `crate::`, `super::` or `self::`, and
paths through a child module (`mod stream;` then `stream::call`). A path
leads to the module that defines what it names: through the modules it
names, then through re-exports (`pub use self::error::Error` makes
`client::Error` an import of `client/error.rs`). A re-export is not an
import of its own: a `mod.rs` that only declares and re-exports imports
nothing. Then:

- the files of src/ import each other without a circle;
- the server's and the client's layers (`LAYERS`: each a folder, or a file
  beside `mod.rs`) import only layers below them or beside them (the same
  rank), and those beside each other without a circle; a file or folder
  of theirs that `LAYERS` does not rank is reported, so that a new one is
  placed on purpose; nothing of theirs imports what their `mod.rs` defines;
- src/server/ imports neither `crate::client` nor `crate::cli`, src/cli/
  not `crate::server`, src/client/ neither `crate::server` nor `crate::cli`,
  src/interop/ (above the server and the client) not `crate::cli`, none of
  them `crate::interop`, and the shared core (the files beside lib.rs, and
  src/traces/) none of the four.

    python3 tools/import_layers.py          # exit 1 listing what breaks a rule
    python3 tools/import_layers.py --graph  # and the layers, who imports whom
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
SIDES = ("server", "client", "cli", "interop")
# What each side must not import (the shared core: none of the sides).
FORBIDDEN = {
    "server": ("client", "cli", "interop"),
    "cli": ("server", "interop"),
    "client": ("server", "cli", "interop"),
    "interop": ("cli",),
    None: SIDES,
}
# The layers of a side, bottom first: a folder (`transport/`) or a file
# beside the side's mod.rs. A layer imports those of lower ranks, and those
# of its own rank without a circle; never one above it.
LAYERS = {
    "server": [
        ["config/", "added.rs", "method_table.rs", "shutdown.rs", "orca/"],
        ["transport/"],
        ["protocols/"],
        ["security/"],
        ["calls/", "page.rs"],
        ["drain.rs", "fuzzing/"],
    ],
    "client": [
        ["error.rs", "stats.rs", "backoff.rs", "token.rs", "metadata.rs"],
        # The xDS client: a source of configuration the channel will read
        # (as it reads a resolver's addresses), below it; it dials its
        # management server with tonic, not through the channel.
        ["xds/"],
        ["channel/"],
        ["call/"],
        ["handle.rs", "methods.rs", "options.rs", "responses.rs"],
    ],
}
PUB_USE = re.compile(r"\bpub(?:\s*\([^)]*\))?\s+use\s+([^;]+);")


def module_of(path: Path) -> tuple[str, ...]:
    """The module path of a file of src/: `server/calls/mod.rs` is ('server', 'calls')."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib"):
        parts.pop()
    return tuple(parts)


def strip(text: str) -> str:
    """The code without comments, string and char literals, nor `#[cfg(test)]` items."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif raw := re.match(r'b?r(#*)"', text[i:]):
            end = text.find('"' + raw.group(1), i + raw.end())
            i = n if end < 0 else end + 1 + len(raw.group(1))
            out.append('""')
        elif text[i] == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif char := re.match(r"b?'(\\.[^']*|[^\\'])'", text[i:]):
            i += char.end()
            out.append("' '")
        else:
            out.append(text[i])
            i += 1
    code = "".join(out)
    # Test items may import anything of their file; they are not its imports.
    while test := re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?(mod\s+\w+\s*|fn\s[^{]*)\{", code):
        depth, j = 1, test.end()
        while j < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            j += 1
        code = code[: test.start()] + code[j:]
    # `pub(in crate::server)` says who may see an item, not what it imports.
    return re.sub(r"pub\s*\(\s*in\s+[\w:]+\s*\)", "pub(crate)", code)


def use_paths(tree: str, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """The paths of a `use` tree with the name each brings in: `a::{b, c as d}` is (a::b, b), (a::c, d)."""
    tree = tree.strip()
    if not tree.endswith("}"):
        alias = re.search(r"\s+as\s+(\w+)$", tree)
        path = prefix + tuple(s.strip() for s in re.sub(r"\s+as\s+\w+$", "", tree).split("::") if s.strip())
        if path and path[-1] in ("self", "*"):
            path = path[:-1]
        return [(path, alias.group(1) if alias else (path[-1] if path else ""))]
    head, _, body = tree.partition("{")
    head_path = prefix + tuple(s.strip() for s in head.split("::") if s.strip())
    items, depth, start = [], 0, 0
    body = body[:-1]
    for k, ch in enumerate(body):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append(body[start:k])
            start = k + 1
    items.append(body[start:])
    return [p for item in items if item.strip() for p in use_paths(item, head_path)]


class Crate:
    def __init__(self):
        self.files = {module_of(p): p for p in sorted(SRC.rglob("*.rs")) if "bin" not in p.relative_to(SRC).parts}
        self.code = {m: strip(p.read_text()) for m, p in self.files.items()}
        # Each module's re-exports: the name, and the path it stands for.
        self.exports = {
            m: {name: path for tree in PUB_USE.findall(code) for path, name in use_paths(tree) if name != "*"}
            for m, code in self.code.items()
        }

    def resolve(self, here: tuple[str, ...], path: tuple[str, ...], depth: int = 0) -> tuple[str, ...] | None:
        """The module of the crate that defines what `path`, named in module `here`, leads to."""
        if not path or depth > 16:
            return None
        module, rest = here, list(path)
        if rest[0] == "crate":
            module, rest = (), rest[1:]
        elif rest[0] in ("self", "super"):
            while rest and rest[0] in ("self", "super"):
                module = module[:-1] if rest.pop(0) == "super" else module
        elif here + (rest[0],) in self.files:
            pass  # a child module, named without `self::`
        else:
            return None  # std, or another crate
        while rest and module + (rest[0],) in self.files:
            module += (rest.pop(0),)
        if rest and rest[0] in self.exports.get(module, {}):
            return self.resolve(module, self.exports[module][rest[0]], depth + 1) or module
        return module

    def imports(self, module: tuple[str, ...]) -> set[tuple[str, ...]]:
        """The modules `module` imports (itself, and what it only re-exports, aside)."""
        code = PUB_USE.sub("", self.code[module])
        paths = []
        for tree in re.findall(r"\buse\s+([^;]+);", code):
            paths += [path for path, _ in use_paths(tree)]
        code = re.sub(r"\buse\s+[^;]+;", "", code)
        for found in re.findall(r"(?<![\w:$])((?:crate|super|self)(?:\s*::\s*\w+)+)", code):
            paths.append(tuple(s.strip() for s in found.split("::")))
        children = re.findall(r"\bmod\s+(\w+)\s*;", code)
        for child in children:
            for found in re.findall(rf"(?<![\w:]){child}((?:\s*::\s*\w+)+)", code):
                paths.append((child, *(s.strip() for s in found.split("::") if s.strip())))
        targets = {self.resolve(module, p) for p in paths}
        return {t for t in targets if t is not None and t != module}


def cycles(graph: dict) -> list[list]:
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def name(module: tuple[str, ...], crate: Crate) -> str:
    return str(crate.files[module].relative_to(ROOT))


def layer(side: str, module: tuple[str, ...], crate: Crate) -> str:
    """A side's layer of one of its modules: its folder under src/SIDE/, or its file."""
    parts = crate.files[module].relative_to(SRC / side).parts
    return "mod.rs" if parts == ("mod.rs",) else f"{parts[0]}/" if len(parts) > 1 else parts[0]


def circle(graph: dict, component: list) -> list:
    """One shortest circle through the first node of `component`."""
    start, inside = component[0], set(component)
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for succ in sorted(graph.get(path[-1], ())):
            if succ == start:
                return path + [start]
            if succ in inside and succ not in seen:
                seen.add(succ)
                paths.append(path + [succ])
    return component


def check_layers(side: str, crate: Crate, imports: dict, problems: list) -> dict[str, set[str]]:
    """The rules of a side's layers; returns who imports whom among them."""
    rank = {layer: r for r, layers in enumerate(LAYERS[side]) for layer in layers}
    graph: dict[str, set[str]] = {}
    for m, ts in imports.items():
        if m[:1] != (side,):
            continue
        own = layer(side, m, crate)
        if own != "mod.rs" and own not in rank:
            problems.append(f"{name(m, crate)}: src/{side}/{own} is in no layer of tools/import_layers.py's LAYERS")
        graph.setdefault(own, set())
        for t in ts:
            if t[:1] != (side,):
                continue
            theirs = layer(side, t, crate)
            if theirs == "mod.rs" and own != "mod.rs":
                problems.append(f"{name(m, crate)} imports src/{side}/mod.rs, which only assembles the side")
            elif theirs != own:
                graph[own].add(theirs)
                if own in rank and theirs in rank and rank[theirs] > rank[own]:
                    problems.append(f"{name(m, crate)} ({own}) imports {name(t, crate)} ({theirs}), a layer above it")
    same_rank = {a: {b for b in bs if rank.get(a) == rank.get(b)} for a, bs in graph.items()}
    for component in cycles(same_rank):
        problems.append(f"src/{side}/: layers import each other in a circle: " + " -> ".join(circle(same_rank, component)))
    return graph


def main() -> int:
    crate = Crate()
    imports = {m: crate.imports(m) for m in crate.files}
    problems: list[str] = []
    for component in cycles(imports):
        problems.append("src/: files import each other in a circle: "
                        + " -> ".join(name(m, crate) for m in circle(imports, component)))
    layers = {side: check_layers(side, crate, imports, problems) for side in LAYERS}
    for m, ts in sorted(imports.items()):
        side = m[0] if m and m[0] in SIDES else None
        for t in sorted(ts):
            if t and t[0] in FORBIDDEN[side] and m:
                problems.append(f"{name(m, crate)} imports crate::{'::'.join(t)}: "
                                f"{'the shared core' if side is None else 'the ' + side} must not import the {t[0]}")
    if "--graph" in sys.argv[1:]:
        for side, graph in layers.items():
            for source in sorted(graph):
                print(f"{side + '/' + source:24} -> {', '.join(sorted(graph[source])) or '(nothing of the ' + side + ')'}")
    for problem in problems:
        print(problem)
    if problems:
        print(f"import_layers: {len(problems)} rules broken", file=sys.stderr)
        return 1
    edges = sum(len(ts) for ts in imports.values())
    folders = sorted({str(p.parent.relative_to(ROOT)) for p in crate.files.values()})
    print(f"import_layers: {len(crate.files)} modules in {len(folders)} folders ({', '.join(folders)}), "
          f"{edges} imports between them; no circle anywhere, no arrow up a layer of "
          f"{' or '.join(f'src/{s}/ ({len(g)} layers)' for s, g in layers.items())}, no side imports what it must not")
    return 0


if __name__ == "__main__":
    sys.exit(main())
