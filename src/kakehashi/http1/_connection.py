"""Connection: the sans-I/O HTTP/1.1 state machine, for either role.

No I/O here: bytes come in through :meth:`Connection.receive_data` and go out as the return
value of :meth:`Connection.send`.  Events come out of :meth:`Connection.next_event`.  The
client uses it as is; the server's hot path calls the same parser, framing and body readers
directly (``maybe_parse_request_head``, ``reader_for``), so both share every rule.

Rule: a RemoteProtocolError from next_event leaves the connection in State.ERROR; the only
thing left to do is to answer (server) and close.

Switching protocols (RFC 9110 §7.8, §15.2.2): a ``101`` to a complete request that carried
``Upgrade`` moves both sides to State.SWITCHED_PROTOCOL, sent by the server or received by the
client.  From then on ``next_event`` returns PAUSED, ``send`` refuses, and the bytes after the
101's head (or after the request, on the server) are the new protocol's: take them from
:attr:`Connection.trailing_data`.
"""

from __future__ import annotations

from kakehashi.errors import LocalProtocolError, RemoteProtocolError
from kakehashi.http1._body import BodyReader, reader_for
from kakehashi.http1._buffer import ReceiveBuffer
from kakehashi.http1._events import (
    DEFAULT_LIMITS,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Framing,
    InformationalResponse,
    Limits,
    Request,
    Response,
    Signal,
)
from kakehashi.http1._framing import outgoing_response_framing
from kakehashi.http1._head import (
    HeadProgress,
    maybe_parse_request_head,
    maybe_parse_response_head,
)
from kakehashi.http1._headers import Headers
from kakehashi.http1._state import Event, Role, State, transition
from kakehashi.http1._writers import (
    LAST_CHUNK,
    encode_chunk,
    write_fields,
    write_request_head,
    write_response_head,
)

__all__ = ["Connection", "ReceivedEvent", "SentEvent"]

ReceivedEvent = Request | Response | InformationalResponse | Data | EndOfMessage | ConnectionClosed
SentEvent = Request | Response | InformationalResponse | Data | EndOfMessage


class Connection:
    """One HTTP/1.1 connection seen from ``role``.

    Args:
        role: Role.SERVER parses requests and writes responses; Role.CLIENT the reverse.
        limits: bounds on what the peer may send.
    """

    def __init__(self, role: Role, limits: Limits = DEFAULT_LIMITS) -> None:
        self.role = role
        self.limits = limits
        self.our_state = State.IDLE
        self.their_state = State.IDLE
        self._buf = ReceiveBuffer()
        # What the parser already examined of an incomplete head, so that each received byte
        # is looked at once: a head fed one byte at a time must not be re-parsed per byte.
        self._progress = HeadProgress()
        self._eof = False
        self._reader: BodyReader | None = None
        self._request: Request | None = None  # the request of the current cycle
        self._out_framing = Framing.NONE
        self._out_remaining: int | None = None
        self._reusable = True

    # -- receiving ---------------------------------------------------------------------------

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not consumed yet, and whether the peer has closed."""
        return bytes(self._buf), self._eof

    def receive_data(self, data: bytes) -> None:
        """Feed received bytes; ``b""`` means the peer closed its side."""
        if data:
            if self._eof:
                raise LocalProtocolError("data received after end of stream")
            self._buf.append(data)
        else:
            self._eof = True

    def next_event(self) -> ReceivedEvent | Signal:
        """The next event from the peer, or a Signal saying why there is none yet.

        Raises:
            RemoteProtocolError: the peer broke the protocol; ``status_hint`` says how to answer.
        """
        if self.their_state is State.ERROR:
            raise RemoteProtocolError("the connection already failed")
        try:
            return self._next_event()
        except RemoteProtocolError:
            self.their_state = transition(self.their_state, Event.ERROR)
            raise

    def _next_event(self) -> ReceivedEvent | Signal:
        state = self.their_state
        if state is State.IDLE:
            if self.role is Role.CLIENT and self.our_state is State.IDLE:
                return self._paused_or_closed()
            return self._next_head()
        if state is State.SEND_BODY:
            return self._next_body_event()
        if state is State.SWITCHED_PROTOCOL:
            return Signal.PAUSED  # the bytes are another protocol's: see trailing_data
        return self._paused_or_closed()

    def _paused_or_closed(self) -> ConnectionClosed | Signal:
        if self._eof and not len(self._buf):
            self.their_state = transition(self.their_state, Event.CLOSE)
            return ConnectionClosed()
        return Signal.PAUSED

    def _next_head(self) -> ReceivedEvent | Signal:
        buf = self._buf
        parsed: tuple[Request | Response, int] | None
        progress = self._progress
        if len(buf) == progress.checked and not self._eof:
            return Signal.NEED_DATA  # nothing new since the last look
        if self.role is Role.SERVER:
            parsed = maybe_parse_request_head(buf.raw, buf.pos, self.limits, progress)
        else:
            assert self._request is not None
            method = self._request.method
            parsed = maybe_parse_response_head(buf.raw, buf.pos, method, self.limits, progress)
        if parsed is None:
            if self._eof:
                # RFC 9112 §2.2: empty lines before a request are ignored, also at the end.
                if not bytes(buf).replace(b"\r\n", b""):
                    self.their_state = transition(self.their_state, Event.CLOSE)
                    return ConnectionClosed()
                raise RemoteProtocolError("connection closed in the middle of a message head")
            return Signal.NEED_DATA
        head, end = parsed
        buf.advance_to(end)
        self._progress = HeadProgress()
        if isinstance(head, Response) and head.status_code < 200:
            if head.status_code == 101:
                self._switch(RemoteProtocolError)
            return InformationalResponse(head.status_code, head.headers, head.reason)
        self.their_state = transition(self.their_state, Event.HEAD)
        if isinstance(head, Request):
            self._request = head
            self._reusable = head.keep_alive
        else:
            self._reusable = self._reusable and head.keep_alive
        self._reader = reader_for(head.framing, head.content_length, self.limits)
        return head

    def _next_body_event(self) -> Data | EndOfMessage | Signal:
        assert self._reader is not None
        event = self._reader.read(self._buf)
        if event is None:
            if not self._eof:
                return Signal.NEED_DATA
            event = self._reader.read_eof()
        if isinstance(event, EndOfMessage):
            self.their_state = transition(self.their_state, Event.END)
            self._maybe_must_close()
        return event

    # -- sending -----------------------------------------------------------------------------

    def send(self, event: SentEvent) -> bytes:
        """The bytes to put on the wire for ``event``.

        Raises:
            LocalProtocolError: the event is illegal here (wrong state, bad fields, a body
                longer or shorter than its Content-Length, a body where none is allowed).
        """
        if self.our_state is State.ERROR:
            raise LocalProtocolError("the connection already failed")
        try:
            return self._send(event)
        except LocalProtocolError:
            self.our_state = State.ERROR
            raise

    def _send(self, event: SentEvent) -> bytes:
        if isinstance(event, Data):
            return self._send_data(event.data)
        if isinstance(event, EndOfMessage):
            return self._send_end(event.trailers)
        if isinstance(event, InformationalResponse):
            if (
                self.role is not Role.SERVER
                or self.their_state in (State.IDLE, State.ERROR)
                or self.our_state is not State.IDLE
                or not 100 <= event.status_code < 200
            ):
                raise LocalProtocolError("a 1xx response goes before the final one, to a request")
            if event.status_code == 101:
                if b"upgrade" not in event.headers:
                    raise LocalProtocolError("a 101 must say what it switches to (Upgrade)")
                self._switch(LocalProtocolError)
            return write_response_head(event.status_code, list(event.headers), event.reason or None)
        if isinstance(event, Response):
            return self._send_response(event)
        return self._send_request(event)

    def _send_request(self, request: Request) -> bytes:
        if self.role is not Role.CLIENT:
            raise LocalProtocolError("only a client sends requests")
        self.our_state = transition(self.our_state, Event.HEAD)
        headers = Headers(request.headers)
        if b"host" not in headers:
            raise LocalProtocolError("a request needs a Host header")
        te = headers.get_list(b"transfer-encoding")
        if te:
            # RFC 9112 §6.2: a sender MUST NOT send Content-Length beside Transfer-Encoding.
            if [t.lower() for t in te] != [b"chunked"] or b"content-length" in headers:
                raise LocalProtocolError("Transfer-Encoding must be chunked, without a length")
            self._out_framing, self._out_remaining = Framing.CHUNKED, None
        elif b"content-length" in headers:
            length = headers.get(b"content-length") or b""
            if not length.isdigit():
                raise LocalProtocolError(f"bad Content-Length {length!r}")
            self._out_framing, self._out_remaining = Framing.LENGTH, int(length)
        else:
            self._out_framing, self._out_remaining = Framing.NONE, 0
        self._request = request
        self._reusable = b"close" not in [t.lower() for t in headers.get_list(b"connection")]
        return write_request_head(
            request.method, request.target, headers.raw(), request.http_version
        )

    def _send_response(self, response: Response) -> bytes:
        request = self._request
        if self.role is not Role.SERVER:
            raise LocalProtocolError("only a server sends responses")
        if self.their_state is State.ERROR and self.our_state is State.IDLE:
            # The answer to a request that failed to parse (400, 413, ...): allowed once, and
            # the connection closes after it, since we cannot know where the next one starts.
            self._reusable = False
            method, version = b"GET", b"1.1"
        elif request is None or self.their_state is State.IDLE:
            raise LocalProtocolError("a response needs a request to answer")
        else:
            method, version = request.method, request.http_version
        if response.status_code < 200:
            raise LocalProtocolError("send a 1xx as an InformationalResponse")
        out = outgoing_response_framing(
            method, version, self._reusable, response.status_code, list(response.headers)
        )
        self.our_state = transition(self.our_state, Event.HEAD)
        self._out_framing = out.framing
        self._out_remaining = out.content_length if out.framing is Framing.LENGTH else None
        self._reusable = self._reusable and out.keep_alive
        return write_response_head(
            response.status_code, out.headers, response.reason or None, b"1.1"
        )

    def _send_data(self, data: bytes) -> bytes:
        if self.our_state is not State.SEND_BODY:
            raise LocalProtocolError("no message body in progress")
        framing = self._out_framing
        if framing is Framing.CHUNKED:
            return encode_chunk(data)
        if framing is Framing.LENGTH:
            assert self._out_remaining is not None
            if len(data) > self._out_remaining:
                raise LocalProtocolError("body longer than its Content-Length")
            self._out_remaining -= len(data)
            return data
        if framing is Framing.NONE and data:
            raise LocalProtocolError("this message cannot have a body")
        return data

    def _send_end(self, trailers: Headers) -> bytes:
        self.our_state = transition(self.our_state, Event.END)
        framing = self._out_framing
        if framing is Framing.LENGTH and self._out_remaining:
            raise LocalProtocolError("body shorter than its Content-Length")
        if len(trailers) and framing is not Framing.CHUNKED:
            # RFC 9112 §7.1.2: only the chunked coding has a place for trailer fields.
            raise LocalProtocolError("trailers need a chunked body")
        if framing is Framing.CLOSE:
            self._reusable = False
        self._maybe_must_close()
        if framing is not Framing.CHUNKED:
            return b""
        if not len(trailers):
            return LAST_CHUNK
        return b"0\r\n" + write_fields(trailers.raw()) + b"\r\n"

    def _switch(self, error: type[LocalProtocolError | RemoteProtocolError]) -> None:
        """Both sides to SWITCHED_PROTOCOL after a 101, if the exchange allows it.

        The request must have asked for an upgrade, be HTTP/1.1 (RFC 9110 §7.8: an Upgrade in
        an HTTP/1.0 request is ignored) and be complete: the bytes after it are the new
        protocol's, so a body still arriving could not be told apart from them.
        """
        request = self._request
        client_side = self.role is Role.CLIENT
        request_done = (self.our_state if client_side else self.their_state) in (
            State.DONE,
            State.MUST_CLOSE,
        )
        if request is None or b"upgrade" not in request.headers:
            raise error("a 101 answers a request that did not ask for an upgrade")
        if request.http_version != b"1.1" or not request_done:
            raise error("a 101 needs a complete HTTP/1.1 request to answer")
        self.our_state = transition(self.our_state, Event.SWITCH)
        self.their_state = transition(self.their_state, Event.SWITCH)

    # -- the cycle ---------------------------------------------------------------------------

    def _maybe_must_close(self) -> None:
        if self._reusable:
            return
        for side in ("our_state", "their_state"):
            if getattr(self, side) is State.DONE:
                setattr(self, side, transition(State.DONE, Event.NOT_REUSABLE))

    @property
    def is_reusable(self) -> bool:
        """Both messages are done and the connection may carry another exchange."""
        return self._reusable and self.our_state is State.DONE and self.their_state is State.DONE

    def start_next_cycle(self) -> None:
        """Reset for the next request/response on the same connection.

        Raises:
            LocalProtocolError: the cycle is not finished, or the connection cannot be reused.
        """
        if not self.is_reusable:
            raise LocalProtocolError("the connection cannot be reused now")
        self.our_state = transition(self.our_state, Event.NEXT_CYCLE)
        self.their_state = transition(self.their_state, Event.NEXT_CYCLE)
        self._request = None
        self._reader = None
