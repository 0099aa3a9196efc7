"""The container image, run the way a runtime runs it: the image's own
entrypoint as the image's own user, with the root file system read-only
(`docker run --read-only`, Kubernetes' readOnlyRootFilesystem), called by
the image's own client.

Needs root, Debian's buildah (vfs storage, chroot isolation) and an image
built from the Dockerfile, named by SEARCH_IMAGE; skipped without one. CI:

    cargo build --release --quiet --bins --examples
    bash deploy/image.sh search:ci
    SEARCH_IMAGE=localhost/search:ci python -m pytest deploy/test_image.py

buildah run has no --read-only: each command runs in a mount namespace of its
own where the container's root is bound onto itself read-only before buildah
enters it, and /run gets a tmpfs (buildah writes /run/.containerenv there, as
podman's --read-only gives /run a tmpfs). The server's own /proc entries then
show what it runs as and on: its uid, its capabilities, its root mount.
"""

import errno
import json
import os
import pathlib
import select
import shutil
import signal
import struct
import subprocess

import pytest

IMAGE = os.environ.get("SEARCH_IMAGE")
BUILDAH = ["buildah", "--storage-driver", "vfs"]
CLIENT = "/usr/local/bin/client"
# Bind the root (argument 1) read-only, give /run a tmpfs, then run the rest.
READ_ONLY = (
    'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"'
    ' && mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$1/run" && shift && exec "$@"'
)

pytestmark = pytest.mark.skipif(
    not IMAGE or shutil.which("buildah") is None,
    reason="needs buildah and SEARCH_IMAGE (bash deploy/image.sh builds localhost/search:ci)",
)


def buildah(*args: str) -> str:
    return subprocess.run([*BUILDAH, *args], check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


class Container:
    """A working container of the image, with the mount points a runtime
    binds in (Docker's init layer) made in its own layer, not the image's."""

    def __init__(self, image: str):
        self.name = buildah("from", "--pull=never", "--name", f"search-image-test-{os.getpid()}", image)
        self.root = pathlib.Path(buildah("mount", self.name))
        for directory in ("dev", "proc", "sys", "run", "etc"):
            (self.root / directory).mkdir(exist_ok=True)
        for file in ("etc/hosts", "etc/hostname", "etc/resolv.conf"):
            (self.root / file).touch()

    def run(self, argv: list[str], **popen) -> subprocess.Popen:
        """`argv` in the container, its root read-only."""
        command = [*BUILDAH, "run", "--isolation", "chroot", self.name, "--", *argv]
        return subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", READ_ONLY, "sh", str(self.root), *command],
            **popen,
        )

    def remove(self) -> None:
        subprocess.run([*BUILDAH, "rm", self.name], stdout=subprocess.DEVNULL)


def descendant(pid: int, comm: str) -> int | None:
    """The first process under `pid` whose command name is `comm`."""
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            children = [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
        for child in children:
            try:
                if pathlib.Path(f"/proc/{child}/comm").read_text().strip() == comm:
                    return child
            except FileNotFoundError:
                continue
            found = descendant(child, comm)
            if found:
                return found
    return None


def status(pid: int) -> dict[str, list[str]]:
    fields = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return fields


def root_mount_options(pid: int) -> list[str]:
    """The options of the mount the process sees at `/` (the last one there)."""
    options = None
    for line in pathlib.Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            options = fields[5].split(",")
    assert options is not None, f"no mount at / for process {pid}"
    return options


def image_user(config: dict, root: pathlib.Path) -> tuple[int, int]:
    """The uid and gid the image's USER names (numbers, or names in its
    /etc/passwd and /etc/group); root when it names none."""
    user, _, group = (config.get("User") or "0").partition(":")
    if not user.isdigit():
        entry = next(line for line in (root / "etc/passwd").read_text().splitlines() if line.split(":")[0] == user)
        user, primary = entry.split(":")[2:4]
        group = group or primary
    if group and not group.isdigit():
        entry = next(line for line in (root / "etc/group").read_text().splitlines() if line.split(":")[0] == group)
        group = entry.split(":")[2]
    return int(user), int(group or user)


def section_names(path: pathlib.Path) -> set[str]:
    """The section names of a 64-bit little-endian ELF file."""
    data = path.read_bytes()
    assert data[:6] == b"\x7fELF\x02\x01", f"{path} is not a 64-bit little-endian ELF file"
    (table,) = struct.unpack_from("<Q", data, 0x28)
    entry, count, names_index = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, table + i * entry) for i in range(count)]
    names = data[headers[names_index][4]:][:headers[names_index][5]]
    return {names[h[0]:names.index(b"\0", h[0])].decode() for h in headers}


def first_line(process: subprocess.Popen, seconds: float) -> str:
    ready, _, _ = select.select([process.stdout], [], [], seconds)
    assert ready, f"no line on stdout within {seconds} s"
    return process.stdout.readline().strip()


@pytest.fixture(scope="module")
def container():
    container = Container(IMAGE)
    yield container
    container.remove()


def test_the_image_serves_as_non_root_on_a_read_only_root(container, tmp_path):
    config = json.loads(buildah("inspect", "--type", "image", IMAGE))["OCIv1"]["config"]
    uid, gid = image_user(config, container.root)
    assert "--listen=0.0.0.0:8100" in config["Cmd"], "the default command listens on every interface"

    # `docker run IMAGE ARGS`: the entrypoint with ARGS in place of the command.
    log = tmp_path / "server.log"
    with log.open("w") as stderr:
        runner = container.run([*config["Entrypoint"], "--listen", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        address = first_line(runner, 30)
        assert address.startswith("127.0.0.1:"), f"the server printed {address!r}; its log:\n{log.read_text()}"
        server = descendant(runner.pid, "server")
        assert server, "no server process under buildah run"

        ids = status(server)
        assert ids["Uid"][0] != "0", f"the server runs as root (the image's USER is {config.get('User')!r})"
        assert ids["Uid"] == [str(uid)] * 4, f"the server's uids {ids['Uid']}, the image's user {uid}"
        assert ids["Gid"] == [str(gid)] * 4, f"the server's gids {ids['Gid']}, the image's group {gid}"
        assert int(ids["CapEff"][0], 16) == 0, f"the server holds capabilities {ids['CapEff']}"

        assert "ro" in root_mount_options(server), f"the server's root is mounted {root_mount_options(server)}"
        # Written from outside, as root: only the mount's own flag refuses it.
        probe = pathlib.Path(f"/proc/{server}/root/.write-probe")
        try:
            probe.write_text("the root is writable")
        except OSError as error:
            refused = errno.errorcode.get(error.errno)
        else:
            probe.unlink()
            refused = None
        assert refused == "EROFS", f"a write to the server's root: {refused or 'written'}"

        client = container.run([CLIENT, "-t", address, "Banana"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        out, err = client.communicate(timeout=60)
        assert (client.returncode, out) == (0, "status=1\n"), f"the image's client: {client.returncode} {out!r} {err!r}"

        os.kill(server, signal.SIGTERM)
        assert runner.wait(timeout=30) == 0, f"the server did not stop cleanly; its log:\n{log.read_text()}"
    finally:
        if runner.poll() is None:
            server = descendant(runner.pid, "server")
            if server:
                os.kill(server, signal.SIGKILL)
            runner.wait(timeout=30)


@pytest.mark.parametrize("binary", ["server", "client"])
def test_the_image_ships_stripped_binaries(container, binary):
    sections = section_names(container.root / "usr/local/bin" / binary)
    # .debug_gdb_scripts is loaded with the program (gdb's pretty-printers), not debug info.
    kept = sorted(name for name in sections
                  if name == ".symtab" or name.startswith(".debug_") and name != ".debug_gdb_scripts")
    assert not kept, f"{binary} ships {kept}"
    assert ".gnu_debuglink" in sections, f"{binary} does not name its debug info (objcopy --add-gnu-debuglink)"
