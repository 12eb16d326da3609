"""Fixtures: a pawl-relay process on loopback with a self-signed certificate."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import time

import pytest

import pawl

ROOT = pathlib.Path(__file__).resolve().parents[3]


def relay_binary() -> pathlib.Path:
    env = os.environ.get("PAWL_RELAY_BIN")
    if env:
        return pathlib.Path(env)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return target / "debug" / "pawl-relay"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    def __init__(self, url: str, pin: bytes, codes: pathlib.Path) -> None:
        self.url = url
        self.pin = pin
        self.codes = codes

    def code_for(self, phone: str) -> str:
        return (self.codes / f"{phone}.code").read_text().strip()


@pytest.fixture(scope="session")
def relay(tmp_path_factory):
    binary = relay_binary()
    if not binary.exists():
        pytest.fail(f"{binary} missing: build it with `cargo build -p pawl-relay` (run-tests.sh does)")
    d = tmp_path_factory.mktemp("relay")
    codes = d / "codes"
    codes.mkdir()
    pem = d / "relay.pem"
    port = free_port()
    proc = subprocess.Popen(
        [
            str(binary),
            "--db", f"sqlite:{d / 'relay.db'}",
            "--listen", f"127.0.0.1:{port}",
            "--tls-self-signed", str(pem),
            "--code-dir", str(codes),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(d / "relay.log", "wb"),
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"pawl-relay exited: {(d / 'relay.log').read_text()}")
            if pem.exists() and pem.stat().st_size > 0:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                pytest.fail("pawl-relay did not start")
            time.sleep(0.05)
        # The pin: SHA-256 of the certificate's DER encoding.
        yield Relay(f"wss://127.0.0.1:{port}/v1/ws", pawl.pin_from_pem(pem.read_text()), codes)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
