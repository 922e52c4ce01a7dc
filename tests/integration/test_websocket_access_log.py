"""A WebSocket served by ``kakehashi serve`` gets one access line when it closes, through the
asyncio engine's access log (aio/record.py's websocket_reporter): the 101, the messages each
way and the close code."""

from __future__ import annotations

import signal
import textwrap
from collections.abc import Callable
from pathlib import Path

from websockets.sync.client import connect

from tests.conftest import ServeProcess

Spawn = Callable[..., ServeProcess]

ECHO = textwrap.dedent(
    """
    async def app(scope, receive, send):
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text")})
    """
)


def test_a_closed_websocket_gets_one_access_line(serve_process: Spawn, tmp_path: Path) -> None:
    (tmp_path / "ws_echo_app.py").write_text(ECHO)
    log = tmp_path / "access.log"
    proc = serve_process(
        "ws_echo_app:app",
        "--port",
        "0",
        "--access-logfile",
        str(log),
        "--access-log-format",
        '"%(r)s" %(s)s %(Wi)s %(Wo)s %(Wc)s',
        cwd=tmp_path,
    )
    host, port = proc.address().rsplit(":", 1)
    with connect(f"ws://{host}:{port}/chat?room=1") as sock:
        for text in ("one", "two", "three"):
            sock.send(text)
            assert sock.recv(timeout=5) == text
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    lines = log.read_text().splitlines()
    assert lines == ['"GET /chat?room=1 HTTP/1.1" 101 3 3 1000']
