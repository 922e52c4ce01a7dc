"""Metrics: what the server counts, in flat rows of float cells, one lane per thread.

Cost is the design constraint (at most 3% of keep-alive throughput), so recording a request
takes no lock and allocates no container: each thread that records owns a *lane*, a fixed
list of float cells, and only ever writes its own lane with plain item stores.  A lane is
claimed once per thread (under a lock, on first use) and remembered in a thread-local.  The
reader (the /metrics exporter) sums the lanes cell by cell: every counter cell only grows,
so a sum read while threads write is at worst a moment old, never torn or lower.

Pre-fork workers (:class:`WorkerSlots`): the parent creates an anonymous shared ``mmap``
before it forks, one *slot* of float64 lanes per worker.  Each worker *publishes* its lanes
into its slot, cell by cell (8-byte stores, so the parent never reads half a number), on the
server's sweeper tick and at shutdown; the parent reads every slot without a pipe or a
daemon.  Lanes are Python lists and not views of the shared memory because a list item
update costs a fifth of a memoryview's, and that is most of the per-request cost; the price
is that the parent's figures lag a worker's by one tick (0.5 s at most), and a worker killed
outright loses what it counted since its last tick.  When the parent reaps a worker it folds
that slot into a *retired* total it keeps, so replacing a worker never lowers a counter.

Gauges come from counters or from the server's state when read: connections open = opened
- closed; in flight = the connections being served right now (the engine counts them for
:meth:`Recorder.totals` and :meth:`Recorder.publish`: the thread engine's poller, the asyncio
engine's server), so a request costs no store to say it began or ended.

A response is not added up on the request's path: its thread appends ``(method, status,
bytes, seconds)`` to its lane's *pending* deque (after the cells, at ``_PENDING``), and the
figures are added in one loop once BATCH have gathered, into the same lane.  Done in a
loop, the adding costs far less than done alone on each request's path (about 2.5 µs of
server CPU less per keep-alive request, bench/RESULTS.md).  A reader (:meth:`Recorder.totals`,
:meth:`Recorder.publish`) first adds what is pending in every lane into a lane of its own,
taking items with ``popleft`` (atomic), so each is counted once and every lane still has a
single writer.
"""

from __future__ import annotations

import mmap
import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

__all__ = [
    "BATCH",
    "CELLS",
    "DURATION_BOUNDS",
    "METHODS",
    "PROTOCOL_STATUSES",
    "TIMEOUT_PHASES",
    "WS_CLOSE_CODES",
    "Cells",
    "LaneList",
    "Recorder",
    "WorkerSlots",
    "sum_lanes",
]

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER")
# Seconds.  Prometheus's defaults start at 5 ms; a fast WSGI server answers in well under a
# millisecond, so the low end is finer.  The top bound is past the default send timeout.
DURATION_BOUNDS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
# The statuses a RemoteProtocolError carries (errors.py); anything else counts as "other".
PROTOCOL_STATUSES = (400, 408, 413, 414, 417, 431, 501, 505)
# Where a parked connection ran out of time (channel.py's expire): a new connection that
# never completed a head, an idle keep-alive connection, a partial head, a slow body.
TIMEOUT_PHASES = ("silent", "keep_alive", "head", "body")
_CLASSES = 10  # status // 100 for a three-digit status
# The close codes counted on their own (RFC 6455 §7.4.1); any other counts as "other".
WS_CLOSE_CODES = (1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012)


@dataclass(frozen=True)
class Cells:
    """Where each figure lives in a lane (indices into a float64 array)."""

    requests: int = 0  # [method * 10 + status // 100]
    body_bytes: int = len(METHODS) * _CLASSES
    buckets: int = body_bytes + 1  # one per bound, then the one above the last (+Inf)
    duration_sum: int = buckets + len(DURATION_BOUNDS) + 1
    opened: int = duration_sum + 1
    closed: int = opened + 1
    timeouts: int = closed + 1  # [TIMEOUT_PHASES.index(phase)]
    protocol: int = timeouts + len(TIMEOUT_PHASES)  # [PROTOCOL_STATUSES index], then other
    app_errors: int = protocol + len(PROTOCOL_STATUSES) + 1
    log_dropped: int = app_errors + 1  # set from the access log's own count
    restarts: int = log_dropped + 1  # written by the parent only (its retired total)
    recycles: int = restarts + 1
    ws_opened: int = recycles + 1  # WebSockets accepted (open now: opened - closed)
    ws_closed: int = ws_opened + 1
    ws_traffic: int = ws_closed + 1  # messages in, messages out, bytes in, bytes out
    ws_closes: int = ws_traffic + 4  # [WS_CLOSE_CODES index], then other
    ws_ping_buckets: int = ws_closes + len(WS_CLOSE_CODES) + 1  # like buckets
    ws_ping_sum: int = ws_ping_buckets + len(DURATION_BOUNDS) + 1
    busy: int = ws_ping_sum + 1  # a gauge, set when read: connections being served
    count: int = busy + 1


CELLS = Cells()
# A published lane is padded to whole cache lines (64 bytes), one worker's never sharing a
# line with another's.
_LANE_CELLS = -(-CELLS.count // 8) * 8
_LANE_BYTES = _LANE_CELLS * 8
_METHOD_BASE = {name.encode("ascii"): i * _CLASSES for i, name in enumerate(METHODS[:-1])}
_OTHER_BASE = (len(METHODS) - 1) * _CLASSES
_TIMEOUT_CELL = {phase: CELLS.timeouts + i for i, phase in enumerate(TIMEOUT_PHASES)}
_PROTOCOL_CELL = {status: CELLS.protocol + i for i, status in enumerate(PROTOCOL_STATUSES)}
_PROTOCOL_OTHER = CELLS.protocol + len(PROTOCOL_STATUSES)
_WS_CLOSE_CELL = {code: CELLS.ws_closes + i for i, code in enumerate(WS_CLOSE_CODES)}
_WS_CLOSE_OTHER = CELLS.ws_closes + len(WS_CLOSE_CODES)
# The hot path reads module constants, not attributes.
_BODY_BYTES, _BUCKETS, _SUM = CELLS.body_bytes, CELLS.buckets, CELLS.duration_sum
# Threads beyond the application's that record: the sweeper, the thread that shuts the
# server down, and room for worker threads that replace dead ones while these still run.
_SPARE_LANES = 4
# Where a lane keeps its responses not yet added up (a deque after the cells), and how many
# make its thread add them.
_PENDING = CELLS.count
BATCH = 64
# A lane: CELLS.count float cells, then its pending deque.
LaneList = list[Any]


class Lane(Protocol):
    """A published lane's float64 cells (a memoryview cast to "d", typed by what is used)."""

    def __getitem__(self, index: int, /) -> float: ...
    def __setitem__(self, index: int, value: float, /) -> None: ...
    def tolist(self) -> list[float]: ...


def lanes_for(threads: int) -> int:
    """How many lanes a server with ``threads`` worker threads needs."""
    return threads + _SPARE_LANES


def sum_lanes(lanes: Iterable[Sequence[float]]) -> list[float]:
    """Every cell summed over ``lanes`` (the reader's side; takes no lock)."""
    total = [0.0] * CELLS.count
    for lane in lanes:
        for index, value in enumerate(lane[: CELLS.count]):
            total[index] += value
    return total


def _lanes(buffer: memoryview, count: int) -> list[Lane]:
    views = [buffer[i * _LANE_BYTES : (i + 1) * _LANE_BYTES].cast("d") for i in range(count)]
    return cast(list[Lane], views)


class Recorder:
    """The recording side of one server process; every method is safe from any thread.

    Owns: ``lanes`` (each written only by the thread that claimed it), the claim table
    (under ``_lock``) and the thread-local that remembers each thread's lane.  If more
    threads record than there are lanes, the extra ones share the last lane and an
    increment may then be lost to a race (never a crash); :func:`lanes_for` leaves room.

    ``shared``: a worker's slot, written by :meth:`publish` only.  ``log_dropped``: returns
    how many access-log lines this process dropped so far (the log keeps that count);
    ``in_flight``: how many connections are being served now (the engine counts them).
    """

    __slots__ = ("_local", "_lock", "_owners", "_shared", "in_flight", "lanes", "log_dropped")

    def __init__(self, lanes: int, shared: list[Lane] | None = None) -> None:
        self.lanes: list[LaneList] = [[0.0] * CELLS.count + [deque()] for _ in range(lanes)]
        self._shared = shared
        self.log_dropped: Callable[[], float] = lambda: 0.0
        self.in_flight: Callable[[], float] = lambda: 0.0
        self._owners: list[threading.Thread | None] = [None] * lanes
        self._lock = threading.Lock()
        self._local = threading.local()

    @classmethod
    def private(cls, threads: int) -> Recorder:
        """A recorder for one process (its figures are read with :meth:`totals`)."""
        return cls(lanes_for(threads))

    def publish(self) -> None:
        """Copy the lanes into the shared slot, if any (the sweeper's tick, shutdown)."""
        if self._shared is None:
            return
        self._add_pending()
        for lane, shared in zip(self.lanes, self._shared, strict=True):
            for index, value in enumerate(lane[: CELLS.count]):
                shared[index] = value
        self._shared[0][CELLS.log_dropped] = self.log_dropped()
        self._shared[0][CELLS.busy] = self.in_flight()

    def _claim(self) -> LaneList:
        me = threading.current_thread()
        with self._lock:
            for index, owner in enumerate(self._owners):
                if owner is None or not owner.is_alive():
                    self._owners[index] = me
                    lane = self.lanes[index]
                    break
            else:
                lane = self.lanes[-1]
        self._local.lane = lane
        return lane

    # -- the hot path: a thread-local read and an append to the thread's own lane ------------

    def response(self, method: bytes, status: int, body_bytes: int, seconds: float) -> None:
        """The application's response went out, ``seconds`` after its request began: count it,
        its body and its duration (once BATCH have gathered in this thread's lane)."""
        try:
            lane: LaneList = self._local.lane
        except AttributeError:
            lane = self._claim()
        pending = lane[_PENDING]
        pending.append((method, status, body_bytes, seconds))
        if len(pending) >= BATCH:
            _add_up(pending, lane)

    def _add_pending(self) -> None:
        """Add up what waits in every lane, into this (reading) thread's lane."""
        mine = self._own_lane()
        for lane in self.lanes:
            if lane[_PENDING]:
                _add_up(lane[_PENDING], mine)

    # -- rarer events -------------------------------------------------------------------------

    def _own_lane(self) -> LaneList:
        try:
            lane: LaneList = self._local.lane
        except AttributeError:
            lane = self._claim()
        return lane

    def _add(self, cell: int) -> None:
        self._own_lane()[cell] += 1.0

    def opened(self) -> None:
        self._add(CELLS.opened)

    def closed(self) -> None:
        self._add(CELLS.closed)

    def timed_out(self, phase: str, served: int) -> None:
        """A parked connection's deadline passed in channel phase ``phase`` (idle, head or
        body); an idle one is a keep-alive timeout once it ``served`` a request."""
        if phase == "idle":
            phase = "keep_alive" if served else "silent"
        self._add(_TIMEOUT_CELL.get(phase, CELLS.timeouts))

    def refused(self, status: int) -> None:
        """A protocol error was answered with ``status``."""
        self._add(_PROTOCOL_CELL.get(status, _PROTOCOL_OTHER))

    def app_error(self, method: bytes, status: int, head_sent: bool, seconds: float) -> None:
        """The application raised, ``seconds`` after its request began: its response is a 500
        unless its head went out."""
        self._add(CELLS.app_errors)
        self.response(method, status if head_sent else 500, 0, seconds)

    def websocket_opened(self) -> None:
        self._add(CELLS.ws_opened)

    def websocket_traffic(self, messages_in: int, messages_out: int, in_: int, out: int) -> None:
        """Messages and bytes each way since the last call for that WebSocket (the engine
        adds them up per tick and at the close, not per message)."""
        lane = self._own_lane()
        base = CELLS.ws_traffic
        lane[base] += messages_in
        lane[base + 1] += messages_out
        lane[base + 2] += in_
        lane[base + 3] += out

    def websocket_closed(self, code: int) -> None:
        """A WebSocket ended with ``code`` (the Close frame's, 1006 without one)."""
        lane = self._own_lane()
        lane[CELLS.ws_closed] += 1.0
        lane[_WS_CLOSE_CELL.get(code, _WS_CLOSE_OTHER)] += 1.0

    def ping_rtt(self, seconds: float) -> None:
        """A keepalive ping's pong came back after ``seconds``."""
        lane = self._own_lane()
        lane[CELLS.ws_ping_buckets + bisect_left(DURATION_BOUNDS, seconds)] += 1.0
        lane[CELLS.ws_ping_sum] += seconds

    def totals(self) -> list[float]:
        self._add_pending()
        total = sum_lanes(self.lanes)
        total[CELLS.log_dropped] = self.log_dropped()
        total[CELLS.busy] = self.in_flight()
        return total


def _add_up(pending: deque[tuple[bytes, int, int, float]], lane: LaneList) -> None:
    """Count the responses waiting in ``pending`` into ``lane`` (its owner's thread).

    Bytes and durations are summed in locals and added once; the constants are locals too
    (this loop runs once per response)."""
    take = pending.popleft
    bases, other, bounds, buckets = _METHOD_BASE, _OTHER_BASE, DURATION_BOUNDS, _BUCKETS
    body_total = seconds_total = 0.0
    while pending:
        try:
            method, status, body_bytes, seconds = take()
        except IndexError:  # another reader took the last one
            break
        lane[bases.get(method, other) + status // 100 % _CLASSES] += 1.0
        lane[buckets + bisect_left(bounds, seconds)] += 1.0
        body_total += body_bytes
        seconds_total += seconds
    lane[_BODY_BYTES] += body_total
    lane[_SUM] += seconds_total


class WorkerSlots:
    """The parent's view of pre-fork workers' figures: one slot of lanes per worker in an
    anonymous shared mmap, and the retired total of workers that are gone.

    Create it in the parent before forking.  Owned by the parent: ``_free``, ``_pids`` and
    ``_retired`` change under ``_lock`` (the exporter thread reads them too).  A child only
    writes its own slot, through :meth:`recorder`.
    """

    def __init__(self, workers: int, threads: int) -> None:
        # A replacement may start before the worker it replaces is gone (rolling restarts).
        self.slots = workers * 2 + 2
        self.lanes = lanes_for(threads)
        self._map = mmap.mmap(-1, self.slots * self.lanes * _LANE_BYTES)
        view = memoryview(self._map)
        size = self.lanes * _LANE_BYTES
        self._slots = [view[i * size : (i + 1) * size] for i in range(self.slots)]
        self._free = list(range(self.slots))
        self._pids: dict[int, int] = {}
        self._retired = [0.0] * CELLS.count
        self._lock = threading.Lock()

    def reserve(self) -> int | None:
        """A zeroed slot for a worker about to be forked; None if all are taken."""
        with self._lock:
            if not self._free:
                return None
            slot = self._free.pop(0)
            self._slots[slot][:] = bytes(len(self._slots[slot]))
            return slot

    def recorder(self, slot: int | None) -> Recorder:
        """In the child: the recorder writing slot ``slot`` (a private one without a slot,
        whose figures the parent cannot see)."""
        if slot is None:
            return Recorder(self.lanes)
        return Recorder(self.lanes, _lanes(self._slots[slot], self.lanes))

    def spawned(self, pid: int, slot: int | None) -> None:
        """In the parent, after fork: ``pid`` writes ``slot``."""
        if slot is not None:
            with self._lock:
                self._pids[pid] = slot

    def retire(self, pid: int, replaced: bool = False, recycled: bool = False) -> None:
        """In the parent, once ``pid`` is reaped: fold its slot into the retired total and free
        the slot.  ``replaced``: it died and another is started (a restart); ``recycled``: it
        was replaced on purpose (max requests, reload)."""
        with self._lock:
            slot = self._pids.pop(pid, None)
            if slot is not None:
                self._fold(self._slot_totals(slot))
                self._free.append(slot)
            if recycled:
                self._retired[CELLS.recycles] += 1
            elif replaced:
                self._retired[CELLS.restarts] += 1

    def _fold(self, final: list[float]) -> None:
        # Its connections are all closed now, and it runs nothing.
        final[CELLS.closed] = final[CELLS.opened]
        final[CELLS.busy] = 0.0
        for index, value in enumerate(final):
            self._retired[index] += value

    def totals(self) -> list[float]:
        """Retired totals plus every live worker's figures."""
        with self._lock:
            total = list(self._retired)
            for slot in self._pids.values():
                for index, value in enumerate(self._slot_totals(slot)):
                    total[index] += value
        return total

    def _slot_totals(self, slot: int) -> list[float]:
        return sum_lanes(lane.tolist() for lane in _lanes(self._slots[slot], self.lanes))
