#!/usr/bin/env python3
"""Checks that every sample output in the documents is what the programs print.

Reads README.md and docs/*.md. A *sample* is a fenced code block right after
an HTML comment that opens with `<!-- sample` (the comment may span lines).
The block is a transcript: each line that starts with `$ ` is a command, and
the lines after it, up to the next command, are what it printed, standard
output and standard error together as a terminal shows them (`$ # ...` is a
remark, not run). The script runs every command with `bash -c` in a scratch
folder (in the repository's `target/`, so that `cargo run --example` finds
the project), with the `client` and `server` that cargo built first on PATH,
against servers it starts on free ports of 127.0.0.1, and fails when an
output differs from the block's.

The comment's lines say what the sample needs, one directive a line; a
comment on one line may hold several, separated by `;`. All are optional:

    server [ARGS]        start `server ARGS` before the first command; its
                         `--listen HOST:PORT` (default localhost:8100) names
                         it, and it listens on a free port instead
    at N: ACTION         before command N (1 is the first) ...
    at N+DUR: ACTION     ... or DUR (`1s`, `500ms`) after command N started:
                         `stop PORT` (SIGTERM, then wait for it to exit),
                         `kill PORT` (SIGKILL), `freeze PORT` (SIGSTOP),
                         `thaw PORT` (SIGCONT), `start PORT` (again, with
                         its flags), `start ARGS` (a server not started yet)
    above                first run the ```sh block just above the comment,
                         line by line (`\\` continues a line, a here-document
                         goes with its command); its lines that start with
                         `server` start servers
    run CMD              first run CMD in the scratch folder (files, keys)
    command CMD          a command the block does not show: the block is its
                         output (several: their outputs, one after another)
    shows server PORT    the block is that server's output instead, from its
                         start to its stop (the commands run, then it stops)
    compare MODE         `exact` (the default): line for line, a line `...`
                         standing for any lines; `unordered`: the same lines
                         in any order (`...`: others may come too); `set`:
                         the same distinct lines (`...`: others too), for a
                         channel's story whose repeats and order vary;
                         `within`: the block's lines appear in this order
                         among the output's
    vary numbers         every number may differ (a benchmark's figures)
    ignore REGEX         what matches REGEX is left out of every line, on
                         both sides (a part that comes and goes from run to
                         run, such as a load-shedding count)
    timeout DUR          the longest one command may take (default 60s)

Ports: every `localhost:PORT`, `127.0.0.1:PORT` or `[::1]:PORT` (PORT of
1024 or more) in the commands and the comment is a port of the sample; each
is swapped for a free one when run, and back in what was printed. A
command with no `-t` reaches `localhost:8100`, the client's default
(`SEARCH_TARGET` is set to its free port). What always varies is ignored on
both sides: timestamps, durations (`748.847µs`, `2s`), HTTP dates, trace
ids, and the ports that are not the sample's (a peer's). Nothing of the
environment's `SEARCH_*`, `OTEL_*` or `RUST_LOG` reaches the programs; the
commands see `$SERVER_PID` (the first server's process id) and `$REPO` (the
repository, for `cargo run --manifest-path "$REPO/Cargo.toml"`).

    python3 tools/check_samples.py                   # every sample; exit 1 on a difference
    python3 tools/check_samples.py docs/guide.md:97  # a file's samples, or the one whose fence is that line
    python3 tools/check_samples.py --update          # write what was printed into the blocks
    python3 tools/check_samples.py --list            # the samples, each with its fence's line

`--update` rewrites a block that differs with what its commands printed
(the sample's ports put back, nothing else normalised), unless it has a
`...` line or compares `within`: such a block is a choice of lines, and is
printed for a person to edit. Builds the binaries first (`cargo build
--bins`) and takes them from cargo's target directory (`cargo metadata`, so
`CARGO_TARGET_DIR` is honoured); `--no-build` uses them as they are. Needs
bash, curl, openssl and buf (`tools/install.sh`) on PATH.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")
MARKER_START = re.compile(r"^<!--\s*sample\b(.*)$")
ADDRESS = re.compile(r"(localhost|127\.0\.0\.1|\[::1\]):(\d{2,5})\b")
DEFAULT_PORT = 8100
DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")
# What varies from run to run, on both sides of a comparison.
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")
HTTP_DATE = re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT")
TIME_SPAN = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:ns|µs|us|ms|s|m|h)(?![\w])")
TRACE_ID = re.compile(r"\b[0-9a-f]{32}\b")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
KEPT_ADDRESS = re.compile(r"(?:localhost|127\.0\.0\.1|\[::1\]):(?:\d+|<port>)")
BAR = re.compile(r"■+")
# How every program runs: no input, its output and its errors in one pipe,
# in the order written, as a terminal shows them.
PIPED = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


@dataclass
class Command:
    """A command of a transcript and the output the document shows for it."""

    text: str
    shown: list[str]
    line: int  # the document's line of `$ ...`


@dataclass
class Sample:
    """One marked block of a document."""

    doc: Path
    line: int  # the fence's opening line, 1-based
    directives: list[str]
    body: list[str]  # the block's lines, fences excluded
    body_start: int  # index of the block's first line in the document's lines
    above: list[str] = field(default_factory=list)  # the sh block above, joined lines
    commands: list[Command] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    servers: list[str] = field(default_factory=list)
    actions: list[tuple[int, float | None, str, str]] = field(default_factory=list)
    shows: int | None = None
    compare: str = "exact"
    numbers: bool = False
    ignored: list[re.Pattern] = field(default_factory=list)
    timeout: float = 60.0

    @property
    def name(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def seconds(text: str) -> float:
    match = DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (write 500ms, 2s or 1m)")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "ms" else value * 60 if unit == "m" else value


HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?\s*$")


def join_continued(lines: list[str]) -> list[str]:
    """Shell lines with their `\\` continuations joined, a here-document
    (`<<'EOF'` up to `EOF`) kept with its command, comments and blanks
    dropped."""
    joined, pending, heredoc = [], "", None
    for raw in lines:
        line = raw.rstrip()
        if heredoc is not None:
            joined[-1] += "\n" + line
            if line == heredoc:
                heredoc = None
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line = (pending + line.strip()).strip()
        pending = ""
        if line and not line.startswith("#"):
            joined.append(line)
            opened = HEREDOC.search(line)
            heredoc = opened.group(1) if opened else None
    return joined


def find_samples(doc: Path) -> list[Sample]:
    """The marked blocks of a document, parsed."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    samples, last_sh, i = [], [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith(fence.group(1))), len(lines))
            if fence.group(2).strip() in ("sh", "bash", "shell"):
                last_sh = join_continued(lines[i + 1 : end])
            i = end + 1
            continue
        marker = MARKER_START.match(lines[i].strip())
        if not marker:
            i += 1
            continue
        text, j = marker.group(1), i
        while "-->" not in text:
            j += 1
            if j >= len(lines):
                raise SystemExit(f"{doc.relative_to(ROOT)}:{i + 1}: a sample comment that never closes")
            text += "\n" + lines[j]
        text = text[: text.index("-->")].lstrip(":")
        rows = text.splitlines() if "\n" in text else text.split(";")
        directives = [row.strip() for row in rows if row.strip()]
        k = j + 1
        fence = FENCE.match(lines[k]) if k < len(lines) else None
        if not fence:
            raise SystemExit(f"{doc.relative_to(ROOT)}:{i + 1}: a sample comment not followed at once by a fenced block")
        end = next((m for m in range(k + 1, len(lines)) if lines[m].startswith(fence.group(1))), None)
        if end is None:
            raise SystemExit(f"{doc.relative_to(ROOT)}:{k + 1}: a fenced block that never closes")
        sample = Sample(doc, k + 1, directives, lines[k + 1 : end], k + 1, above=last_sh)
        parse(sample)
        samples.append(sample)
        i = end + 1
    return samples


def parse(sample: Sample) -> None:
    """Reads a sample's directives and its transcript; exits on a mistake in them."""

    def wrong(why: str):
        raise SystemExit(f"{sample.name}: {why}")

    for directive in sample.directives:
        word, _, rest = directive.partition(" ")
        rest = rest.strip()
        if word == "server":
            sample.servers.append(rest)
        elif word == "at":
            when, _, action = rest.partition(":")
            step, _, after = when.strip().partition("+")
            verb, _, what = action.strip().partition(" ")
            if not step.isdigit() or verb not in ("stop", "kill", "freeze", "thaw", "start") or not what:
                wrong(f"cannot read `at {rest}` (at N: stop PORT, at N+2s: start PORT, ...)")
            sample.actions.append((int(step), seconds(after) if after else None, verb, what.strip()))
        elif word == "above":
            if not sample.above:
                wrong("`above`, but no ```sh block above")
        elif word == "run":
            sample.runs.append(rest)
        elif word == "command":
            sample.hidden.append(rest)
        elif word == "shows" and rest.startswith("server "):
            sample.shows = int(rest.split()[1])
        elif word == "compare" and rest in ("exact", "unordered", "set", "within"):
            sample.compare = rest
        elif directive == "vary numbers":
            sample.numbers = True
        elif word == "ignore":
            sample.ignored.append(re.compile(rest))
        elif word == "timeout":
            sample.timeout = seconds(rest)
        else:
            wrong(f"unknown directive `{directive}`")
    if "above" not in sample.directives:
        sample.above = []
    if sample.hidden or sample.shows is not None:
        return
    current = None
    for offset, line in enumerate(sample.body):
        if line.startswith("$ "):
            current = Command(line[2:].strip(), [], sample.body_start + offset + 1)
            sample.commands.append(current)
        elif current is None:
            wrong("the block's first line is not a command (`$ ...`); or say `command CMD` in the comment")
        else:
            current.shown.append(line)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A `server` process on a free port, its output collected."""

    def __init__(self, args: list[str], host: str, port: int, env: dict, cwd: Path, bin_dir: Path):
        self.args, self.host, self.port = args, host, port
        self.env, self.cwd, self.bin_dir = env, cwd, bin_dir
        self.output: list[str] = []
        self.process: subprocess.Popen | None = None
        self.reader: threading.Thread | None = None

    def start(self) -> None:
        listen = f"{self.host}:{self.port}"
        argv = [str(self.bin_dir / "server"), "--listen", listen, *self.args]
        self.process = subprocess.Popen(argv, cwd=self.cwd, env=self.env, **PIPED)
        ready = threading.Event()

        def read(stream):
            for line in stream:
                line = line.rstrip("\n")
                self.output.append(line)
                if re.fullmatch(r"\S+:\d+", line):
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=read, args=(self.process.stdout,), daemon=True)
        self.reader.start()
        if not ready.wait(START_TIMEOUT) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError(f"server {' '.join(self.args)} did not start: {self.output[-5:]}")

    def stop(self, how: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(how)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.reader:
            self.reader.join(5)  # what the process wrote last


def split_listen(args: list[str]) -> tuple[list[str], str, int]:
    """The flags without `--listen`/`-l`, and the host and port it named."""
    rest, host, port, i = [], "localhost", DEFAULT_PORT, 0
    while i < len(args):
        arg = args[i]
        value = None
        if arg in ("--listen", "-l") and i + 1 < len(args):
            value, i = args[i + 1], i + 2
        elif arg.startswith("--listen="):
            value, i = arg.split("=", 1)[1], i + 1
        else:
            rest.append(arg)
            i += 1
            continue
        host, _, number = value.rpartition(":")
        port = int(number)
    return rest, host, port


class Run:
    """One sample's servers, ports and scratch folder, while it runs."""

    def __init__(self, sample: Sample, bin_dir: Path, scratch: Path):
        self.sample, self.bin_dir, self.scratch = sample, bin_dir, scratch
        self.ports: dict[int, int] = {}  # the document's port -> the one used
        self.servers: dict[int, Server] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SEARCH_", "OTEL_", "RUST_LOG"))}
        self.env["PATH"] = f"{bin_dir}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["NO_COLOR"] = "1"
        # curl shows no progress meter at a terminal; here its output is a pipe.
        (scratch / ".curlrc").write_text("no-progress-meter\n")
        self.env["CURL_HOME"] = str(scratch)
        self.env["REPO"] = str(ROOT)
        self.env["CARGO_TERM_COLOR"] = "never"

    def doc_ports(self) -> set[int]:
        texts = [c.text for c in self.sample.commands] + self.sample.directives + self.sample.above
        texts += self.sample.hidden + self.sample.runs
        ports = {int(m.group(2)) for text in texts for m in ADDRESS.finditer(text)}
        return {port for port in ports if port >= 1024} | {DEFAULT_PORT}

    def add_server(self, spec: str) -> Server:
        args, host, doc_port = split_listen(shlex.split(spec))
        args = [self.swap(arg) for arg in args]
        port = self.ports.setdefault(doc_port, free_port())
        host = "localhost" if host == "localhost" else "127.0.0.1"
        server = Server(args, host, port, self.env, self.scratch, self.bin_dir)
        self.servers[doc_port] = server
        server.start()
        self.env.setdefault("SERVER_PID", str(server.process.pid))
        return server

    def swap(self, text: str) -> str:
        """A command with the document's ports made the free ones."""

        def one(match):
            port = int(match.group(2))
            return f"{match.group(1)}:{self.ports[port]}" if port in self.ports else match.group(0)

        return ADDRESS.sub(one, text)

    def swap_back(self, text: str) -> str:
        """What was printed, with the document's ports again (a table's columns kept)."""
        back = {used: doc for doc, used in self.ports.items()}

        def one(match):
            port = int(match.group(2))
            if port not in back:
                return match.group(0)
            gap = match.group(3)
            if len(gap) >= 2:
                gap += " " * (len(str(port)) - len(str(back[port])))
            return f"{match.group(1)}:{back[port]}{gap}"

        return re.sub(ADDRESS.pattern + r"( *)", one, text)

    def act(self, verb: str, what: str) -> None:
        if verb == "start" and not what.isdigit():
            self.add_server(what)
            return
        server = self.servers.get(int(what))
        if server is None:
            raise RuntimeError(f"`{verb} {what}`: no server on port {what} in this sample")
        if verb == "start":
            server.start()
        elif verb in ("freeze", "thaw"):
            server.process.send_signal(signal.SIGSTOP if verb == "freeze" else signal.SIGCONT)
        else:
            server.stop(signal.SIGTERM if verb == "stop" else signal.SIGKILL)

    def shell(self, command: str) -> str:
        try:
            done = subprocess.run(
                ["bash", "-c", command], cwd=self.scratch, env=self.env, timeout=self.sample.timeout, **PIPED
            )
        except subprocess.TimeoutExpired as timeout:
            out = timeout.output or ""
            out = out.decode() if isinstance(out, bytes) else out
            return out + f"\n[check_samples: timed out after {self.sample.timeout:g}s]\n"
        return done.stdout

    def execute(self) -> list[list[str]]:
        """Runs the sample; the output of each command (or of the block), ports put back."""
        sample = self.sample
        for port in sorted(self.doc_ports()):
            self.ports.setdefault(port, free_port())
        for line in sample.above:
            if line.startswith("server"):
                self.add_server(line[len("server") :].strip())
            else:
                self.shell(self.swap(line))
        for spec in sample.servers:
            self.add_server(spec)
        for run in sample.runs:
            self.shell(self.swap(run))
        self.env["SEARCH_TARGET"] = f"localhost:{self.ports[DEFAULT_PORT]}"
        commands = [c.text for c in sample.commands] or sample.hidden
        outputs = []
        for number, command in enumerate(commands, 1):
            timers = []
            for step, after, verb, what in sample.actions:
                if step != number:
                    continue
                if after is None:
                    self.act(verb, what)
                else:
                    timer = threading.Timer(after, self.act, (verb, what))
                    timer.start()
                    timers.append(timer)
            out = "" if command.startswith("#") else self.shell(self.swap(command))
            for timer in timers:
                timer.join()
            outputs.append(self.swap_back(out).splitlines())
        if sample.shows is not None:
            server = self.servers[sample.shows]
            server.stop()
            return [[self.swap_back(line) for line in server.output]]
        if sample.hidden:
            return [[line for out in outputs for line in out]]
        return outputs

    def close(self) -> None:
        for server in self.servers.values():
            if server.process and server.process.poll() is None:
                server.process.send_signal(signal.SIGCONT)
            server.stop(signal.SIGKILL)


def normalise(line: str, sample: Sample, ports: set[int]) -> str:
    """A line with what varies from run to run made the same."""
    for pattern in sample.ignored:
        line = pattern.sub("", line)
    line = TIMESTAMP.sub("<time>", line)
    line = HTTP_DATE.sub("<date>", line)
    line = TRACE_ID.sub("<trace-id>", line)

    def port(match):
        return match.group(0) if int(match.group(2)) in ports else f"{match.group(1)}:<port>"

    line = ADDRESS.sub(port, line)
    line = TIME_SPAN.sub("<duration>", line)
    if sample.numbers:
        # Every number but the addresses', which say which server.
        kept: list[str] = []
        line = KEPT_ADDRESS.sub(lambda m: kept.append(m.group(0)) or chr(0xE000 + len(kept) - 1), line)
        line = re.sub(r"\s+", " ", NUMBER.sub("<n>", BAR.sub("", line)))
        line = re.sub("[\uE000-\uF8FF]", lambda m: kept[ord(m.group(0)) - 0xE000], line)
    return line.rstrip()


def matches(shown: list[str], printed: list[str], mode: str) -> bool:
    """Whether the printed lines are what the block shows, as `mode` compares them."""
    ellipsis = "..." in shown
    wanted = [line for line in shown if line != "..."]
    if mode == "unordered":
        if not ellipsis:
            return sorted(wanted) == sorted(printed)
        pool = list(printed)
        for line in wanted:
            if line not in pool:
                return False
            pool.remove(line)
        return True
    if mode == "set":
        return set(wanted) == set(printed) or (ellipsis and set(wanted) <= set(printed))
    if mode == "within":
        rest = iter(printed)
        return all(any(line == got for got in rest) for line in wanted)
    return exact(shown, printed)


def exact(shown: list[str], printed: list[str]) -> bool:
    """Line for line, a `...` line standing for any number of lines."""
    if not shown:
        return not printed
    if shown[0] == "...":
        return any(exact(shown[1:], printed[i:]) for i in range(len(printed) + 1))
    return bool(printed) and shown[0] == printed[0] and exact(shown[1:], printed[1:])


def compare(sample: Sample, outputs: list[list[str]], ports: set[int]) -> list[str]:
    """The differences between the block and what was printed, as diff lines."""
    if sample.commands:
        pairs = [(c.text, c.shown, out) for c, out in zip(sample.commands, outputs)]
    else:
        what = f"server {sample.shows}'s output" if sample.shows is not None else "; ".join(sample.hidden)
        pairs = [(what, sample.body, outputs[0])]
    problems = []
    for command, shown, printed in pairs:
        want = [normalise(line, sample, ports) for line in shown]
        got = [normalise(line, sample, ports) for line in printed]
        if not matches(want, got, sample.compare):
            problems.append(f"$ {command}  (compare {sample.compare})")
            problems += list(difflib.unified_diff(want, got, "the document", "printed now", lineterm="", n=2))[2:]
    return problems


def rewritten(sample: Sample, outputs: list[list[str]]) -> list[str] | None:
    """The block's new lines with what was printed, or None when a person must edit it."""
    if "..." in sample.body or sample.compare == "within":
        return None
    if sample.commands:
        return [line for c, out in zip(sample.commands, outputs) for line in [f"$ {c.text}", *out]]
    return outputs[0]


def target_dir() -> Path:
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(json.loads(meta.stdout)["target_directory"])


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def main() -> int:
    flags = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    flags.add_argument("only", nargs="*", help="FILE.md or FILE.md:LINE: only these samples")
    flags.add_argument("--update", action="store_true", help="write what was printed into the blocks")
    flags.add_argument("--list", action="store_true", help="list the samples and stop")
    flags.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    args = flags.parse_args()

    samples = [sample for doc in documents() for sample in find_samples(doc)]
    if args.only:
        wanted = []
        for spec in args.only:
            path, _, line = spec.partition(":")
            path = (ROOT / path).resolve() if not Path(path).is_absolute() else Path(path)
            wanted.append((path, int(line) if line else None))
        samples = [s for s in samples if any(s.doc == p and (n is None or s.line == n) for p, n in wanted)]
        if not samples:
            print("check_samples: no sample there", file=sys.stderr)
            return 1
    if args.list:
        for sample in samples:
            first = sample.commands[0].text if sample.commands else (sample.hidden or [f"server {sample.shows}"])[0]
            print(f"{sample.name}: {first}")
        return 0
    if not args.no_build:
        subprocess.run(["cargo", "build", "--locked", "--quiet", "--bins"], cwd=ROOT, check=True)
    bin_dir = target_dir() / "debug"

    failed, edits = [], {}
    for sample in samples:
        started = time.monotonic()
        (ROOT / "target").mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="check-samples-", dir=ROOT / "target") as scratch:
            run = Run(sample, bin_dir, Path(scratch))
            try:
                outputs = run.execute()
            except RuntimeError as error:
                failed.append(sample.name)
                print(f"FAIL {sample.name}: {error}")
                continue
            finally:
                run.close()
            problems = compare(sample, outputs, set(run.ports))
        took = time.monotonic() - started
        if not problems:
            print(f"ok   {sample.name} ({took:.1f}s)")
            continue
        new = rewritten(sample, outputs) if args.update else None
        if new is not None:
            edits.setdefault(sample.doc, []).append((sample, new))
            print(f"upd  {sample.name} ({took:.1f}s)")
            continue
        failed.append(sample.name)
        print(f"FAIL {sample.name} ({took:.1f}s)")
        for problem in problems:
            print(f"     {problem}")
        if args.update:
            print("     printed (edit the block by hand):")
            for out in outputs:
                for line in out:
                    print(f"     | {line}")

    for doc, changes in edits.items():
        lines = doc.read_text(encoding="utf-8").splitlines()
        for sample, new in sorted(changes, key=lambda change: -change[0].body_start):
            lines[sample.body_start : sample.body_start + len(sample.body)] = new
        doc.write_text("\n".join(lines) + "\n", encoding="utf-8")

    if failed:
        print(f"check_samples: {len(failed)} of {len(samples)} samples differ from what the programs print", file=sys.stderr)
        return 1
    print(f"check_samples: {len(samples)} samples, each what the programs print")
    return 0


if __name__ == "__main__":
    sys.exit(main())
