"""SendPace: the progress and rate rules, by the clock the caller gives."""

from __future__ import annotations

from kakehashi.server.engine.pace import SendPace


def test_progress_rule() -> None:
    pace = SendPace(timeout=1.0, min_rate=1, window=100.0)
    pace.begin(0.0, queued=1000)
    assert pace.broken(0.9, 1000) == ""
    assert pace.deadline() == 1.0
    pace.record(10, 0.9)  # progress restarts the clock
    assert pace.broken(1.5, 990) == ""
    assert pace.broken(2.0, 990) == "no progress for 1 s"


def test_rate_rule_over_consecutive_windows() -> None:
    pace = SendPace(timeout=100.0, min_rate=100, window=10.0)
    pace.begin(0.0, queued=10**6)
    pace.record(1000, 5.0)  # 100 B/s over the first window: met
    assert pace.broken(10.0, 10**6) == ""
    assert pace.window_start == 10.0 and pace.window_sent == 0
    assert pace.deadline() == 20.0  # the second window needs its own 1000 bytes
    pace.record(999, 15.0)
    assert pace.broken(20.0, 10**6) == "below 100 B/s over 10 s"
    assert pace.sent == 1999


def test_a_met_window_moves_the_deadline_to_the_next_one() -> None:
    pace = SendPace(timeout=30.0, min_rate=1024, window=60.0)
    pace.begin(0.0, queued=10**8)
    assert pace.deadline() == 30.0  # a stopped reader meets the progress rule first
    pace.record(70_000, 10.0)
    assert pace.deadline() == 40.0
    pace.record(1, 39.0)
    assert pace.deadline() == 69.0
    pace.record(1, 68.0)
    assert pace.deadline() == 98.0
    assert pace.broken(97.9, 10**8) == ""  # the first window (to 60 s) was met
    pace.record(1, 97.9)
    assert pace.broken(120.0, 10**8) == "below 1024 B/s over 60 s"


def test_a_window_asks_no_more_than_was_queued() -> None:
    pace = SendPace(timeout=100.0, min_rate=1000, window=10.0)
    pace.begin(0.0, queued=300)
    pace.record(300, 9.0)
    assert pace.broken(10.0, 50) == ""
