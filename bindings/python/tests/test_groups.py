"""Groups through the Python package: Alice creates a group with Bob and Carol, each
gets the update and the messages in the group's chat, only the admin may rename it,
and after Carol is removed she gets nothing sent to the group."""

from __future__ import annotations

import asyncio
import os

import pytest

from pawl import ClientEvent, ErrorCode, EventQueue, PawlClient, PawlError

ALICE = "+4915100000071"
BOB = "+4915100000072"
CAROL = "+4915100000073"


def test_a_group_with_a_removal(relay, tmp_path):
    async def scenario():
        users = {}
        for name, phone in (("alice", ALICE), ("bob", BOB), ("carol", CAROL)):
            c = PawlClient.open(str(tmp_path / f"{name}.db"), os.urandom(32), relay.url, relay.pin)
            ev = EventQueue()
            c.set_listener(ev)
            await c.request_code(phone)
            await c.verify_code(phone, relay.code_for(phone))
            c.start()
            await ev.wait_for(lambda e: isinstance(e, ClientEvent.PRE_KEYS_UPLOADED))
            users[name] = (c, ev)
        (alice, a_ev), (bob, b_ev), (carol, c_ev) = users["alice"], users["bob"], users["carol"]

        g = await alice.create_group("Climbing", [BOB, CAROL])
        assert len(g.id) == 16
        assert g.members == sorted([ALICE, BOB, CAROL])
        assert g.admins == [ALICE]
        assert g.is_member
        for c, ev in ((bob, b_ev), (carol, c_ev)):
            u = await ev.wait_for(lambda e: isinstance(e, ClientEvent.GROUP_UPDATED))
            assert u.group_id == g.id
            got = c.group(g.id)
            assert (got.name, got.version, got.chat_id) == ("Climbing", 1, u.chat_id)
            assert [x.id for x in c.groups()] == [g.id]

        await alice.send_group_text(g.id, "hello group")
        for c, ev in ((bob, b_ev), (carol, c_ev)):
            m = await ev.wait_for(lambda e: isinstance(e, ClientEvent.MESSAGE))
            assert (m.message.text, m.message.sender) == ("hello group", ALICE)
            assert m.message.chat_id == c.group(g.id).chat_id
            assert [x.text for x in c.messages(g.peer, 10)] == ["hello group"]

        # Only an admin renames: Bob's attempt is refused before anything is sent.
        with pytest.raises(PawlError) as err:
            await bob.rename_group(g.id, "Bob's")
        assert err.value.code == ErrorCode.INVALID_ARGUMENT

        g2 = await alice.remove_group_members(g.id, [CAROL])
        assert g2.members == sorted([ALICE, BOB]) and g2.version == 2
        u = await c_ev.wait_for(lambda e: isinstance(e, ClientEvent.GROUP_UPDATED))
        assert not carol.group(u.group_id).is_member
        await b_ev.wait_for(lambda e: isinstance(e, ClientEvent.GROUP_UPDATED))
        await alice.send_group_text(g.id, "without carol")
        m = await b_ev.wait_for(lambda e: isinstance(e, ClientEvent.MESSAGE))
        assert m.message.text == "without carol"
        await asyncio.sleep(0.3)
        assert [x.text for x in carol.messages(g.peer, 10)] == ["hello group"]
        with pytest.raises(PawlError) as err:
            await carol.send_group_text(g.id, "still here?")
        assert err.value.code == ErrorCode.INVALID_ARGUMENT
        for c, _ in users.values():
            await c.shutdown()

    asyncio.run(scenario())
