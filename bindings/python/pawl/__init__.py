"""Pawl for Python: end-to-end encrypted messaging (Signal protocol) over a Pawl relay.

The classes come from the uniffi-generated module ``pawl.pawl_ffi`` (built from the Rust
library by ``build.sh``); this file adds a few Python conveniences:

* :class:`EventQueue` turns the client's events into an asyncio queue / async iterator;
* :class:`ErrorCode` names the stable numeric codes carried by every :class:`PawlError`;
* :func:`pin_from_pem` computes the certificate pin ``PawlClient.open`` takes.

Network calls (``request_code``, ``verify_code``, ``send_text``, ``mark_read``, ...) are
coroutines: await them on an asyncio event loop. Store reads (``messages``, ``search``,
``message_status``, ``safety_number``) are plain calls.
"""

from __future__ import annotations

import asyncio
import atexit
import enum
import hashlib
import ssl
from typing import AsyncIterator, Callable, Optional

from .pawl_ffi import (  # noqa: F401  (re-exported)
    Address,
    Attachment,
    ChatMessage,
    ChatState,
    Ciphertext,
    ClientEvent,
    EventListener,
    LinkCode,
    LinkRequestInfo,
    MediaKind,
    MediaMessage,
    MessageStatus,
    PawlClient,
    PawlError,
    PawlLinking,
    PawlProtocol,
    PreKeyBundle,
    SafetyNumber,
    cert_sha256,
    detach_foreign_callbacks,
    parse_link_code,
    version,
)

# At interpreter exit Pawl's threads must stop calling into Python (listeners): a
# thread that calls in while CPython finalizes is ended with pthread_exit, which
# aborts the process. Registered at import, so it runs after the app's own atexit
# handlers (they run last-in, first-out).
atexit.register(detach_foreign_callbacks)

__all__ = [
    "Address",
    "Attachment",
    "ChatMessage",
    "ChatState",
    "Ciphertext",
    "ClientEvent",
    "ErrorCode",
    "EventListener",
    "EventQueue",
    "LinkCode",
    "LinkRequestInfo",
    "MediaKind",
    "MediaMessage",
    "MessageStatus",
    "PawlClient",
    "PawlError",
    "PawlLinking",
    "PawlProtocol",
    "PreKeyBundle",
    "SafetyNumber",
    "cert_sha256",
    "parse_link_code",
    "pin_from_pem",
    "version",
]


class ErrorCode(enum.IntEnum):
    """The stable numeric codes of :class:`PawlError` (``err.code``); never renumbered."""

    INVALID_ARGUMENT = 1
    WRONG_DATABASE_KEY = 2
    NOT_REGISTERED = 3
    NOT_CONNECTED = 4
    RELAY = 5
    TLS = 6
    CONFIG = 7
    TRANSPORT = 8
    PROTOCOL = 9
    UNTRUSTED_IDENTITY = 10
    NO_SESSION = 11
    STORE = 12
    DATABASE_BUSY = 13
    DUPLICATE_MESSAGE = 14
    INTERNAL = 99


def pin_from_pem(pem: str) -> bytes:
    """SHA-256 of the DER encoding of a PEM certificate: the relay pin for ``PawlClient.open``."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest()


class EventQueue(EventListener):
    """An :class:`EventListener` that hands events to an asyncio loop.

    Pawl calls ``on_event`` on one of its own threads; this puts the event on an
    :class:`asyncio.Queue` of the loop the queue was created on::

        events = EventQueue()            # inside a coroutine (uses the running loop)
        client.set_listener(events)
        async for event in events:
            if isinstance(event, ClientEvent.MESSAGE):
                print(event.message.sender, event.message.text)
    """

    def __init__(self, loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue()

    def on_event(self, event: ClientEvent) -> None:  # called on a Pawl thread
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)
        except RuntimeError:
            pass  # the loop is closed: nobody is listening any more

    async def get(self) -> ClientEvent:
        """The next event."""
        return await self._queue.get()

    async def wait_for(
        self, predicate: Callable[[ClientEvent], bool], timeout: float = 20.0
    ) -> ClientEvent:
        """The next event for which ``predicate`` is true (earlier ones are skipped)."""

        async def scan() -> ClientEvent:
            while True:
                event = await self._queue.get()
                if predicate(event):
                    return event

        return await asyncio.wait_for(scan(), timeout)

    def __aiter__(self) -> AsyncIterator[ClientEvent]:
        return self

    async def __anext__(self) -> ClientEvent:
        return await self._queue.get()
