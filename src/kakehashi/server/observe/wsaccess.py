"""What a WebSocket's access line adds: its atoms and its json keys.

No I/O here.  One line per WebSocket, when it ends (``AccessLog.websocket``): the request
line, status 101, the duration of the whole connection, and these facts, kept apart from the
per-request code of accesslog.py.

Atoms (``-`` on an HTTP line): ``%(Wi)s`` / ``%(Wo)s`` messages received / sent, ``%(WI)s``
/ ``%(WO)s`` bytes received / sent on the wire after the handshake, ``%(Wc)s`` the close code
(the one the application saw; ``-`` if never accepted).  The json format adds the keys
``ws_messages_in``, ``ws_messages_out``, ``ws_bytes_in``, ``ws_bytes_out`` and
``ws_close_code`` to WebSocket lines only (HTTP lines keep their keys).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["WS_ATOMS", "WebSocketCounts", "ws_json"]

# messages in, messages out, bytes in, bytes out, close code (None: never accepted)
WebSocketCounts = tuple[int, int, int, int, int | None]
_KEYS = ("ws_messages_in", "ws_messages_out", "ws_bytes_in", "ws_bytes_out", "ws_close_code")


def _atom(index: int) -> Callable[[Any, Any], str]:
    def atom(entry: Any, stamp: Any) -> str:
        counts: WebSocketCounts | None = entry.ws
        if counts is None or counts[index] is None:
            return "-"
        return str(counts[index])

    return atom


WS_ATOMS = {name: _atom(i) for i, name in enumerate(("Wi", "Wo", "WI", "WO", "Wc"))}


def ws_json(counts: WebSocketCounts | None) -> str:
    """The json keys a WebSocket line adds (``""`` for an HTTP line), each after a comma."""
    if counts is None:
        return ""
    return "".join(
        f',"{key}":{"null" if value is None else value}'
        for key, value in zip(_KEYS, counts, strict=True)
    )
