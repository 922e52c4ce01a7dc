"""What every WebSocket of a server shares: the limits from the settings, the deflate budget
(logged once when spent), the metrics and the access-log hook."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from kakehashi.errors import ConfigError
from kakehashi.server import ServerConfig
from kakehashi.server.aio.wsshared import WebSocketFacts, WebSocketShared
from kakehashi.server.observe.metrics import CELLS, Recorder
from tests.asgi.helpers import get


class Session:
    """What WebSocketShared reads of a session."""

    def __init__(self, deflating: bool) -> None:
        self.deflating = deflating


def facts(code: int | None = 1000) -> WebSocketFacts:
    return WebSocketFacts(get(), None, 101, 1.0, 1, 1, 10, 10, code)


def test_limits_come_from_the_settings() -> None:
    shared = WebSocketShared(ServerConfig(ws_max_size=1000, ws_max_queue=3))
    assert shared.limits.max_message_bytes == 1000 and shared.max_queue == 3
    assert shared.going_away_code == 1001


def test_the_deflate_budget_is_spent_and_given_back(caplog: pytest.LogCaptureFixture) -> None:
    shared = WebSocketShared(ServerConfig(ws_deflate_budget=2))
    sessions: list[Any] = []
    for _ in range(2):
        assert shared.deflate_offer() is not None
        sessions.append(Session(True))
        shared.opened(sessions[-1])
    with caplog.at_level(logging.WARNING, "kakehashi.error"):
        assert shared.deflate_offer() is None
        assert shared.deflate_offer() is None
    assert [r.message.count("--ws-deflate-budget") for r in caplog.records] == [1]
    shared.closed(sessions.pop(), facts())
    assert shared.compressing == 1 and shared.deflate_offer() is not None


def test_compression_off() -> None:
    assert WebSocketShared(ServerConfig(ws_per_message_deflate=False)).deflate_offer() is None
    assert WebSocketShared(ServerConfig(ws_deflate_budget=0)).deflate_offer() is None


def test_metrics_and_the_report_hook() -> None:
    shared = WebSocketShared(ServerConfig())
    shared.metrics = recorder = Recorder.private(threads=1)
    reported: list[WebSocketFacts] = []
    shared.report = reported.append
    session: Any = Session(False)
    shared.opened(session)
    shared.ping_rtt(0.01)
    shared.closed(session, facts(1001))
    shared.closed(Session(False), facts(None))  # never accepted: reported, not counted
    totals = recorder.totals()
    assert totals[CELLS.ws_opened] == totals[CELLS.ws_closed] == 1
    assert [f.counts() for f in reported] == [(1, 1, 10, 10, 1001), (1, 1, 10, 10, None)]
    assert shared.ping_rtts == [0.01]


@pytest.mark.parametrize(
    ("setting", "value"),
    [("ws_max_size", 0), ("ws_max_size", 1 << 31), ("ws_max_queue", 0),
     ("ws_ping_interval", -1), ("ws_close_timeout", 0), ("ws_deflate_budget", -1)],
)  # fmt: skip
def test_bad_settings_are_refused(setting: str, value: float) -> None:
    with pytest.raises(ConfigError, match=setting.replace("_", "-")):
        ServerConfig(**{setting: value})
