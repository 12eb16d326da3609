"""The bindings scenario: two clients over a pawl-relay process on loopback register,
exchange messages both ways, see delivered and read states, agree on the safety number,
and get typed errors for bad input."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

import pawl
from pawl import ClientEvent, ErrorCode, EventQueue, MessageStatus, PawlClient, PawlError

ALICE = "+4915100000051"
BOB = "+4915100000052"


def open_client(path, key: bytes, relay) -> PawlClient:
    return PawlClient.open(str(path), key, relay.url, relay.pin)


async def register(client: PawlClient, phone: str, relay) -> None:
    await client.request_code(phone)
    await client.verify_code(phone, relay.code_for(phone))


def test_two_clients_chat_through_a_relay(relay, tmp_path):
    async def scenario():
        alice = open_client(tmp_path / "alice.db", os.urandom(32), relay)
        bob = open_client(tmp_path / "bob.db", os.urandom(32), relay)
        a_events, b_events = EventQueue(), EventQueue()
        alice.set_listener(a_events)
        bob.set_listener(b_events)

        await register(alice, ALICE, relay)
        await register(bob, BOB, relay)
        assert alice.address() == pawl.Address(name=ALICE, device_id=1)
        alice.start()
        bob.start()
        # Connected, then the first prekeys go up (others can start sessions after that).
        for events in (a_events, b_events):
            await events.wait_for(lambda e: isinstance(e, ClientEvent.CONNECTED))
            await events.wait_for(lambda e: isinstance(e, ClientEvent.PRE_KEYS_UPLOADED))
        assert alice.is_connected()

        # Alice -> Bob: sent, received, delivered.
        mid = await alice.send_text(BOB, "hello bob")
        got = await b_events.wait_for(lambda e: isinstance(e, ClientEvent.MESSAGE))
        assert got.message.text == "hello bob"
        assert got.message.sender == ALICE
        assert not got.message.outgoing
        await a_events.wait_for(
            lambda e: isinstance(e, ClientEvent.DELIVERED) and e.message_id == mid
        )
        assert alice.message_status(mid) in (MessageStatus.DELIVERED, MessageStatus.READ)

        # Bob reads: Alice sees the read receipt.
        assert await bob.mark_read(ALICE) == 1
        read = await a_events.wait_for(
            lambda e: isinstance(e, ClientEvent.READ) and e.message_id == mid
        )
        assert read.by == pawl.Address(name=BOB, device_id=1)
        assert alice.message_status(mid) == MessageStatus.READ

        # Bob -> Alice.
        typing = bob.set_typing(ALICE, True)
        await typing
        await a_events.wait_for(lambda e: isinstance(e, ClientEvent.TYPING) and e.started)
        reply = await bob.send_text(ALICE, "and back, alice")
        got = await a_events.wait_for(lambda e: isinstance(e, ClientEvent.MESSAGE))
        assert got.message.text == "and back, alice"
        await b_events.wait_for(
            lambda e: isinstance(e, ClientEvent.DELIVERED) and e.message_id == reply
        )

        # The store: the chat newest first, search.
        chat = alice.messages(BOB, 10)
        assert [m.text for m in chat] == ["and back, alice", "hello bob"]
        assert [m.outgoing for m in chat] == [False, True]
        assert chat[1].status == MessageStatus.READ
        assert [m.text for m in bob.search("hello", 10)] == ["hello bob"]
        assert alice.message(mid).body == b"hello bob"
        assert alice.message(10**9) is None

        # The same safety number on both sides; each accepts the other's QR payload.
        a_sn = alice.safety_number(BOB)
        b_sn = bob.safety_number(ALICE)
        assert a_sn.digits == b_sn.digits
        assert len(a_sn.digits) == 60 and a_sn.digits.isdigit()
        assert a_sn.qr_png.startswith(b"\x89PNG\r\n\x1a\n")
        assert "<svg" in a_sn.qr_svg
        assert alice.compare_scanned(BOB, b_sn.scannable) is True
        assert bob.compare_scanned(ALICE, a_sn.scannable) is True
        assert alice.compare_scanned(BOB, a_sn.scannable) is False  # our own code

        # A malformed scanned QR payload is a typed error, not a crash.
        with pytest.raises(PawlError.InvalidArgument) as err:
            alice.compare_scanned(BOB, b"\x00not a fingerprint")
        assert err.value.code == ErrorCode.INVALID_ARGUMENT

        # An attachment: encrypted while uploaded, sent as a media message, downloaded,
        # checked and decrypted by Bob into a file.
        data = bytes((i * 2654435761 >> 13) & 0xFF for i in range(300_000))
        src = tmp_path / "picture.bin"
        src.write_bytes(data)
        att = await alice.upload_attachment(pawl.MediaKind.IMAGE, str(src))
        assert att.kind == pawl.MediaKind.IMAGE
        assert att.file_length == len(data)
        assert att.file_sha256 == hashlib.sha256(data).digest()
        assert len(att.media_key) == 32
        media = pawl.MediaMessage(
            attachment=att,
            mime_type="image/png",
            file_name="picture.png",
            caption="a picture",
            thumbnail=b"\x89PNG thumb",
            width=640,
            height=480,
        )
        media_id = await alice.send_media(BOB, media)
        got = await b_events.wait_for(
            lambda e: isinstance(e, ClientEvent.MESSAGE) and e.message.media is not None
        )
        assert got.message.media == media
        assert got.message.text == "a picture"
        assert bob.messages(ALICE, 1)[0].media == media
        assert alice.message(media_id).media == media
        dst = tmp_path / "received.bin"
        await bob.download_attachment(got.message.media.attachment, str(dst))
        assert dst.read_bytes() == data
        # The wrong key: a typed error, and nothing on disk.
        wrong = pawl.Attachment(
            kind=att.kind,
            blob_id=att.blob_id,
            media_key=bytes(32),
            file_sha256=att.file_sha256,
            file_enc_sha256=att.file_enc_sha256,
            file_length=att.file_length,
        )
        bad = tmp_path / "bad.bin"
        with pytest.raises(PawlError.Protocol) as err:
            await bob.download_attachment(wrong, str(bad))
        assert err.value.code == ErrorCode.PROTOCOL
        assert not bad.exists() and not (tmp_path / "bad.bin.part").exists()

        await alice.shutdown()
        await bob.shutdown()

    asyncio.run(scenario())


def test_wrong_database_key_is_a_typed_error(relay, tmp_path):
    db = tmp_path / "keyed.db"
    client = open_client(db, b"\x01" * 32, relay)
    del client
    with pytest.raises(PawlError) as err:
        open_client(db, b"\x02" * 32, relay)
    assert isinstance(err.value, PawlError.WrongDatabaseKey)
    assert err.value.code == ErrorCode.WRONG_DATABASE_KEY == 2
    # The right key still opens it.
    open_client(db, b"\x01" * 32, relay)


def test_bad_arguments_are_typed_errors(relay, tmp_path):
    with pytest.raises(PawlError.InvalidArgument) as err:
        open_client(tmp_path / "short.db", b"\x01" * 31, relay)
    assert err.value.code == ErrorCode.INVALID_ARGUMENT
    with pytest.raises(PawlError.InvalidArgument):
        PawlClient.open(str(tmp_path / "pin.db"), b"\x01" * 32, relay.url, b"short pin")

    client = open_client(tmp_path / "fresh.db", os.urandom(32), relay)
    with pytest.raises(PawlError.NotRegistered) as err:
        client.address()
    assert err.value.code == ErrorCode.NOT_REGISTERED
    with pytest.raises(PawlError.InvalidArgument):
        client.message_status(12345)


def test_relay_refusal_carries_the_relay_code(relay, tmp_path):
    phone = "+4915100000053"

    async def scenario():
        client = open_client(tmp_path / "carol.db", os.urandom(32), relay)
        await client.request_code(phone)
        right = relay.code_for(phone)
        wrong = "000000" if right != "000000" else "111111"
        with pytest.raises(PawlError.Relay) as err:
            await client.verify_code(phone, wrong)
        assert err.value.code == ErrorCode.RELAY
        assert err.value.relay_code  # the relay's own code, e.g. "BadCode"

    asyncio.run(scenario())


def test_wrong_pin_is_a_tls_error(relay, tmp_path):
    async def scenario():
        client = PawlClient.open(str(tmp_path / "pin.db"), os.urandom(32), relay.url, b"\x00" * 32)
        with pytest.raises(PawlError.Tls) as err:
            await client.request_code("+4915100000054")
        assert err.value.code == ErrorCode.TLS

    asyncio.run(scenario())


def test_version_and_pin_helpers():
    assert pawl.version().count(".") == 2
    assert pawl.cert_sha256(b"abc") == __import__("hashlib").sha256(b"abc").digest()


def test_listener_exceptions_do_not_stop_events(relay, tmp_path):
    """An exception in the app's listener drops that event only; events from before
    the listener was set are kept for it."""

    class Flaky(pawl.EventListener):
        def __init__(self, queue: EventQueue) -> None:
            self.queue = queue
            self.calls = 0

        def on_event(self, event):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("listener bug")
            self.queue.on_event(event)

    async def scenario():
        # Not registered: the connection task reports Disconnected and retries.
        client = open_client(tmp_path / "flaky.db", os.urandom(32), relay)
        client.start()
        await asyncio.sleep(0.3)  # events queue up before any listener is set
        listener = Flaky(EventQueue())
        client.set_listener(listener)
        event = await listener.queue.wait_for(lambda e: isinstance(e, ClientEvent.DISCONNECTED))
        assert "not registered" in event.reason
        assert listener.calls >= 2
        await client.shutdown()

    asyncio.run(scenario())
