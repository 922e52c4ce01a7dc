"""The ``lifespan`` cycle (asgiref ``lifespan.rst``) as a plain state machine.

No I/O here, and no waiting: the engine runs the application with the scope from
:meth:`LifespanCycle.scope`, hands it :meth:`LifespanCycle.next_message` when it calls
``receive()`` (None: wait until the phase changes), passes whatever it sends to
:meth:`LifespanCycle.app_sent`, and reports its end with :meth:`LifespanCycle.app_ended`.

The rules kept:

1. ``lifespan.startup`` is the first message; the server serves once the application sent
   ``lifespan.startup.complete``.  ``lifespan.startup.failed`` is fatal, with the
   application's ``message`` (the engine exits non-zero).
2. An application that raises or returns before answering the startup does not support
   lifespan: it is served without it, and told nothing more.
3. ``lifespan.shutdown`` is sent once the server stops; it waits (bounded, by the engine)
   for ``lifespan.shutdown.complete`` or ``lifespan.shutdown.failed``.
4. A message out of order, of an unknown type, or with a ``message`` that is not a str
   raises :class:`~kakehashi.errors.LocalProtocolError` into the application.
5. ``state`` is one dict for the application's whole life; each request's scope gets a
   shallow copy of it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from kakehashi.asgi._scope import ASGI_VERSION, SPEC_VERSION, message_type
from kakehashi.errors import LocalProtocolError

__all__ = ["LifespanCycle", "LifespanPhase"]


class LifespanPhase(enum.Enum):
    STARTING = "starting"  # lifespan.startup is (to be) received by the application
    STARTED = "started"  # startup.complete: serving
    STOPPING = "stopping"  # lifespan.shutdown is (to be) received
    STOPPED = "stopped"  # shutdown.complete
    FAILED = "failed"  # startup.failed or shutdown.failed; see ``message``
    UNSUPPORTED = "unsupported"  # the application ended without answering the startup


_STARTUP = {"type": "lifespan.startup"}
_SHUTDOWN = {"type": "lifespan.shutdown"}


class LifespanCycle:
    """One application's lifespan, as the server sees it.

    Owned by the engine's event loop.
    """

    __slots__ = ("_delivered", "message", "phase", "state")

    def __init__(self) -> None:
        self.phase = LifespanPhase.STARTING
        self.state: dict[str, Any] = {}
        self.message = ""  # the application's reason when a phase failed
        self._delivered = 0  # messages handed to the application so far

    def scope(self) -> dict[str, Any]:
        return {
            "type": "lifespan",
            "asgi": {"version": ASGI_VERSION, "spec_version": SPEC_VERSION},
            "state": self.state,
        }

    def next_message(self) -> dict[str, str] | None:
        """What ``receive()`` returns now; None while there is nothing new (wait)."""
        if self._delivered == 0:
            self._delivered = 1
            return dict(_STARTUP)
        if self._delivered == 1 and self.phase is LifespanPhase.STOPPING:
            self._delivered = 2
            return dict(_SHUTDOWN)
        return None

    def ask_shutdown(self) -> bool:
        """The server stops; True if the application is to be told (it is serving)."""
        if self.phase is not LifespanPhase.STARTED:
            return False
        self.phase = LifespanPhase.STOPPING
        return True

    def app_sent(self, message: Mapping[str, Any]) -> None:
        """Record what the application sent.

        Raises:
            LocalProtocolError: an invalid message, or one out of order.
        """
        kind = message_type(message)
        expected = {
            LifespanPhase.STARTING: "lifespan.startup.",
            LifespanPhase.STOPPING: "lifespan.shutdown.",
        }.get(self.phase)
        if expected is None or kind not in (expected + "complete", expected + "failed"):
            raise LocalProtocolError(f"unexpected {kind!r} in lifespan phase {self.phase.value}")
        if (expected == "lifespan.startup." and self._delivered < 1) or (
            expected == "lifespan.shutdown." and self._delivered < 2
        ):
            raise LocalProtocolError(f"{kind!r} before the server sent {expected[:-1]!r}")
        if kind.endswith(".failed"):
            text = message.get("message", "")
            if type(text) is not str:
                raise LocalProtocolError(f"'message' must be a str, not {text!r}")
            self.message = text
            self.phase = LifespanPhase.FAILED
        elif expected == "lifespan.startup.":
            self.phase = LifespanPhase.STARTED
        else:
            self.phase = LifespanPhase.STOPPED

    def app_ended(self, error: BaseException | None) -> None:
        """The application's lifespan call returned (``error`` None) or raised.

        Before the startup was answered, that means lifespan is not supported (rule 2).
        After, while stopping, it counts as a failed shutdown if it raised.
        """
        if self.phase is LifespanPhase.STARTING:
            self.phase = LifespanPhase.UNSUPPORTED
        elif self.phase is LifespanPhase.STOPPING:
            if error is not None:
                self.message = f"{type(error).__name__}: {error}"
                self.phase = LifespanPhase.FAILED
            else:
                self.phase = LifespanPhase.STOPPED

    @property
    def serving(self) -> bool:
        """Whether requests may be served (startup done, or lifespan unsupported)."""
        return self.phase in (LifespanPhase.STARTED, LifespanPhase.UNSUPPORTED)
