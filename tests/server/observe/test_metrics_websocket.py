"""The WebSocket figures: recorded per lane, exposed as Prometheus families that parse."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from kakehashi.server.observe.exposition import render
from kakehashi.server.observe.metrics import CELLS, Recorder


def samples(cells: list[float]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(render(cells).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_opened_closed_traffic_codes_and_ping_round_trips() -> None:
    recorder = Recorder.private(threads=1)
    for _ in range(3):
        recorder.websocket_opened()
    recorder.websocket_traffic(5, 4, 500, 400)
    recorder.websocket_traffic(1, 0, 10, 0)
    recorder.websocket_closed(1000)
    recorder.websocket_closed(4000)  # an application's own code counts as "other"
    recorder.ping_rtt(0.002)
    recorder.ping_rtt(40.0)  # above every bound: +Inf only
    got = samples(recorder.totals())
    p = "kakehashi_"
    assert got[(f"{p}websockets_opened_total", ())] == 3
    assert got[(f"{p}websockets_open", ())] == 1
    assert got[(f"{p}websocket_messages_total", (("direction", "in"),))] == 6
    assert got[(f"{p}websocket_messages_total", (("direction", "out"),))] == 4
    assert got[(f"{p}websocket_bytes_total", (("direction", "in"),))] == 510
    assert got[(f"{p}websocket_bytes_total", (("direction", "out"),))] == 400
    assert got[(f"{p}websocket_closes_total", (("code", "1000"),))] == 1
    assert got[(f"{p}websocket_closes_total", (("code", "other"),))] == 1
    assert got[(f"{p}websocket_closes_total", (("code", "1006"),))] == 0
    assert got[(f"{p}websocket_ping_rtt_seconds_count", ())] == 2
    assert got[(f"{p}websocket_ping_rtt_seconds_bucket", (("le", "0.0025"),))] == 1
    assert got[(f"{p}websocket_ping_rtt_seconds_bucket", (("le", "30"),))] == 1
    assert got[(f"{p}websocket_ping_rtt_seconds_bucket", (("le", "+Inf"),))] == 2
    assert abs(got[(f"{p}websocket_ping_rtt_seconds_sum", ())] - 40.002) < 1e-9


def test_the_websocket_cells_do_not_overlap_the_others() -> None:
    websocket = range(CELLS.ws_opened, CELLS.busy)
    assert CELLS.recycles < CELLS.ws_opened and CELLS.busy == CELLS.count - 1
    assert len(websocket) == 2 + 4 + 13 + 18 + 1
