"""Running an application's lifespan on the event loop (asgiref ``lifespan.rst``).

The rules are kakehashi.asgi's :class:`~kakehashi.asgi.LifespanCycle`; this module only
waits.  The application's lifespan call runs in a task for the server's whole life:
:meth:`Lifespan.startup` waits until it answered the startup (or ended: no lifespan
support), :meth:`Lifespan.shutdown` tells it to stop and waits, bounded, for its answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from kakehashi.asgi import ASGIApp, LifespanCycle, LifespanPhase
from kakehashi.errors import KakehashiError
from kakehashi.server.aio.context import error_logger

__all__ = ["Lifespan", "LifespanFailed"]


class LifespanFailed(KakehashiError):
    """The application refused to start (``lifespan.startup.failed``); its message is the
    text.  The CLI exits non-zero with it."""


class Lifespan:
    """One application's lifespan on one loop.  Owned by the loop's thread."""

    def __init__(self, app: ASGIApp, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop
        self.cycle = LifespanCycle()
        self._changed: asyncio.Future[None] = loop.create_future()
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> dict[str, Any]:
        return self.cycle.state

    def _notify(self) -> None:
        # Every waiter waits on the future of its time; a new one serves later waits.
        changed, self._changed = self._changed, self.loop.create_future()
        changed.set_result(None)

    async def _until_changed(self) -> None:
        await self._changed

    async def startup(self) -> None:
        """Run the startup; return once requests may be served.

        Raises:
            LifespanFailed: the application sent ``lifespan.startup.failed``.
        """
        self._task = self.loop.create_task(self._run())
        while self.cycle.phase is LifespanPhase.STARTING:
            await self._until_changed()
        if self.cycle.phase is LifespanPhase.FAILED:
            raise LifespanFailed(self.cycle.message or "lifespan startup failed")

    async def shutdown(self, timeout: float) -> None:
        """Tell the application the server stops; wait up to ``timeout`` for its answer."""
        if self.cycle.ask_shutdown():
            self._notify()
            try:
                async with asyncio.timeout(timeout):
                    while self.cycle.phase is LifespanPhase.STOPPING:
                        await self._until_changed()
            except TimeoutError:
                error_logger.warning("lifespan shutdown not answered within %.1fs", timeout)
            if self.cycle.phase is LifespanPhase.FAILED:
                error_logger.error("lifespan shutdown failed: %s", self.cycle.message)
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        error: BaseException | None = None
        try:
            await self.app(self.cycle.scope(), self._receive, self._send)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc
            if self.cycle.phase is LifespanPhase.STARTING:
                # An application without lifespan support usually fails on the scope type.
                error_logger.info("the application does not support lifespan (%r): served "
                                  "without it", exc)  # fmt: skip
            elif self.cycle.phase is not LifespanPhase.FAILED:
                error_logger.error("Exception in the ASGI lifespan", exc_info=exc)
        finally:
            self.cycle.app_ended(error)
            self._notify()

    async def _receive(self) -> dict[str, str]:
        while (message := self.cycle.next_message()) is None:
            await self._until_changed()
        return message

    async def _send(self, message: Mapping[str, Any]) -> None:
        self.cycle.app_sent(message)
        self._notify()
