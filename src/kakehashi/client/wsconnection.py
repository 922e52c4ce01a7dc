"""An open client WebSocket: :class:`WebSocket`, blocking calls over the sans-I/O core.

What it does: sends messages, pings and the Close frame the core (``kakehashi.websocket``)
makes, and reads the socket only while a caller waits for something (a message, a pong, the
end of the close handshake).  The pongs and Close echoes the core owes the server are written
as soon as they are due; a silent server is pinged and, without an answer, given up on.

What it must not do: parse or build frames (the core does, with its limits), open
connections or do the opening handshake (``client/websocket.py`` does), or swallow an error:
every way a WebSocket ends is a :class:`~kakehashi.errors.WebSocketClosed` with its code.

Invariants:
    * One thread reads at a time; the others wait on ``_cond`` for what it reads, so ``recv``
      in one thread and ``send`` or ``ping`` in others is safe.
    * Lock order: ``_write_lock`` (frames leave in the order the core made them, which
      compressed messages need), then ``_core_lock`` (the core is not thread-safe), then
      ``_cond``; nobody blocks on the socket while holding ``_core_lock`` or ``_cond``.
    * Every socket read and write has a finite timeout; a ``recv`` without one is bounded by
      the keepalive pings (``ping_interval``, ``ping_timeout``) when they are on.
    * After the close handshake, or a failure, the client waits at most ``close_timeout``
      for the server to close the TCP connection (RFC 6455 §7.1.1), then closes it itself.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar, cast

from kakehashi import websocket as ws
from kakehashi.client.models import Headers, Timeout
from kakehashi.client.transport import Stream
from kakehashi.errors import (
    ReadError,
    ReadTimeout,
    RemoteWebSocketError,
    TransportError,
    WebSocketClosed,
    WriteTimeout,
)

__all__ = ["Handshake", "Message", "WebSocket"]

Message = str | bytes
T = TypeVar("T")
_READ_SIZE = 64 * 1024
_OK_CODES = frozenset((1000, 1001, 1005))
_IDLE_SLICE = 3600.0  # a read slice when nothing bounds the wait (no keepalive, no timeout)


@dataclass(frozen=True, slots=True)
class Handshake:
    """What the opening handshake sent and got: for ``kakehashi ws -v`` and for callers."""

    request_head: bytes
    status_code: int
    reason: str
    headers: Headers
    subprotocol: str | None
    deflate: ws.DeflateParams | None


class WebSocket:
    """An open WebSocket (client side); made by :func:`kakehashi.client.websocket.connect`.

    Use it as a context manager (it closes with 1000 on exit), iterate over it for the
    messages until a normal close, or call :meth:`recv`, :meth:`send`, :meth:`ping` and
    :meth:`close`.  ``send``, ``ping`` and ``close`` may be called from other threads than
    the one in ``recv``.
    """

    def __init__(
        self,
        stream: Stream,
        core: ws.Connection,
        handshake: Handshake,
        *,
        timeout: Timeout,
        ping_interval: float | None,
        ping_timeout: float | None,
        close_timeout: float,
        early_data: bytes = b"",
    ) -> None:
        self.handshake = handshake
        self._stream = stream
        self._core = core
        self._timeout = timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._write_lock = threading.Lock()
        self._core_lock = threading.Lock()
        self._cond = threading.Condition()
        self._messages: collections.deque[Message] = collections.deque()
        self._pings: dict[bytes, float] = {}  # our pings' payloads -> when sent
        self._pongs: dict[bytes, float] = {}  # -> round trip, once answered
        self._reading = False
        self._eof = False  # the server closed the TCP connection
        self._end: WebSocketClosed | None = None  # set once no message can come any more
        self._released = False  # the stream is closed
        self._heard = time.monotonic()
        self._keepalive: float | None = None  # when our keepalive ping went out
        if early_data:
            core.receive_data(early_data)

    # -- facts -----------------------------------------------------------------------------

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, or None."""
        return self.handshake.subprotocol

    @property
    def close_code(self) -> int | None:
        """How the WebSocket ended (see :class:`WebSocketClosed`), or None while it is open."""
        return None if self._end is None else self._end.close_code

    @property
    def close_reason(self) -> str | None:
        """The reason of the server's Close frame, or None while it is open."""
        return None if self._end is None else self._end.reason

    @property
    def close_sent(self) -> tuple[int, str] | None:
        """The code and reason of the Close frame we sent (1005: one without a code)."""
        with self._core_lock:
            return self._core.close_sent

    @property
    def close_received(self) -> tuple[int, str] | None:
        """The code and reason of the server's Close frame, once it came."""
        with self._core_lock:
            return self._core.close_received

    # -- sending ---------------------------------------------------------------------------

    def send(self, message: Message | bytearray | memoryview | Iterable[Message]) -> None:
        """Send a text (``str``) or binary message; an iterable of them is sent as the
        fragments of one message (all of one type).

        Raises:
            WebSocketClosed: the WebSocket is closing or closed.
            WriteTimeout: the server took nothing for the write timeout (it is then closed).
            TypeError: the message is not ``str`` or bytes-like (or fragments of one kind).
        """
        if isinstance(message, str):
            self._send(lambda core: core.send_text(message))
        elif isinstance(message, bytes | bytearray | memoryview):
            self._send(lambda core: core.send_bytes(bytes(message)))
        elif isinstance(message, Iterable):
            self._send_fragments(iter(message))
        else:
            raise TypeError(f"a message is str or bytes, not {type(message).__name__}")

    def _send_fragments(self, fragments: Iterator[Message]) -> None:
        kind: type | None = None
        with self._write_lock:  # no other message may start between the fragments
            prev: Message | None = None
            for fragment in fragments:
                if not isinstance(fragment, str | bytes) or kind not in (None, type(fragment)):
                    raise TypeError("fragments must all be str or all be bytes")
                kind = type(fragment)
                if prev is not None:
                    self._send_locked(_fragment(prev, fin=False))
                prev = fragment
            if prev is None:
                raise TypeError("a fragmented message needs at least one fragment")
            self._send_locked(_fragment(prev, fin=True))

    def _send(self, make: Callable[[ws.Connection], bytes]) -> None:
        with self._write_lock:
            self._send_locked(make)

    def _send_locked(self, make: Callable[[ws.Connection], bytes]) -> None:
        """Build a frame with the core and write it; the caller holds ``_write_lock``."""
        with self._core_lock:
            if self._core.state is not ws.ConnectionState.OPEN or self._released:
                raise self._closed_error()
            data = make(self._core)
        self._write(data, self._timeout.write)

    def _write(self, data: bytes, timeout: float) -> None:
        """Write under ``_write_lock``; a failed write ends the WebSocket (1006)."""
        try:
            self._stream.write(data, timeout)
        except WriteTimeout:
            self._abort(1006, "a write timed out")
            raise
        except TransportError as exc:
            self._abort(1006, f"the connection broke: {exc}")
            raise self._closed_error() from exc

    def _flush(self) -> None:
        """Write what the core owes the server (pongs, a Close echo or failure).

        Taken before ``_write_lock`` is: a frame a sender makes meanwhile may overtake a pong
        (allowed anywhere), never a Close (after it the core makes no frame).
        """
        with self._core_lock:
            data = self._core.data_to_send()
        if not data:
            return
        with self._write_lock:
            if not self._released:
                try:
                    self._write(data, self._timeout.write)
                except (TransportError, WebSocketClosed):
                    pass  # recorded in _end by _write: the waiting caller reports it

    def ping(self, payload: bytes = b"", timeout: float | None = None) -> float:
        """Ping the server and wait for its pong; returns the round trip in seconds.

        ``payload`` (at most 125 bytes) is four random bytes when empty, to tell the pongs of
        concurrent pings apart.  Messages that arrive meanwhile wait for :meth:`recv`.

        Raises:
            ReadTimeout: no pong within ``timeout`` (the read timeout when None).
            WebSocketClosed: the WebSocket is closing or closed.
            LocalWebSocketError: the payload is over 125 bytes.
        """
        payload = bytes(payload) or os.urandom(4)
        wait = self._timeout.read if timeout is None else timeout

        def answered() -> float | None:
            return self._pongs.pop(payload, None)

        with self._cond:
            self._pings[payload] = time.monotonic()
        try:
            self._send(lambda core: core.send_ping(payload))
            return self._wait_for(answered, time.monotonic() + wait)
        finally:
            with self._cond:
                self._pings.pop(payload, None)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """The close handshake: our Close frame, the server's, then the TCP close.

        Each wait is bounded by ``close_timeout``; closing a closed WebSocket does nothing.
        Messages that arrive meanwhile are kept for :meth:`recv`.

        Raises:
            LocalWebSocketError: a code that cannot be sent (1005, 1006, 1015, or outside
                1000-1014 and 3000-4999) or a reason over 123 UTF-8 bytes.
        """
        ws.close_payload(code, reason)  # refuse a bad code before anything is sent
        with self._write_lock:
            with self._core_lock:
                data = b""
                if self._core.state is ws.ConnectionState.OPEN and not self._released:
                    data = self._core.send_close(code, reason)
            try:
                self._write(data, min(self._timeout.write, self._close_timeout))
            except (TransportError, WebSocketClosed):
                return  # the stream is closed already
        self._finish(time.monotonic() + self._close_timeout)

    def _finish(self, deadline: float) -> None:
        """Wait for the server's Close, then for its TCP close; then close the stream."""
        try:
            self._wait_for(lambda: True if self._end is not None else None, deadline, True)
            self._wait_for(lambda: True if self._eof or self._released else None, deadline, True)
        except ReadTimeout:
            pass
        self._release()

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- receiving -------------------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> Message:
        """The next message: ``str`` for text, ``bytes`` for binary.

        With ``timeout`` None it waits as long as the WebSocket lives (keepalive pings find
        a server that went silent); a :class:`ReadTimeout` leaves the WebSocket usable.

        Raises:
            WebSocketClosed: the WebSocket ended (``close_code`` says how); messages that
                came before the end are all returned first.
            ReadTimeout: no message within ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            # (mypy would solve T as Sequence[object], the join of str and bytes)
            message = cast(Message, self._wait_for(self._next_message, deadline))
        except WebSocketClosed:
            self._finish(time.monotonic() + self._close_timeout)
            raise
        return message

    def _next_message(self) -> Message | None:
        return self._messages.popleft() if self._messages else None

    def __iter__(self) -> Iterator[Message]:
        """The messages until the WebSocket closes; a normal close (1000, 1001, no code)
        ends the iteration, any other raises :class:`WebSocketClosed`."""
        while True:
            try:
                yield self.recv()
            except WebSocketClosed as exc:
                if exc.ok:
                    return
                raise

    # -- the reading pump ------------------------------------------------------------------

    def _wait_for(
        self, ready: Callable[[], T | None], deadline: float | None, closing: bool = False
    ) -> T:
        """Read the socket (or wait for the thread that does) until ``ready()`` gives a value.

        Raises:
            WebSocketClosed: the WebSocket ended first (unless ``closing``: the close
                handshake waits past the end, for the TCP close).
            ReadTimeout: ``deadline`` passed.
        """
        while True:
            with self._cond:
                while True:
                    result = ready()
                    if result is not None:
                        return result
                    if self._end is not None and not closing:
                        raise self._closed_error()
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise ReadTimeout("nothing came from the server in time")
                    if not self._reading:
                        break
                    self._cond.wait(left)
                self._reading = True
            try:
                if not self._pull_one():
                    self._read_once(left)
            finally:
                with self._cond:
                    self._reading = False
                    self._cond.notify_all()

    def _read_once(self, left: float | None) -> None:
        """One read of the socket (at most ``left`` seconds), and what it brings."""
        if self._released or self._eof:
            with self._cond:
                self._eof = True
                self._end_with(1006, "the connection is closed")
            return
        wait = self._keepalive_wait(left)
        try:
            data = self._stream.read(_READ_SIZE, wait)
        except ReadTimeout:
            self._keepalive_check()
            return
        except ReadError as exc:
            with self._cond:
                self._eof = True
                self._end_with(1006, f"the connection broke: {exc}")
            return
        self._heard = time.monotonic()
        self._keepalive = None
        with self._core_lock:
            self._core.receive_data(data)
        if not data:
            with self._cond:
                self._eof = True

    def _pull_one(self) -> bool:
        """Take one event out of the bytes the core holds, and write what it then owes.

        One at a time, as callers ask: a message is returned (and may be answered) before a
        broken frame behind it in the same read fails the connection, as Autobahn's strict
        cases want.  Returns False when the core needs more bytes.
        """
        failure: RemoteWebSocketError | None = None
        with self._core_lock:
            try:
                event = self._core.next_event()
            except RemoteWebSocketError as exc:
                event, failure = None, exc
        if event is None and failure is None:
            return False
        with self._cond:
            if event is not None:
                self._file(event)
            if failure is not None:
                self._end_with(failure.close_code, f"we closed the WebSocket: {failure}")
        self._flush()
        return True

    def _file(self, event: ws.Event) -> None:
        """Keep one event where the waiting callers look (``_cond`` held)."""
        if isinstance(event, ws.TextMessage | ws.BytesMessage):
            self._messages.append(event.data)
        elif isinstance(event, ws.Pong):
            sent = self._pings.get(event.payload)
            if sent is not None:
                self._pongs[event.payload] = time.monotonic() - sent
        elif isinstance(event, ws.CloseReceived):
            ok = event.code in _OK_CODES
            text = f"the server closed the WebSocket with {event.code}"
            text += f": {event.reason}" if event.reason else ""
            self._end_with(event.code, text, ok, event.reason)
        elif isinstance(event, ws.ConnectionLost):
            self._end_with(1006, "the server closed the connection without a close handshake")

    def _end_with(self, code: int, message: str, ok: bool = False, reason: str = "") -> None:
        """Record how the WebSocket ended; the first end wins (``_cond`` held)."""
        if self._end is None:
            self._end = WebSocketClosed(message, code, reason, ok)

    def _closed_error(self) -> WebSocketClosed:
        """A fresh error saying how the WebSocket ended (or that we are closing it)."""
        end = self._end
        if end is None:
            sent = self._core.close_sent
            code = sent[0] if sent else 1006
            return WebSocketClosed(f"the WebSocket is closing (we sent {code})", code)
        return WebSocketClosed(str(end), end.close_code, end.reason, end.ok)

    # -- keepalive -------------------------------------------------------------------------

    def _keepalive_wait(self, left: float | None) -> float:
        """How long the next read may wait: until the deadline or the next keepalive step."""
        waits = [_IDLE_SLICE] if left is None else [max(left, 0.001)]
        if self._ping_interval is not None:
            if self._keepalive is None:
                waits.append(self._heard + self._ping_interval - time.monotonic())
            elif self._ping_timeout is not None:
                waits.append(self._keepalive + self._ping_timeout - time.monotonic())
        return max(min(waits), 0.001)

    def _keepalive_check(self) -> None:
        """After a silent read: ping a quiet server, give up on one that does not answer."""
        if self._ping_interval is None:
            return
        now = time.monotonic()
        if self._keepalive is None:
            if now - self._heard >= self._ping_interval:
                self._keepalive = now
                try:
                    self._send(lambda core: core.send_ping(b"keepalive"))
                except (TransportError, WebSocketClosed):
                    pass  # recorded in _end
        elif self._ping_timeout is not None and now - self._keepalive >= self._ping_timeout:
            self._abort(1006, f"no answer to a ping within {self._ping_timeout:g} s")

    # -- ending ----------------------------------------------------------------------------

    def _abort(self, code: int, message: str) -> None:
        """End the WebSocket without a close handshake and close the stream."""
        with self._cond:
            self._end_with(code, message)
            self._cond.notify_all()
        self._release()

    def _release(self) -> None:
        with self._cond:
            if self._released:
                return
            self._released = True
            self._end_with(1006, "the connection is closed")
            reading = self._reading
        if reading:  # wake the thread blocked in a read before the socket goes away
            interrupt = getattr(self._stream, "interrupt", None)
            if interrupt is not None:
                interrupt()
        self._stream.close()


def _fragment(data: Message, *, fin: bool) -> Callable[[ws.Connection], bytes]:
    if isinstance(data, str):
        return lambda core: core.send_text(data, fin=fin)
    return lambda core: core.send_bytes(data, fin=fin)
