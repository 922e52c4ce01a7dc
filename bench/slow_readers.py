"""Slow-reader scenario: N clients reading a streamed response at 1 KB/s, and wrk on GET /.

    python bench/slow_readers.py [--peers a,b] [--readers 8] [--duration 10] [--repeat 1]

For each peer, one at a time: start the server pinned to core 0; from this process (pinned
to core 1 with wrk) open ``--readers`` connections that each ask for ``GET /stream`` (20 MB,
streamed with no length) and then read it at about ``--rate`` bytes a second through a
small receive buffer, so the server cannot push the response out; after a second, run
``wrk -c10`` on ``GET /`` for ``--duration`` seconds and record req/s and p99 of those fast
clients. A server whose threads wait on slow readers answers the fast clients late or not
at all. Ratios are to waitress in the same run. Results: markdown on stdout, JSON under
``bench/out/slow-readers-*.json``.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import peers
from bench.run_server import Result, Scenario, add_ratios, combine, parse_wrk, run_wrk, wrk_argv
from bench.serve_peer import raise_nofile_limit

OUT = peers.ROOT / "bench" / "out"
DEFAULT_PEERS = "waitress,gunicorn-gthread,cheroot,kakehashi"
FAST = Scenario("slow-readers", "/", 10, "GET / hello, keep-alive, 10 connections")
READ_STEP = 0.25  # seconds between a slow reader's reads
RCVBUF = 4096


@dataclass
class ReaderStats:
    received: int = 0
    failed: str = ""


def _slow_reader(port: int, rate: int, until: float, stats: ReaderStats) -> None:
    """Ask for /stream and read it at ``rate`` B/s until ``until`` (bounded by time)."""
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        step = max(1, int(rate * READ_STEP))
        with sock:
            while time.monotonic() < until:
                data = sock.recv(step)
                if not data:
                    stats.failed = "closed by the server"
                    return
                stats.received += len(data)
                time.sleep(READ_STEP)
    except OSError as exc:
        stats.failed = type(exc).__name__


def measure(peer: str, args: argparse.Namespace) -> tuple[Result, list[ReaderStats]]:
    result = Result(FAST.name, peer)
    stats = [ReaderStats() for _ in range(args.readers)]
    try:
        server = peers.start(peer, OUT / "logs", label="slow-readers")
    except RuntimeError as exc:
        result.error = f"did not start: {str(exc).splitlines()[0]}"
        return result, stats
    until = time.monotonic() + args.duration + 3
    threads = [
        threading.Thread(target=_slow_reader, args=(server.port, args.rate, until, s), daemon=True)
        for s in stats
    ]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # the slow readers have filled their windows and the server's buffers
        output = run_wrk(wrk_argv(FAST, server.port, args.duration, Path("-")), args.duration)
        parse_wrk(output, result)
        result.rss_mib = peers.rss_bytes(server.pid) / 2**20
    except (RuntimeError, OSError) as exc:
        result.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    finally:
        server.stop()
        for thread in threads:
            thread.join(5)
    return result, stats


def markdown(results: list[Result], readers: dict[str, list[ReaderStats]], n: int) -> str:
    lines = [
        f"fast clients (wrk -c10 GET /) while {n} clients read /stream at 1 KB/s; "
        "ratio to waitress, same run",
        "",
        "| peer | req/s | ratio | p50 ms | p99 ms | timeouts | slow readers still served |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rps = f"{r.rps:,.0f}" if r.rps is not None else "failed"
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else "-"
        p50 = f"{r.p50_ms:.2f}" if r.p50_ms is not None else "-"
        p99 = f"{r.p99_ms:.2f}" if r.p99_ms is not None else "-"
        timeouts = str(r.socket_errors.get("timeout", 0))
        alive = sum(1 for s in readers[r.peer] if not s.failed and s.received)
        lines.append(f"| {r.peer} | {rps} | {ratio} | {p50} | {p99} | {timeouts} | {alive}/{n} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/slow_readers.py", description=__doc__)
    parser.add_argument("--peers", default=DEFAULT_PEERS)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--rate", type=int, default=1000, help="bytes/s each slow reader reads")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    args.readers = max(1, min(args.readers, 64))  # every load is bounded
    args.duration = max(1.0, min(args.duration, 60.0))
    args.repeat = max(1, min(args.repeat, 5))
    args.rate = max(1, min(args.rate, 1_000_000))
    names = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in names if p not in peers.PEERS]
    if unknown:
        raise SystemExit(f"unknown peers: {', '.join(unknown)}")
    raise_nofile_limit()
    runs: dict[str, list[Result]] = {p: [] for p in names}
    readers: dict[str, list[ReaderStats]] = {}
    for n in range(args.repeat):
        for p in names:
            print(f"# slow readers / {p} (round {n + 1}) ...", file=sys.stderr, flush=True)
            result, stats = measure(p, args)
            runs[p].append(result)
            readers[p] = stats
    results = [combine(runs[p]) for p in names]
    add_ratios(results)
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = OUT / f"slow-readers-{stamp}.json"
    raw = {
        "when": stamp,
        "readers": args.readers,
        "rate": args.rate,
        "duration_s": args.duration,
        "versions": peers.versions(),
        "results": [asdict(r) for r in results],
        "slow_readers": {p: [asdict(s) for s in v] for p, v in readers.items()},
    }
    path.write_text(json.dumps(raw, indent=2) + "\n")
    print(markdown(results, readers, args.readers))
    print(f"\nraw results: {path.relative_to(peers.ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
