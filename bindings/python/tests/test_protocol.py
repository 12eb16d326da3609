"""The low-level protocol API (apps with their own transport): bundle, session,
encrypt, decrypt, typed errors."""

from __future__ import annotations

import os

import pytest

from pawl import Ciphertext, ErrorCode, PawlError, PawlProtocol


def test_sessions_over_an_app_transport(tmp_path):
    alice = PawlProtocol.open(str(tmp_path / "a.db"), os.urandom(32))
    bob = PawlProtocol.open(str(tmp_path / "b.db"), os.urandom(32))
    bundle = bob.prekey_bundle(1, 7)  # what Bob publishes (device 1, one-time prekey 7)
    assert bundle.identity_key == bob.identity_key() and len(bundle.identity_key) == 33
    alice.process_prekey_bundle("bob", 1, bundle)

    first = alice.encrypt("bob", 1, b"hello")
    assert first.message_type == 3  # PreKeySignalMessage until Bob answers
    assert bob.decrypt("alice", 1, first) == b"hello"
    with pytest.raises(PawlError.DuplicateMessage) as err:
        bob.decrypt("alice", 1, first)  # a replay
    assert err.value.code == ErrorCode.DUPLICATE_MESSAGE

    answer = bob.encrypt("alice", 1, b"hi alice")
    assert answer.message_type == 2
    assert alice.decrypt("bob", 1, answer) == b"hi alice"
    for i in range(20):
        m = alice.encrypt("bob", 1, f"n{i}".encode())
        assert bob.decrypt("alice", 1, m) == f"n{i}".encode()


def test_protocol_errors_are_typed(tmp_path):
    p = PawlProtocol.open(str(tmp_path / "p.db"), os.urandom(32))
    with pytest.raises(PawlError.NoSession):
        p.encrypt("nobody", 1, b"x")
    with pytest.raises(PawlError.InvalidArgument):
        p.decrypt("nobody", 1, Ciphertext(message_type=9, body=b""))
    with pytest.raises(PawlError.Protocol):
        p.decrypt("nobody", 1, Ciphertext(message_type=2, body=b"\x33garbage"))
    bundle = p.prekey_bundle(1, None)
    bundle.signed_prekey = b"\x05" + b"\x01" * 31  # 32 bytes: not a key
    with pytest.raises(PawlError.InvalidArgument):
        p.process_prekey_bundle("me", 2, bundle)
    with pytest.raises(PawlError.InvalidArgument):
        PawlProtocol.open(str(tmp_path / "q.db"), b"short")
