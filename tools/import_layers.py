#!/usr/bin/env python3
"""Checks the crate's import rules: no import circle in src/server/ (between
files, and between its layers) nor in src/cli/, and no side importing another.

Reads every module of src/ (src/bin/ aside), without its `#[cfg(test)]`
modules, comments and strings, and follows each path it names: `use` trees
(re-exports included), paths in the code that start with `crate::`,
`super::` or `self::`, and paths through a child module (`mod stream;` then
`stream::call`). A path leads to the deepest module it names, so
`super::protocols::Peer` is an import of `protocols/mod.rs`, which re-exports
it from the file that defines it. Then:

- the files of src/server/ import each other without a circle, and so do
  the files of src/cli/;
- the server's layers (each folder of src/server/, and each file beside
  `mod.rs`) import each other without a circle, `mod.rs` (which assembles
  them) imported by none;
- src/server/ imports neither `crate::client` nor `crate::cli`, src/cli/
  not `crate::server`, src/client/ neither `crate::server` nor `crate::cli`,
  src/interop/ (above the server and the client) not `crate::cli`, none of
  them `crate::interop`, and the shared core (the files beside lib.rs) none
  of the four.

    python3 tools/import_layers.py          # exit 1 listing what breaks a rule
    python3 tools/import_layers.py --graph  # and the server's layers, who imports whom
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
    # Test modules may import anything of their file; they are not its imports.
    while test := re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", code):
        depth, j = 1, test.end()
        while j < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            j += 1
        code = code[: test.start()] + code[j:]
    # `pub(in crate::server)` says who may see an item, not what it imports.
    return re.sub(r"pub\s*\(\s*in\s+[\w:]+\s*\)", "pub", code)


def use_paths(tree: str, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The paths of a `use` tree: `a::{b, c::{d, self}}` is a::b, a::c::d, a::c."""
    tree = tree.strip()
    if not tree.endswith("}"):
        path = tuple(s.strip() for s in re.sub(r"\s+as\s+\w+$", "", tree).split("::") if s.strip())
        path = prefix + path
        return [path[:-1] if path and path[-1] in ("self", "*") else path]
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

    def resolve(self, here: tuple[str, ...], path: tuple[str, ...]) -> tuple[str, ...] | None:
        """The deepest module of the crate that `path`, named in module `here`, leads to."""
        if not path:
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
        return module

    def imports(self, module: tuple[str, ...]) -> set[tuple[str, ...]]:
        """The modules `module` imports (itself and its own children's declarations aside)."""
        code = strip(self.files[module].read_text())
        paths = []
        for tree in re.findall(r"\buse\s+([^;]+);", code):
            paths += use_paths(tree)
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


def layer(module: tuple[str, ...], crate: Crate) -> str:
    """The server's layer of a module: its folder under src/server/, or its file."""
    parts = crate.files[module].relative_to(SRC / "server").parts
    return "server/mod.rs" if parts == ("mod.rs",) else f"{parts[0]}/" if len(parts) > 1 else parts[0]


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


def main() -> int:
    crate = Crate()
    imports = {m: crate.imports(m) for m in crate.files}
    problems = []
    for side in ("server", "cli"):
        graph = {m: {t for t in ts if t[:1] == (side,)} for m, ts in imports.items() if m[:1] == (side,)}
        for component in cycles(graph):
            problems.append(f"src/{side}/: files import each other in a circle: "
                            + " -> ".join(name(m, crate) for m in circle(graph, component)))
    layers: dict[str, set[str]] = {}
    for m, ts in imports.items():
        if m[:1] == ("server",):
            own = layer(m, crate)
            layers.setdefault(own, set())
            layers[own] |= {layer(t, crate) for t in ts if t[:1] == ("server",) and layer(t, crate) != own}
    for component in cycles(layers):
        problems.append("src/server/: layers import each other in a circle: " + " -> ".join(circle(layers, component)))
    for m, ts in sorted(imports.items()):
        if m[:1] == ("server",) and layer(m, crate) != "server/mod.rs" and ("server",) in ts:
            problems.append(f"{name(m, crate)} imports server/mod.rs, which assembles the layers")
    for m, ts in sorted(imports.items()):
        side = m[0] if m and m[0] in SIDES else None
        for t in sorted(ts):
            if t and t[0] in FORBIDDEN[side] and m:
                problems.append(f"{name(m, crate)} imports crate::{'::'.join(t)}: "
                                f"{'the shared core' if side is None else 'the ' + side} must not import the {t[0]}")
    if "--graph" in sys.argv[1:]:
        for source in sorted(layers):
            print(f"{source:16} -> {', '.join(sorted(layers[source])) or '(nothing of the server)'}")
    for problem in problems:
        print(problem)
    if problems:
        print(f"import_layers: {len(problems)} rules broken", file=sys.stderr)
        return 1
    edges = sum(len(ts) for ts in imports.values())
    print(f"import_layers: {len(crate.files)} modules, {edges} imports between them; "
          f"no circle in src/server/ ({len(layers)} layers) nor src/cli/, no side imports what it must not")
    return 0


if __name__ == "__main__":
    sys.exit(main())
