#!/usr/bin/env python3
"""Checks the shape of src/: no file over 400 lines and no function over 80,
unless the file's opening comment says why it must be one piece.

A file says so with a line of its `//!` header that starts `Long by design:`
followed by the reason (a table, a generated-like list); that exempts the
file and its functions. Lines are counted as `wc -l` counts them; a
function from the line of its `fn` to the line of its closing brace, its
doc comment and attributes aside. Test modules count like the rest.

    python3 tools/code_shape.py           # exit 1 listing every file and function over
    python3 tools/code_shape.py --longest # and the longest file and function left
"""

import re
import sys
from pathlib import Path

from import_layers import ROOT, SRC

MAX_FILE = 400
MAX_FN = 80
EXEMPT = re.compile(r"^//!\s*Long by design:\s*\S", re.MULTILINE)
FN = re.compile(r"^[ \t]*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?(?:extern\s+\"\w+\"\s+)?fn\s+(\w+)",
                re.MULTILINE)


def blank(text: str) -> str:
    """`text` with comments, strings and char literals blanked out, line breaks kept."""
    out, i, n = [], 0, len(text)

    def skip(to: int) -> None:
        out.append("".join("\n" if c == "\n" else " " for c in text[i:to]))

    while i < n:
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
        elif text.startswith("/*", i):
            depth, end = 1, i + 2
            while end < n and depth:
                if text.startswith("/*", end):
                    depth, end = depth + 1, end + 2
                elif text.startswith("*/", end):
                    depth, end = depth - 1, end + 2
                else:
                    end += 1
        elif raw := re.match(r'b?r(#*)"', text[i:]):
            close = text.find('"' + raw.group(1), i + raw.end())
            end = n if close < 0 else close + 1 + len(raw.group(1))
        elif text[i] == '"':
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            end += 1
        elif char := re.match(r"b?'(\\.[^']*|[^\\'])'", text[i:]):
            end = i + char.end()
        else:
            out.append(text[i])
            i += 1
            continue
        skip(end)
        i = end
    return "".join(out)


def functions(text: str) -> list[tuple[str, int, int]]:
    """Each function with a body: its name, first line and line count."""
    code = blank(text)
    found = []
    for match in FN.finditer(code):
        # The body opens at the first `{` not inside the signature's
        # parentheses, brackets or angle brackets; a `;` first means none.
        depth, j = 0, match.end()
        while j < len(code):
            c = code[j]
            if c in "([":
                depth += 1
            elif c in ")]":
                depth -= 1
            elif c == ";" and depth == 0:
                j = -1
                break
            elif c == "{" and depth == 0:
                break
            j += 1
        if j < 0 or j >= len(code):
            continue
        braces, k = 1, j + 1
        while k < len(code) and braces:
            braces += {"{": 1, "}": -1}.get(code[k], 0)
            k += 1
        first = code.count("\n", 0, match.start()) + 1
        last = code.count("\n", 0, k - 1) + 1
        found.append((match.group(1), first, last - first + 1))
    return found


def main() -> int:
    problems, longest_file, longest_fn = [], ("", 0), ("", 0)
    for path in sorted(SRC.rglob("*.rs")):
        text = path.read_text()
        name = str(path.relative_to(ROOT))
        lines = text.count("\n") + (0 if text.endswith("\n") else 1)
        if EXEMPT.search(text):
            continue
        if lines > MAX_FILE:
            problems.append(f"{name}: {lines} lines (at most {MAX_FILE}, or say why in the header: 'Long by design:')")
        longest_file = max(longest_file, (name, lines), key=lambda f: f[1])
        for fn, first, count in functions(text):
            if count > MAX_FN:
                problems.append(f"{name}:{first}: fn {fn} is {count} lines (at most {MAX_FN})")
            longest_fn = max(longest_fn, (f"{name}:{first} fn {fn}", count), key=lambda f: f[1])
    for problem in problems:
        print(problem)
    if "--longest" in sys.argv[1:]:
        print(f"longest file: {longest_file[0]} ({longest_file[1]} lines); "
              f"longest function: {longest_fn[0]} ({longest_fn[1]} lines)")
    if problems:
        print(f"code_shape: {len(problems)} over", file=sys.stderr)
        return 1
    print(f"code_shape: no file of src/ over {MAX_FILE} lines, no function over {MAX_FN} (exempt files say why)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
