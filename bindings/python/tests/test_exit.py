"""The interpreter exits cleanly while clients are still running and calling their
listeners (Pawl stops calling into Python at exit; without that, a Pawl thread calling
in during finalization aborted the process about one run in three)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, os, sys, tempfile, pawl
    d = tempfile.mkdtemp()
    class Listener(pawl.EventListener):
        def on_event(self, event):
            pass
    clients = []
    for i in range(6):
        # Unregistered, so the connection task reports Disconnected and retries.
        c = pawl.PawlClient.open(f"{d}/{i}.db", os.urandom(32), "ws://127.0.0.1:9/v1/ws", None)
        c.set_listener(Listener())
        c.start()
        clients.append(c)
    asyncio.run(asyncio.sleep(0.2))
    print("exiting")
    """
)


def test_exit_with_live_clients_and_listeners_is_clean():
    for _ in range(8):
        r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        assert r.stdout.strip() == b"exiting"
