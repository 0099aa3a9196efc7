"""What the interop tests share: the Rust server on a free port, and buf."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER = Path(os.environ.get("SEARCH_SERVER", ROOT / "target" / "debug" / "server"))
BUF = os.environ.get("BUF") or shutil.which("buf") or str(Path.home() / ".local" / "bin" / "buf")


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
