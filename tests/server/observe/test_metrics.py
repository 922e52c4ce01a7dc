"""The metrics recorder, the pre-fork slots and the exposition format, without a server.

The exposition is read back with prometheus_client's own parser (a test dependency), so the
format is checked by an implementation other than ours.
"""

from __future__ import annotations

import math
import os
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kakehashi.errors import ConfigError
from kakehashi.server import ServerConfig
from kakehashi.server.observe.exposition import (
    escape_help,
    escape_label,
    format_value,
    render,
    sample,
)
from kakehashi.server.observe.metrics import (
    BATCH,
    CELLS,
    DURATION_BOUNDS,
    Recorder,
    WorkerSlots,
    lanes_for,
    sum_lanes,
)


def families(cells: list[float]) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(render(cells).decode())}


def samples(cells: list[float]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(render(cells).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def run_requests(recorder: Recorder, count: int, method: bytes = b"GET", status: int = 200) -> None:
    for _ in range(count):
        recorder.response(method, status, 10, 0.001)


# -- the exposition format -----------------------------------------------------------------------


def test_label_values_escape_backslash_quote_and_newline() -> None:
    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    line = sample("x_total", [("path", 'C:\\dir "q"\nnext')], 3)
    assert line == 'x_total{path="C:\\\\dir \\"q\\"\\nnext"} 3'
    # prometheus_client reads the escaped value back to the original.
    parsed = next(iter(text_string_to_metric_families(f"# TYPE x_total counter\n{line}\n")))
    assert parsed.samples[0].labels == {"path": 'C:\\dir "q"\nnext'}


def test_help_escapes_backslash_and_newline_but_not_quotes() -> None:
    assert escape_help('one\\two\nthree "q"') == 'one\\\\two\\nthree "q"'


def test_values() -> None:
    assert format_value(1000.0) == "1000"
    assert format_value(0.25) == "0.25"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(math.nan) == "NaN"
    assert format_value(2.0**60) == repr(2.0**60)  # too large to print as an exact integer


def test_histogram_buckets_are_cumulative_and_end_with_inf() -> None:
    cells = [0.0] * CELLS.count
    # 2 under the first bound, 3 in the fourth bucket, 1 above every bound.
    cells[CELLS.buckets] = 2
    cells[CELLS.buckets + 3] = 3
    cells[CELLS.buckets + len(DURATION_BOUNDS)] = 1
    cells[CELLS.duration_sum] = 42.5
    family = families(cells)["kakehashi_request_duration_seconds"]
    assert family.type == "histogram"
    buckets = [(s.labels["le"], s.value) for s in family.samples if s.name.endswith("_bucket")]
    assert [le for le, _ in buckets] == [format_value(b) for b in DURATION_BOUNDS] + ["+Inf"]
    counts = [value for _, value in buckets]
    assert counts == sorted(counts)  # cumulative
    assert counts[0] == 2 and counts[2] == 2 and counts[3] == 5 and counts[-2] == 5
    assert counts[-1] == 6
    by_name = {s.name: s.value for s in family.samples if not s.name.endswith("_bucket")}
    assert by_name == {
        "kakehashi_request_duration_seconds_sum": 42.5,
        "kakehashi_request_duration_seconds_count": 6,
    }


def test_every_family_has_help_and_type_and_parses() -> None:
    text = render([0.0] * CELLS.count).decode()
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    helps = [line.split()[2] for line in text.splitlines() if line.startswith("# HELP")]
    assert names == helps and len(names) == len(set(names))
    assert text.endswith("\n")
    parsed = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert parsed["kakehashi_requests"] == "counter"
    assert parsed["kakehashi_connections_open"] == "gauge"
    assert parsed["kakehashi_request_duration_seconds"] == "histogram"
    assert len(parsed) == len(names)


def test_gauges_come_from_counters_and_busy_lanes() -> None:
    cells = [0.0] * CELLS.count
    cells[CELLS.opened], cells[CELLS.closed], cells[CELLS.busy] = 10, 4, 2
    got = samples(cells)
    assert got[("kakehashi_connections_open", ())] == 6
    assert got[("kakehashi_connections_in_flight", ())] == 2
    assert got[("kakehashi_connections_parked", ())] == 4
    assert got[("kakehashi_connections_accepted_total", ())] == 10


# -- the recorder ----------------------------------------------------------------------------


def test_recorder_counts_by_method_and_status_class() -> None:
    recorder = Recorder.private(threads=2)
    run_requests(recorder, 3, b"GET", 200)
    run_requests(recorder, 2, b"POST", 404)
    run_requests(recorder, 1, b"BREW", 503)  # not a known method: OTHER
    recorder.app_error(b"GET", 200, head_sent=False, seconds=0.001)  # the 500 that replaced it
    got = samples(recorder.totals())
    requests = {k[1]: v for k, v in got.items() if k[0] == "kakehashi_requests_total"}
    assert requests == {
        (("method", "GET"), ("status", "2xx")): 3,
        (("method", "POST"), ("status", "4xx")): 2,
        (("method", "OTHER"), ("status", "5xx")): 1,
        (("method", "GET"), ("status", "5xx")): 1,
    }
    assert got[("kakehashi_application_errors_total", ())] == 1
    assert got[("kakehashi_response_body_bytes_total", ())] == 60
    assert got[("kakehashi_request_duration_seconds_count", ())] == 7
    assert got[("kakehashi_connections_in_flight", ())] == 0


def test_timeouts_protocol_errors_and_dropped_lines() -> None:
    recorder = Recorder.private(threads=1)
    recorder.timed_out("idle", 0)
    recorder.timed_out("idle", 3)
    recorder.timed_out("idle", 1)
    recorder.timed_out("body", 1)
    recorder.refused(431)
    recorder.refused(299)  # not a protocol error status: "other", so labels stay bounded
    recorder.log_dropped = lambda: 7
    got = samples(recorder.totals())
    assert got[("kakehashi_timeouts_total", (("phase", "silent"),))] == 1
    assert got[("kakehashi_timeouts_total", (("phase", "keep_alive"),))] == 2
    assert got[("kakehashi_timeouts_total", (("phase", "head"),))] == 0
    assert got[("kakehashi_timeouts_total", (("phase", "body"),))] == 1
    assert got[("kakehashi_protocol_errors_total", (("status", "431"),))] == 1
    assert got[("kakehashi_protocol_errors_total", (("status", "other"),))] == 1
    assert got[("kakehashi_access_log_dropped_lines_total", ())] == 7


def test_threads_write_lanes_of_their_own_so_no_increment_is_lost() -> None:
    recorder = Recorder.private(threads=4)
    barrier = threading.Barrier(4)

    def work() -> None:
        run_requests(recorder, 1)  # each thread claims its lane while all are alive
        barrier.wait()
        run_requests(recorder, 4999)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    totals = recorder.totals()
    assert totals[CELLS.requests + 2] == 20000  # GET, 2xx
    assert sum(totals[CELLS.buckets : CELLS.buckets + len(DURATION_BOUNDS) + 1]) == 20000
    used = [lane for lane in recorder.lanes if lane[CELLS.requests + 2]]
    assert len(used) == 4  # one lane per thread


def test_a_dead_threads_lane_is_reused_and_keeps_its_counts() -> None:
    recorder = Recorder.private(threads=1)
    for _ in range(lanes_for(1) * 3):  # more threads over time than there are lanes
        thread = threading.Thread(target=run_requests, args=(recorder, 10))
        thread.start()
        thread.join()
    assert recorder.totals()[CELLS.requests + 2] == lanes_for(1) * 3 * 10


def test_sum_lanes_adds_cell_by_cell() -> None:
    one, two = [1.0] * CELLS.count, [2.0] * CELLS.count
    assert sum_lanes([one, two]) == [3.0] * CELLS.count


def test_responses_are_added_up_in_batches_and_read_exactly() -> None:
    recorder = Recorder.private(threads=1)
    run_requests(recorder, BATCH * 3 + 5)
    pending = [len(lane[CELLS.count]) for lane in recorder.lanes]
    assert max(pending) < BATCH  # a thread adds up its own once BATCH gather: bounded
    assert sum(pending) == 5  # the rest wait, not lost...
    totals = recorder.totals()  # ...and a reader adds them up before reading
    assert totals[CELLS.requests + 2] == BATCH * 3 + 5
    assert totals[CELLS.body_bytes] == (BATCH * 3 + 5) * 10
    assert sum(totals[CELLS.buckets : CELLS.buckets + len(DURATION_BOUNDS) + 1]) == BATCH * 3 + 5
    assert not any(lane[CELLS.count] for lane in recorder.lanes)


def test_in_flight_is_asked_of_the_server_when_read() -> None:
    # No store per request says one began or ended: the server counts the connections its
    # threads serve when the figures are read (tests/integration/test_metrics.py).
    recorder = Recorder.private(threads=1)
    serving = [2.0]
    recorder.in_flight = lambda: serving[0]
    assert recorder.totals()[CELLS.busy] == 2
    serving[0] = 0.0
    assert recorder.totals()[CELLS.busy] == 0


# -- pre-fork slots ------------------------------------------------------------------------


def test_a_forked_workers_counts_reach_the_parent_and_survive_its_death() -> None:
    slots = WorkerSlots(workers=2, threads=2)
    first = slots.reserve()
    pid = os.fork()
    if pid == 0:  # the worker: count, then die without cleanup
        try:
            recorder = slots.recorder(first)
            run_requests(recorder, 250)
            recorder.opened()
            recorder.log_dropped = lambda: 3
            recorder.in_flight = lambda: 1.0  # a connection a thread was serving
            recorder.publish()
        finally:
            os._exit(0)
    slots.spawned(pid, first)
    os.waitpid(pid, 0)
    assert slots.totals()[CELLS.requests + 2] == 250  # read from the shared slot
    assert slots.totals()[CELLS.opened] - slots.totals()[CELLS.closed] == 1
    assert slots.totals()[CELLS.log_dropped] == 3
    assert slots.totals()[CELLS.busy] == 1
    slots.retire(pid, replaced=True)
    totals = slots.totals()
    assert totals[CELLS.requests + 2] == 250  # folded into the retired total
    assert totals[CELLS.opened] - totals[CELLS.closed] == 0  # its connections died with it
    assert totals[CELLS.busy] == 0
    assert totals[CELLS.restarts] == 1
    # A new worker in the freed slot starts from zero; the totals only grow.
    again = None
    for _ in range(slots.slots):
        again = slots.reserve()
        if again == first:
            break
    assert again == first and not any(slots._slot_totals(again))
    slots.spawned(pid + 1, again)  # a pid of no process: only the bookkeeping is used
    recorder = slots.recorder(again)
    run_requests(recorder, 5)
    assert slots.totals()[CELLS.requests + 2] == 250  # not published yet
    recorder.publish()
    assert slots.totals()[CELLS.requests + 2] == 255
    slots.retire(pid + 1, recycled=True)
    assert slots.totals()[CELLS.recycles] == 1 and slots.totals()[CELLS.restarts] == 1


def test_slots_run_out_gracefully() -> None:
    slots = WorkerSlots(workers=1, threads=1)
    taken = [slots.reserve() for _ in range(slots.slots)]
    assert None not in taken
    assert slots.reserve() is None
    run_requests(slots.recorder(None), 3)  # a private recorder: counted, not exported
    assert slots.totals()[CELLS.requests + 2] == 0


# -- the setting ---------------------------------------------------------------------------


def test_metrics_bind_is_validated() -> None:
    assert ServerConfig().metrics_bind == ""  # off by default
    assert ServerConfig(metrics_bind="127.0.0.1:9100").metrics_bind == "127.0.0.1:9100"
    with pytest.raises(ConfigError, match="not a Unix socket"):
        ServerConfig(metrics_bind="unix:/tmp/m.sock")
    with pytest.raises(ConfigError, match="HOST:PORT"):
        ServerConfig(metrics_bind="nowhere")
    with pytest.raises(ConfigError, match="also a --bind address"):
        ServerConfig(bind=("127.0.0.1:8000",), metrics_bind="127.0.0.1:8000")
