"""A WebSocket's access line: one per connection, status 101, the duration of the whole
connection, messages and bytes each way and the close code (atoms and json keys)."""

from __future__ import annotations

import json
import logging

import pytest

from kakehashi.server.observe.accesslog import DEFAULT_FORMAT, AccessLog, check_format
from kakehashi.server.observe.wsaccess import WebSocketCounts
from kakehashi.server.threads.environ import ENVIRON_READER

ENVIRON = {
    "REMOTE_ADDR": "10.0.0.7",
    "REQUEST_METHOD": "GET",
    "RAW_URI": "/chat",
    "PATH_INFO": "/chat",
    "QUERY_STRING": "",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_USER_AGENT": "ws/1",
}
COUNTS: WebSocketCounts = (12, 11, 1300, 1200, 1001)


def line(fmt: str, caplog: pytest.LogCaptureFixture, counts: WebSocketCounts = COUNTS) -> str:
    caplog.set_level(logging.INFO, logger="kakehashi.access")
    caplog.clear()
    AccessLog(ENVIRON_READER, fmt).websocket(ENVIRON, 65.5, counts)
    (record,) = [r for r in caplog.records if r.name == "kakehashi.access"]
    return record.getMessage()


def test_the_default_format_says_101_bytes_sent_and_the_whole_duration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = line(DEFAULT_FORMAT, caplog)
    assert text.startswith("10.0.0.7 - - [")
    assert text.endswith('"GET /chat HTTP/1.1" 101 1200 "-" "ws/1" 65500000')


def test_the_websocket_atoms(caplog: pytest.LogCaptureFixture) -> None:
    check_format("%(Wi)s %(Wo)s %(WI)s %(WO)s %(Wc)s")
    assert line("%(s)s %(Wi)s %(Wo)s %(WI)s %(WO)s %(Wc)s %(T)s", caplog) == (
        "101 12 11 1300 1200 1001 65"
    )
    assert line("%(Wc)s", caplog, (0, 0, 0, 0, None)) == "-"  # never accepted


def test_the_websocket_atoms_on_an_http_line_are_dashes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi.access")
    AccessLog(ENVIRON_READER, "%(Wi)s %(Wc)s").response(ENVIRON, 200, 5, 0.1)
    (record,) = [r for r in caplog.records if r.name == "kakehashi.access"]
    assert record.getMessage() == "- -"


def test_json_adds_the_websocket_keys(caplog: pytest.LogCaptureFixture) -> None:
    record = json.loads(line("json", caplog))
    assert record["status"] == 101 and record["duration_us"] == 65_500_000
    assert list(record)[-5:] == [
        "ws_messages_in", "ws_messages_out", "ws_bytes_in", "ws_bytes_out", "ws_close_code",
    ]  # fmt: skip
    assert (record["ws_messages_in"], record["ws_bytes_out"], record["ws_close_code"]) == (
        12, 1200, 1001,
    )  # fmt: skip
    assert json.loads(line("json", caplog, (0, 0, 0, 0, None)))["ws_close_code"] is None
