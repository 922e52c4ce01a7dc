"""A head trickled in tiny pieces costs the server work linear in its size, not quadratic."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from kakehashi.server import Server
from kakehashi.server.aio import connection
from kakehashi.server.threads import channel
from tests import wire
from tests.conftest import addr

pytestmark = pytest.mark.integration


def _send_bytewise(server: Server, payload: bytes) -> wire.Response:
    host, port = addr(server).rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(payload)):
            sock.send(payload[i : i + 1])
        return wire.Reader(sock).read_response()


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\r\n" * 6000 + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="empty-lines"),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 6000 + b"\r\nX-B: " + b"b" * 6000
            + b"\r\n\r\n",
            id="long-fields",
        ),
    ],
)  # fmt: skip
def test_bytewise_head_is_not_rescanned(
    start_engine: Any, engine: str, payload: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanned: list[int] = []
    module: Any = channel if engine == "threads" else connection  # where each engine parses
    parse = module.maybe_parse_request_head

    def counting(buf: bytes, pos: int, limits: Any, *rest: Any) -> Any:
        scanned.append(len(buf) - pos)
        return parse(buf, pos, limits, *rest)

    monkeypatch.setattr(module, "maybe_parse_request_head", counting)
    server = start_engine(header_timeout=30)
    assert _send_bytewise(server, payload).status == 200
    # Re-parsing the whole buffer on every byte would scan about len(payload)**2 / 2 bytes.
    assert sum(scanned) <= 4 * len(payload)
