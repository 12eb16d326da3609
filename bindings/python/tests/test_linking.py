"""Multi-device through the Python package: a desktop shows a link code, the phone
links it (after showing what the code asks for), both of Alice's devices get Bob's
messages, app state (archive, contact name) syncs, and unlinking works; a malformed
code is a typed error."""

from __future__ import annotations

import asyncio
import os

import pytest

import pawl
from pawl import ClientEvent, ErrorCode, EventQueue, PawlClient, PawlError

ALICE = "+4915100000061"
BOB = "+4915100000062"


def test_a_desktop_is_linked_by_its_code(relay, tmp_path):
    async def scenario():
        phone = PawlClient.open(str(tmp_path / "phone.db"), os.urandom(32), relay.url, relay.pin)
        bob = PawlClient.open(str(tmp_path / "bob.db"), os.urandom(32), relay.url, relay.pin)
        desktop = PawlClient.open(str(tmp_path / "desktop.db"), os.urandom(32), relay.url, relay.pin)
        p_ev, b_ev, d_ev = EventQueue(), EventQueue(), EventQueue()
        phone.set_listener(p_ev)
        bob.set_listener(b_ev)
        desktop.set_listener(d_ev)
        for c, phone_no, ev in ((phone, ALICE, p_ev), (bob, BOB, b_ev)):
            await c.request_code(phone_no)
            await c.verify_code(phone_no, relay.code_for(phone_no))
            c.start()
            await ev.wait_for(lambda e: isinstance(e, ClientEvent.PRE_KEYS_UPLOADED))
        await phone.send_text(BOB, "before the desktop")
        await b_ev.wait_for(lambda e: isinstance(e, ClientEvent.MESSAGE))

        linking = await desktop.start_linking()
        code = await linking.next_code()
        assert code.code.startswith("pawl-link:1,")
        assert code.qr_png[:8] == b"\x89PNG\r\n\x1a\n"
        assert code.qr_svg.lstrip().startswith("<?xml") or "<svg" in code.qr_svg
        request = pawl.parse_link_code(code.code)
        assert request.identity_key == desktop.identity_key()
        device_id = await phone.link_device(code.code)
        assert device_id == 2
        assert await linking.finished() == pawl.Address(name=ALICE, device_id=2)
        desktop.start()
        await d_ev.wait_for(lambda e: isinstance(e, ClientEvent.CONNECTED))
        linked = await p_ev.wait_for(lambda e: isinstance(e, ClientEvent.DEVICE_LINKED))
        assert linked.device_id == 2
        # History: the one message the phone sent before, with progress.
        h = await d_ev.wait_for(lambda e: isinstance(e, ClientEvent.HISTORY_SYNCED))
        assert (h.chunks_done, h.chunks, h.messages) == (1, 1, 1)
        assert [m.text for m in desktop.messages(BOB, 10)] == ["before the desktop"]

        await bob.send_text(ALICE, "to both of alice's devices")
        for ev in (p_ev, d_ev):
            got = await ev.wait_for(
                lambda e: isinstance(e, ClientEvent.MESSAGE)
                and e.message.text == "to both of alice's devices"
            )
            assert got.message.sender == BOB
        assert phone.own_devices() == [2]

        await desktop.set_archived(BOB, True)
        await desktop.set_contact_name(BOB, "Bob")
        for _ in range(200):
            await phone.sync_app_state()
            if phone.chat_state(BOB).archived and phone.contact_name(BOB) == "Bob":
                break
            await asyncio.sleep(0.05)
        assert phone.chat_state(BOB).archived
        assert phone.contact_name(BOB) == "Bob"

        await phone.unlink_device(2)
        assert phone.own_devices() == []

        with pytest.raises(PawlError) as err:
            pawl.parse_link_code("https://example.invalid/not-a-code")
        assert err.value.code == ErrorCode.INVALID_ARGUMENT
        with pytest.raises(PawlError) as err:
            await phone.link_device("pawl-link:1,AAAA")
        assert err.value.code == ErrorCode.INVALID_ARGUMENT
        for c in (phone, bob, desktop):
            await c.shutdown()

    asyncio.run(scenario())
