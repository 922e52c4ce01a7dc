"""kakehashi.http1: a sans-I/O HTTP/1.1 core (RFC 9110, RFC 9112), shared by server and client.

No sockets, threads, clocks or logging here: bytes in, events out; events in, bytes out.
Every limit and default is exported, so integrators never reach into private modules.
"""

from kakehashi.http1._body import (
    BodyReader,
    ChunkedReader,
    CloseReader,
    ContentLengthReader,
    reader_for,
)
from kakehashi.http1._buffer import ReceiveBuffer
from kakehashi.http1._connection import Connection, ReceivedEvent, SentEvent
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
from kakehashi.http1._framing import (
    OutgoingFraming,
    ResponseFraming,
    decide_response_framing,
    outgoing_response_framing,
)
from kakehashi.http1._head import (
    HeadCache,
    HeadProgress,
    maybe_parse_request_head,
    maybe_parse_response_head,
)
from kakehashi.http1._headers import Headers, validate_fields
from kakehashi.http1._state import Role, State
from kakehashi.http1._urls import (
    absolute_authority,
    decode_path,
    decode_path_text,
    is_plain_path,
    split_target,
)
from kakehashi.http1._writers import (
    LAST_CHUNK,
    encode_chunk,
    reason_phrase,
    write_request_head,
    write_response_head,
)

NEED_DATA = Signal.NEED_DATA
PAUSED = Signal.PAUSED

__all__ = [
    "DEFAULT_LIMITS",
    "LAST_CHUNK",
    "NEED_DATA",
    "PAUSED",
    "BodyReader",
    "ChunkedReader",
    "CloseReader",
    "Connection",
    "ConnectionClosed",
    "ContentLengthReader",
    "Data",
    "EndOfMessage",
    "Framing",
    "HeadCache",
    "HeadProgress",
    "Headers",
    "InformationalResponse",
    "Limits",
    "OutgoingFraming",
    "ReceiveBuffer",
    "ReceivedEvent",
    "Request",
    "Response",
    "ResponseFraming",
    "Role",
    "SentEvent",
    "Signal",
    "State",
    "absolute_authority",
    "decide_response_framing",
    "decode_path",
    "decode_path_text",
    "encode_chunk",
    "is_plain_path",
    "maybe_parse_request_head",
    "maybe_parse_response_head",
    "outgoing_response_framing",
    "reader_for",
    "reason_phrase",
    "split_target",
    "validate_fields",
    "write_request_head",
    "write_response_head",
]
