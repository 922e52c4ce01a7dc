"""The Prometheus text exposition format (version 0.0.4) of the server's figures.

No I/O here: :func:`render` turns the summed cells of metrics.py into the text a Prometheus
server scrapes.  The format's rules followed here: one ``# HELP`` and one ``# TYPE`` line per
family, before its samples; label values escape backslash, double quote and newline; help
text escapes backslash and newline; a histogram's ``_bucket`` samples are cumulative, in
increasing ``le`` order, ending with ``le="+Inf"``, whose count equals ``_count``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from kakehashi.server.observe.metrics import (
    CELLS,
    DURATION_BOUNDS,
    METHODS,
    PROTOCOL_STATUSES,
    TIMEOUT_PHASES,
    WS_CLOSE_CODES,
)

__all__ = ["CONTENT_TYPE", "escape_help", "escape_label", "format_value", "render", "sample"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PREFIX = "kakehashi_"

Labels = Sequence[tuple[str, str]]


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """Integers without a decimal point; infinities and NaN as the format spells them."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def sample(name: str, labels: Labels, value: float) -> str:
    """One sample line, ``name{label="value",...} number``."""
    if not labels:
        return f"{name} {format_value(value)}"
    inside = ",".join(f'{key}="{escape_label(text)}"' for key, text in labels)
    return f"{name}{{{inside}}} {format_value(value)}"


def _family(name: str, kind: str, help: str, lines: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {escape_help(help)}", f"# TYPE {name} {kind}", *lines]


def _histogram(name: str, help: str, counts: Sequence[float], total: float) -> list[str]:
    """``counts``: observations per bucket (not cumulative), the last one above every bound."""
    lines = []
    running = 0.0
    for bound, count in zip([*DURATION_BOUNDS, math.inf], counts, strict=True):
        running += count
        lines.append(sample(f"{name}_bucket", [("le", format_value(bound))], running))
    lines.append(sample(f"{name}_sum", (), total))
    lines.append(sample(f"{name}_count", (), running))
    return _family(name, "histogram", help, lines)


def _requests(cells: Sequence[float]) -> list[str]:
    lines = []
    for m, method in enumerate(METHODS):
        for status_class in range(10):
            value = cells[CELLS.requests + m * 10 + status_class]
            if value:  # a series appears once it has been seen (bounded: 10 x 10 at most)
                labels = [("method", method), ("status", f"{status_class}xx")]
                lines.append(sample(f"{_PREFIX}requests_total", labels, value))
    return _family(
        f"{_PREFIX}requests_total",
        "counter",
        "Requests the application answered, by method (OTHER for unknown ones) and status class.",
        lines,
    )


def _labelled(name: str, help: str, label: str, values: Iterable[tuple[str, float]]) -> list[str]:
    lines = [sample(name, [(label, key)], value) for key, value in values]
    return _family(name, "counter", help, lines)


def _single(name: str, kind: str, help: str, value: float) -> list[str]:
    return _family(name, kind, help, [sample(name, (), value)])


def _websockets(cells: Sequence[float]) -> list[str]:
    c = CELLS
    p = _PREFIX
    traffic = cells[c.ws_traffic : c.ws_traffic + 4]
    codes = [str(code) for code in WS_CLOSE_CODES] + ["other"]
    pings = cells[c.ws_ping_buckets : c.ws_ping_buckets + len(DURATION_BOUNDS) + 1]
    return [
        *_single(f"{p}websockets_opened_total", "counter", "WebSockets accepted.",
                 cells[c.ws_opened]),
        *_single(f"{p}websockets_open", "gauge", "WebSockets open now.",
                 cells[c.ws_opened] - cells[c.ws_closed]),
        *_labelled(f"{p}websocket_messages_total", "WebSocket messages, by direction "
                   "(in: from clients; added up each tick).", "direction",
                   [("in", traffic[0]), ("out", traffic[1])]),
        *_labelled(f"{p}websocket_bytes_total", "WebSocket bytes on the wire after the "
                   "handshake, by direction.", "direction",
                   [("in", traffic[2]), ("out", traffic[3])]),
        *_labelled(f"{p}websocket_closes_total", "WebSockets ended, by close code (1006: "
                   "no Close frame came).", "code",
                   [(code, cells[c.ws_closes + i]) for i, code in enumerate(codes)]),
        *_histogram(f"{p}websocket_ping_rtt_seconds",
                    "Round trips of the server's keepalive pings.", pings,
                    cells[c.ws_ping_sum]),
    ]  # fmt: skip


def render(cells: Sequence[float]) -> bytes:
    """The exposition text of summed cells (metrics.sum_lanes or WorkerSlots.totals)."""
    c = CELLS
    p = _PREFIX
    buckets = cells[c.buckets : c.buckets + len(DURATION_BOUNDS) + 1]
    open_now = cells[c.opened] - cells[c.closed]
    in_flight = cells[c.busy]
    statuses = [str(s) for s in PROTOCOL_STATUSES] + ["other"]
    lines = [
        *_requests(cells),
        *_single(f"{p}response_body_bytes_total", "counter",
                 "Bytes of response bodies sent (not heads, not chunk framing).",
                 cells[c.body_bytes]),
        *_histogram(f"{p}request_duration_seconds",
                    "From the application called (the head, and a small body, read) to "
                    "the response's last byte handed to the kernel.",
                    buckets, cells[c.duration_sum]),
        *_single(f"{p}connections_accepted_total", "counter", "Connections accepted.",
                 cells[c.opened]),
        *_single(f"{p}connections_open", "gauge", "Connections open now.", open_now),
        *_single(f"{p}connections_in_flight", "gauge",
                 "Connections being served now: reading a request, running the "
                 "application or writing its response (a thread each, on the thread "
                 "engine).", in_flight),
        *_single(f"{p}connections_parked", "gauge",
                 "Open connections with no request being served: idle, or waiting for "
                 "the client.",
                 max(0.0, open_now - in_flight)),
        *_labelled(f"{p}timeouts_total",
                   "Connections closed on a deadline, by phase: silent (no request yet), "
                   "keep_alive (idle after one), head, body.",
                   "phase",
                   [(phase, cells[c.timeouts + i]) for i, phase in enumerate(TIMEOUT_PHASES)]),
        *_labelled(f"{p}protocol_errors_total",
                   "Malformed or refused requests answered with an error, by status.",
                   "status",
                   [(status, cells[c.protocol + i]) for i, status in enumerate(statuses)]),
        *_single(f"{p}application_errors_total", "counter",
                 "Exceptions raised by the application (a 500, or a response cut short).",
                 cells[c.app_errors]),
        *_single(f"{p}worker_restarts_total", "counter",
                 "Worker processes that died and were replaced.", cells[c.restarts]),
        *_single(f"{p}worker_recycles_total", "counter",
                 "Worker processes replaced on purpose (max requests, reload).",
                 cells[c.recycles]),
        *_single(f"{p}access_log_dropped_lines_total", "counter",
                 "Access-log lines dropped because the destination did not keep up.",
                 cells[c.log_dropped]),
        *_websockets(cells),
    ]  # fmt: skip
    return ("\n".join(lines) + "\n").encode("utf-8")
