"""Flood scenario: many idle and slow connections held open, then fresh requests.

    python bench/flood.py [--peers a,b] [--silent 10000] [--trickle 1000] [--fresh 100]

For each peer, one at a time: start the server pinned to core 0 (kakehashi gets
``--header-timeout 10``, the peers keep their defaults); from this process, pinned to
core 1, open ``--silent`` connections that never send a byte and ``--trickle``
connections that send a request head one byte a second (never finishing it within the
bound); then fire ``--fresh`` ``GET /`` requests, each on a new connection, and time them.
The server's RSS (VmRSS, children included) is sampled every 0.5 s. Keep watching the
trickling connections until ``--observe`` seconds after they were opened: count those
answered 408 (or another status), closed without an answer, reset, or still open.

Bars (issue #3): all fresh requests answered, p99 < 50 ms, RSS < 200 MiB, every trickling
connection closed with 408 once the head timeout passes. Results go to stdout (markdown)
and ``bench/out/flood-*.json``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import json
import os
import selectors
import socket
import statistics
import struct
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import peers
from bench.serve_peer import raise_nofile_limit

OUT = peers.ROOT / "bench" / "out"
DEFAULT_PEERS = "waitress,gunicorn-gthread,cheroot,wsgiref,stdlib,kakehashi"
TRICKLE_HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: " + b"a" * 200
FRESH_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
FRESH_TIMEOUT = 10.0  # per fresh request
FRESH_BUDGET = 30.0  # for all fresh requests together
FRESH_DELAY = 2.0  # trickling for this long before the first fresh request
RSS_EVERY = 0.5
_LINGER_RST = struct.pack("ii", 1, 0)  # close with RST: no TIME_WAIT pile-up between peers


@dataclass
class Conn:
    sock: socket.socket
    kind: str  # "silent" | "trickle"
    state: str = "connecting"  # connecting | open | eof | reset | failed
    sent: int = 0
    received: bytes = b""
    ended_at: float | None = None  # seconds after the trickle clock started

    @property
    def status(self) -> int | None:
        line = self.received.split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) >= 2 and line[1].isdigit() else None


class Flood:
    """All silent and trickling connections, driven by one selector in this thread."""

    def __init__(self, host: str, port: int) -> None:
        self.addr = (host, port)
        self.sel = selectors.DefaultSelector()
        self.conns: list[Conn] = []
        self.open_errors: collections.Counter[str] = collections.Counter()
        self.t0 = time.monotonic()

    def open(self, kind: str, count: int, timeout: float) -> float:
        """Start ``count`` non-blocking connects; wait (bounded) for them; return seconds."""
        began = time.monotonic()
        for i in range(count):
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            except OSError as exc:  # EMFILE and friends: stop opening, report it
                self.open_errors[errno.errorcode.get(exc.errno or 0, str(exc))] += count - i
                break
            sock.setblocking(False)
            err = sock.connect_ex(self.addr)
            conn = Conn(sock, kind)
            if err not in (0, errno.EINPROGRESS):
                self.open_errors[errno.errorcode.get(err, str(err))] += 1
                sock.close()
                continue
            self.conns.append(conn)
            self.sel.register(sock, selectors.EVENT_WRITE, conn)
            if len(self.conns) % 500 == 0:
                self.poll(0)
        deadline = began + timeout
        while time.monotonic() < deadline and self.count(kind, "connecting"):
            self.poll(0.1)
        return time.monotonic() - began

    def count(self, kind: str, state: str) -> int:
        return sum(1 for c in self.conns if c.kind == kind and c.state == state)

    def poll(self, timeout: float) -> None:
        for key, mask in self.sel.select(timeout):
            conn: Conn = key.data
            if mask & selectors.EVENT_WRITE and conn.state == "connecting":
                self._connected(conn)
            elif mask & selectors.EVENT_READ:
                self._readable(conn)

    def _end(self, conn: Conn, state: str) -> None:
        conn.state = state
        conn.ended_at = time.monotonic() - self.t0
        self.sel.unregister(conn.sock)

    def _connected(self, conn: Conn) -> None:
        err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._end(conn, "failed")
            return
        conn.state = "open"
        self.sel.modify(conn.sock, selectors.EVENT_READ, conn)

    def _readable(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            self._end(conn, "reset")
            return
        except BlockingIOError:
            return
        if not data:
            self._end(conn, "eof")
        elif len(conn.received) < 4096:
            conn.received += data

    def trickle_tick(self) -> None:
        """Send the next byte of the head on every open trickling connection."""
        for conn in self.conns:
            if conn.kind != "trickle" or conn.state != "open" or conn.received:
                continue
            if conn.sent >= len(TRICKLE_HEAD):
                continue
            try:
                conn.sent += conn.sock.send(TRICKLE_HEAD[conn.sent : conn.sent + 1])
            except (ConnectionResetError, BrokenPipeError):
                self._end(conn, "reset")
            except BlockingIOError:
                pass

    def settled(self) -> bool:
        """No connection, silent or trickling, is still open (or connecting)."""
        return not any(c.state in ("open", "connecting") for c in self.conns)

    def summary(self, kind: str) -> dict[str, Any]:
        mine = [c for c in self.conns if c.kind == kind]
        states = collections.Counter(c.state for c in mine)
        statuses = collections.Counter(str(c.status) for c in mine if c.status is not None)
        ended = sorted(c.ended_at for c in mine if c.ended_at is not None and c.state != "failed")
        return {
            "opened": len(mine),
            "states": dict(states),
            "statuses": dict(statuses),
            "ended_after_s_median": round(statistics.median(ended), 1) if ended else None,
            "ended_after_s_max": round(ended[-1], 1) if ended else None,
        }

    def close_all(self) -> None:
        for conn in self.conns:
            if conn.state in ("open", "connecting"):
                self.sel.unregister(conn.sock)
            with contextlib.suppress(OSError):
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            conn.sock.close()
        self.sel.close()


# ---- fresh requests ---------------------------------------------------------------------


def fresh_request(host: str, port: int) -> tuple[float, str]:
    """One ``GET /`` on a new connection: (seconds, "200" / "404" / error name)."""
    began = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=FRESH_TIMEOUT) as sock:
            sock.settimeout(max(0.1, began + FRESH_TIMEOUT - time.monotonic()))
            sock.sendall(FRESH_REQUEST)
            data = b""
            while b"\r\n\r\n" not in data or not _complete(data):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                sock.settimeout(max(0.1, began + FRESH_TIMEOUT - time.monotonic()))
    except OSError as exc:
        return time.monotonic() - began, type(exc).__name__
    line = data.split(b"\r\n", 1)[0].split()
    outcome = line[1].decode() if len(line) >= 2 and _complete(data) else "incomplete"
    return time.monotonic() - began, outcome


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


@dataclass
class Fresh:
    wanted: int
    concurrency: int
    results: list[tuple[float, str]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def run(self, host: str, port: int) -> None:
        deadline = time.monotonic() + FRESH_BUDGET
        lock = threading.Lock()
        started = [0]

        def worker() -> None:
            while time.monotonic() < deadline:
                with lock:
                    if started[0] >= self.wanted:
                        return
                    started[0] += 1
                result = fresh_request(host, port)
                with lock:
                    self.results.append(result)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(self.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(FRESH_BUDGET + FRESH_TIMEOUT + 5)
        self.done.set()

    def summary(self) -> dict[str, Any]:
        ok = sorted(s for s, outcome in self.results if outcome == "200")
        outcomes = collections.Counter(outcome for _, outcome in self.results)
        return {
            "wanted": self.wanted,
            "attempted": len(self.results),
            "answered_200": len(ok),
            "outcomes": dict(outcomes),
            "p50_ms": _pct(ok, 50),
            "p99_ms": _pct(ok, 99),
            "max_ms": round(ok[-1] * 1000, 1) if ok else None,
        }


def _pct(sorted_s: list[float], pct: int) -> float | None:
    if not sorted_s:
        return None
    index = min(len(sorted_s) - 1, max(0, -(-len(sorted_s) * pct // 100) - 1))
    return round(sorted_s[index] * 1000, 1)


# ---- one peer ---------------------------------------------------------------------------


def _watch(server: peers.Server, flood: Flood, fresh: Fresh, observe: float) -> dict[str, Any]:
    """Trickle, sample RSS and watch until ``observe`` s after t0 (or all settled)."""
    rss_peak = rss_fresh = 0
    rss_fresh_final = False
    max_gap = 0.0  # longest loop iteration: a stalled client would skew the trickle
    next_tick = next_rss = time.monotonic()
    fresh_thread = threading.Thread(target=fresh.run, args=(server.host, server.port), daemon=True)
    fresh_at = flood.t0 + FRESH_DELAY
    end = flood.t0 + observe
    while (now := time.monotonic()) < end:
        if now >= next_tick:
            flood.trickle_tick()
            next_tick = max(next_tick + 1.0, now + 0.5)
        starting = fresh_thread.ident is None and now >= fresh_at
        in_fresh = starting or (fresh_thread.ident is not None and not rss_fresh_final)
        if now >= next_rss or starting or (in_fresh and fresh.done.is_set()):
            rss = peers.rss_bytes(server.pid)
            rss_peak = max(rss_peak, rss)
            if in_fresh:  # sampled as the fresh requests start, during, and as they end
                rss_fresh = max(rss_fresh, rss)
                rss_fresh_final = fresh.done.is_set()
            next_rss = now + RSS_EVERY
        if starting:
            fresh_thread.start()
        if fresh.done.is_set() and flood.settled():
            break
        flood.poll(0.05)
        max_gap = max(max_gap, time.monotonic() - now)
    if fresh_thread.ident is not None:
        fresh_thread.join(FRESH_BUDGET + FRESH_TIMEOUT)
    return {
        "rss_peak_mib": round(rss_peak / 2**20, 1),
        "rss_during_fresh_mib": round(rss_fresh / 2**20, 1),
        "watched_s": round(time.monotonic() - flood.t0, 1),
        "client_max_loop_s": round(max_gap, 2),
    }


def run_peer(name: str, args: argparse.Namespace) -> dict[str, Any]:
    began = time.monotonic()
    report: dict[str, Any] = {"peer": name, "note": peers.PEERS[name].note}
    try:
        server = peers.start(name, OUT / "logs", flood=True, label="flood")
    except RuntimeError as exc:
        report["error"] = f"did not start: {str(exc).splitlines()[0]}"
        return report
    flood = Flood(server.host, server.port)
    try:
        report["silent_connect_s"] = round(flood.open("silent", args.silent, args.connect), 1)
        flood.t0 = time.monotonic()
        report["trickle_connect_s"] = round(flood.open("trickle", args.trickle, args.connect), 1)
        fresh = Fresh(args.fresh, args.fresh_concurrency)
        report.update(_watch(server, flood, fresh, args.observe))
        report["fresh"] = fresh.summary()
        report["silent"] = flood.summary("silent")
        report["trickle"] = flood.summary("trickle")
        report["open_errors"] = dict(flood.open_errors)
        report["server_alive"] = server.proc.poll() is None
    finally:
        flood.close_all()
        report["exit_status"] = server.stop()
        report["total_s"] = round(time.monotonic() - began, 1)
    return report


# ---- report -----------------------------------------------------------------------------


def _states(part: dict[str, Any]) -> str:
    bits = [f"{k} {v}" for k, v in sorted(part["states"].items())]
    bits += [f"HTTP {k}: {v}" for k, v in sorted(part["statuses"].items())]
    if part["ended_after_s_median"] is not None:
        bits.append(f"ended ~{part['ended_after_s_median']} s")
    return ", ".join(bits)


def markdown(reports: list[dict[str, Any]]) -> str:
    lines = [
        "| peer | fresh answered | p50 ms | p99 ms | max ms | peak RSS MiB "
        "| trickling conns | silent conns |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        if "fresh" not in r:
            lines.append(f"| {r['peer']} | {r.get('error', 'failed')} | | | | | | |")
            continue
        f = r["fresh"]
        answered = f"{f['answered_200']}/{f['wanted']}"
        others = {k: v for k, v in f["outcomes"].items() if k != "200"}
        if f["attempted"] < f["wanted"]:
            others["not tried in budget"] = f["wanted"] - f["attempted"]
        if others:
            answered += " (" + ", ".join(f"{k} {v}" for k, v in others.items()) + ")"
        row = [
            r["peer"],
            answered,
            *(str(f[k]) if f[k] is not None else "-" for k in ("p50_ms", "p99_ms", "max_ms")),
            str(r["rss_peak_mib"]),
            _states(r["trickle"]),
            _states(r["silent"]),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/flood.py", description=__doc__)
    parser.add_argument("--peers", default=DEFAULT_PEERS)
    parser.add_argument("--silent", type=int, default=10_000)
    parser.add_argument("--trickle", type=int, default=1_000)
    parser.add_argument("--fresh", type=int, default=100)
    parser.add_argument("--fresh-concurrency", type=int, default=1)
    parser.add_argument("--connect", type=float, default=10.0, help="bound per connect phase")
    parser.add_argument("--observe", type=float, default=40.0, help="watch trickle this long")
    args = parser.parse_args(argv)
    args.observe = max(FRESH_DELAY + 1, min(args.observe, 120.0))
    args.connect = max(1.0, min(args.connect, 30.0))
    names = [n.strip() for n in args.peers.split(",") if n.strip()]
    unknown = [n for n in names if n not in peers.PEERS]
    if unknown:
        parser.error(f"unknown peers: {', '.join(unknown)}")
    raise_nofile_limit()
    os.sched_setaffinity(0, {int(peers.CLIENT_CPU)})

    before = peers.versions()
    reports = []
    for name in names:
        print(f"# flood / {name} ...", file=sys.stderr, flush=True)
        reports.append(run_peer(name, args))
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    after = peers.versions()
    warning = peers.moved(before, after)
    raw = {
        "when": stamp,
        "versions": after,
        "versions_at_start": before,
        "warning": warning,
        "options": vars(args),
        "reports": reports,
    }
    path = OUT / f"flood-{stamp}.json"
    path.write_text(json.dumps(raw, indent=2) + "\n")
    print(markdown(reports))
    if warning:
        print(f"\nWARNING: {warning}")
    print(f"\nraw results: {path.relative_to(peers.ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
