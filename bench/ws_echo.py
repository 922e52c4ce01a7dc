"""WebSocket echo benchmark: messages per second, p99 round trip and server CPU per message.

    python bench/ws_echo.py [--peers ws] [--sizes 16,4096,65536] [--compression off,on]
                            [--conns 1,10,100] [--seconds 3] [--idle 1000] [--repeat 1]

Each peer serves bench/asgi_app.py (a WebSocket on any path is an echo), pinned to core 0
(bench/peers.py). The client, this process, runs on core 1: one epoll loop over N
connections, each sending a text message and waiting for its echo before the next (a round
trip is one message, so msgs/s and the p99 round trip are read from the same exchanges).
Client frames are built once per size: VARIANTS different messages, sent in turn, so that
a server's compressor cannot answer a message by pointing back at the same one a moment
ago (real traffic does not repeat itself; 16 x 4 KiB is past a 32 KiB window).  They are
masked with a fixed key, which the server cannot tell from a fresh one.  With compression,
the client offers permessage-deflate with ``client_no_context_takeover`` so each
compressed frame stands alone, and the server's replies are read as frames (their sizes
change with its context).  The first
echo of every cell is checked byte for byte (inflated where compressed).

For every peer: cells of (connections, compression, size), ``--seconds`` each after 0.5 s of
warm-up, each on fresh connections; then, on a freshly started server, the RSS of ``--idle``
idle uncompressed WebSockets (per connection, above the server's RSS before them).  A peer
that does not negotiate compression gets "n/a" in those cells.  The client's own CPU share
is printed with each cell: near 100% means the client, not the server, set the pace.
``--conns ''`` measures the idle WebSockets alone.  Prints markdown tables, writes raw JSON
under bench/out/.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import select
import socket
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from random import Random

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import peers

OUT = peers.ROOT / "bench" / "out"
MASK = b"\x37\xfa\x21\x3d"
# No client_max_window_bits: the server cannot ask for a window smaller than the 32 KiB
# the client's one frame is compressed with.
DEFLATE_OFFER = "permessage-deflate; client_no_context_takeover"
TAIL = b"\x00\x00\xff\xff"  # RFC 7692 7.2.1: taken off each compressed message, put back
WARMUP = 0.5
MAX_RECORDED = 2_000_000  # round trips kept per cell, so memory is bounded whatever the pace
CONNECT_TIMEOUT = 5.0
VARIANTS = 16


def payload(size: int, variant: int = 0) -> bytes:
    """ASCII text like a chat or dashboard message: JSON-ish words, compressible about 3x;
    each ``variant`` different."""
    words = ["temperature", "sensor", "value", "ok", "user", "room", "message", "42", "true"]
    rng = Random(size * 1000 + variant)
    out = bytearray()
    while len(out) < size:
        out += f'"{rng.choice(words)}":{rng.randint(0, 9999)},'.encode()
    return bytes(out[:size])


def _masked(data: bytes) -> bytes:
    key = (MASK * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(len(data), "big")


def client_frame(data: bytes, compressed: bool) -> bytes:
    """One masked text frame carrying ``data``, deflated on its own when ``compressed``."""
    if compressed:
        deflater = zlib.compressobj(wbits=-15)
        data = deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH)
        data = data.removesuffix(TAIL)
    first = 0x81 | (0x40 if compressed else 0)
    n = len(data)
    if n < 126:
        head = bytes([first, 0x80 | n])
    elif n < 65536:
        head = bytes([first, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + MASK + _masked(data)


def _frame_end(buf: bytearray) -> tuple[int, int, int] | None:
    """(first byte, payload start, frame end) of the server frame at the head of ``buf``."""
    if len(buf) < 2:
        return None
    n = buf[1] & 0x7F
    start = 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, start = int.from_bytes(buf[2:4], "big"), 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, start = int.from_bytes(buf[2:10], "big"), 10
    end = start + n
    return (buf[0], start, end) if len(buf) >= end else None


class Conn:
    """One WebSocket of the client: its socket, what it read and when its message left."""

    __slots__ = ("buf", "first", "sent", "sent_at", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.sent_at = 0.0
        self.sent = 0  # messages sent: the next one is frames[sent % VARIANTS]
        self.first: bytes | None = None  # the first echo's payload, checked by the cell


def open_ws(port: int, compressed: bool) -> tuple[Conn, bool]:
    """A WebSocket to 127.0.0.1:port/echo; whether the server took permessage-deflate."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    offer = f"Sec-WebSocket-Extensions: {DEFLATE_OFFER}\r\n" if compressed else ""
    sock.sendall(
        f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{offer}\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    head, _, rest = head.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"refused: {head.splitlines()[0]!r}")
    conn = Conn(sock)
    conn.buf += rest
    return conn, b"permessage-deflate" in head.lower()


def close_ws(conns: list[Conn]) -> None:
    close = bytes([0x88, 0x82]) + MASK + _masked((1000).to_bytes(2, "big"))
    for conn in conns:
        try:
            conn.sock.sendall(close)
            conn.sock.settimeout(0.5)
            conn.sock.recv(64)
        except OSError:
            pass
        conn.sock.close()


@dataclass
class Cell:
    peer: str
    conns: int
    compression: bool
    size: int
    messages: int = 0
    seconds: float = 0.0
    msgs_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    server_us_per_msg: float = 0.0
    client_cpu_share: float = 0.0
    note: str = ""


def _on_readable(conn: Conn, frames: list[bytes], rtts: list[float] | None) -> None:
    """Read what came; for each whole echo, note its round trip (into ``rtts`` unless None,
    the warm-up) and send the next message at once."""
    data = conn.sock.recv(262144)
    if not data:
        raise ConnectionError("the server closed a connection mid-cell")
    buf = conn.buf
    buf += data
    while (found := _frame_end(buf)) is not None:
        first, start_at, stop = found
        if first & 0x0F < 8:  # data frames; a ping or pong is skipped
            if conn.first is None:
                conn.first = bytes(buf[start_at:stop])
            if first & 0x80:  # FIN: the whole echo is here
                done = time.perf_counter()
                if rtts is not None and len(rtts) < MAX_RECORDED:
                    rtts.append(done - conn.sent_at)
                conn.sent_at = done
                conn.sock.sendall(frames[conn.sent % VARIANTS])
                conn.sent += 1
        del buf[:stop]


def _settle(conns: list[Conn]) -> None:
    """Each connection's last message is still out: read its echo (bounded), so the next
    cell starts on a quiet line."""
    for conn in conns:
        conn.sock.settimeout(2.0)
        while _frame_end(conn.buf) is None:
            chunk = conn.sock.recv(262144)
            if not chunk:
                break
            conn.buf += chunk
        conn.buf.clear()


def run_cell(
    server: peers.Server, conns: list[Conn], cell: Cell, frames: list[bytes], seconds: float
) -> None:
    """Ping-pong on every connection for WARMUP + ``seconds``; fills ``cell``."""
    by_fd = {c.sock.fileno(): c for c in conns}
    rtts: list[float] = []
    clock = time.perf_counter
    measure_from = clock() + WARMUP
    end = measure_from + seconds
    with select.epoll() as poller:
        for conn in conns:
            conn.sock.settimeout(None)
            poller.register(conn.sock.fileno(), select.EPOLLIN)
            conn.sent_at = clock()
            conn.sock.sendall(frames[0])
            conn.sent = 1
        while clock() < measure_from:  # the warm-up: nothing recorded
            for fd, _ in poller.poll(0.1):
                _on_readable(by_fd[fd], frames, None)
        began, server0, client0 = clock(), peers.cpu_seconds(server.pid), time.process_time()
        while clock() < end:
            for fd, _ in poller.poll(0.1):
                _on_readable(by_fd[fd], frames, rtts)
        elapsed = clock() - began
        cell.server_us_per_msg = (peers.cpu_seconds(server.pid) - server0) * 1e6 / max(1, len(rtts))
        cell.client_cpu_share = (time.process_time() - client0) / elapsed
    _settle(conns)
    rtts.sort()
    cell.messages = len(rtts)
    cell.seconds = round(elapsed, 3)
    cell.msgs_per_s = round(len(rtts) / elapsed, 1)
    if rtts:
        cell.p50_ms = round(rtts[len(rtts) // 2] * 1000, 3)
        cell.p99_ms = round(rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))] * 1000, 3)


def check_first(conns: list[Conn], data: bytes, compressed: bool) -> str:
    """'' when every connection's first echo was ``data``, else what was wrong."""
    for conn in conns:
        got = conn.first
        if got is not None and compressed:
            got = zlib.decompressobj(wbits=-15).decompress(got + TAIL)
        if got != data:
            return f"echo differs: {len(got or b'')} bytes, not {len(data)}"
        conn.first = None
    return ""


def idle_rss(server: peers.Server, count: int) -> float:
    """KiB of server RSS per idle uncompressed WebSocket, ``count`` of them open 1 s."""
    before = peers.rss_bytes(server.pid)
    conns = [open_ws(server.port, False)[0] for _ in range(count)]
    time.sleep(1.0)
    after = peers.rss_bytes(server.pid)
    close_ws(conns)
    return round((after - before) / count / 1024, 1)


@dataclass
class PeerRun:
    peer: str
    cells: list[Cell] = field(default_factory=list)
    idle_kib: float | None = None
    error: str = ""


def measure(server: peers.Server, cell: Cell, seconds: float) -> None:
    """One cell on connections of its own (so the first echo of each, from a fresh deflate
    context, can be checked), closed after it."""
    try:
        opened = [open_ws(server.port, cell.compression) for _ in range(cell.conns)]
    except OSError as exc:
        cell.note = f"failed: {exc}"
        return
    conns = [c for c, _ in opened]
    try:
        if cell.compression and not all(deflate for _, deflate in opened):
            cell.note = "n/a: no permessage-deflate"
            return
        frames = [client_frame(payload(cell.size, i), cell.compression) for i in range(VARIANTS)]
        run_cell(server, conns, cell, frames, seconds)
        cell.note = check_first(conns, payload(cell.size), cell.compression)
    except OSError as exc:
        cell.note = f"failed: {exc}"
    finally:
        close_ws(conns)


def bench_peer(name: str, args: argparse.Namespace, log_dir: Path) -> PeerRun:
    run = PeerRun(name)
    try:
        server = peers.start(name, log_dir)
    except RuntimeError as exc:
        run.error = str(exc).splitlines()[0]
        return run
    with server:
        for n in args.conns:
            for compressed in args.compression:
                for size in args.sizes:
                    cell = Cell(name, n, compressed, size)
                    run.cells.append(cell)
                    measure(server, cell, args.seconds)
                    print(_progress(cell), flush=True)
    if args.idle:
        # On a server of its own: after the cells, what their big messages left in the
        # allocator's free lists would hold the idle connections and hide their cost.
        try:
            with peers.start(name, log_dir, label="idle") as fresh:
                run.idle_kib = idle_rss(fresh, args.idle)
        except (OSError, RuntimeError) as exc:
            run.error = f"idle: {str(exc).splitlines()[0]}"
    return run


def _progress(c: Cell) -> str:
    return (
        f"  {c.peer} conns={c.conns} {'deflate' if c.compression else 'plain'} {c.size} B: "
        f"{c.msgs_per_s:,.0f} msgs/s, p99 {c.p99_ms} ms, server {c.server_us_per_msg:.1f} "
        f"us/msg, client CPU {c.client_cpu_share:.0%} {c.note}"
    )


def combine(runs: list[PeerRun]) -> PeerRun:
    """The median cell (by msgs/s) of each (conns, compression, size) over the rounds."""
    out = PeerRun(runs[0].peer, idle_kib=runs[0].idle_kib, error=runs[0].error)
    for i, first in enumerate(runs[0].cells):
        same = sorted((r.cells[i] for r in runs if i < len(r.cells)), key=lambda c: c.msgs_per_s)
        out.cells.append(same[len(same) // 2] if same else first)
    kibs = sorted(r.idle_kib for r in runs if r.idle_kib is not None)
    out.idle_kib = kibs[len(kibs) // 2] if kibs else None
    return out


def markdown(runs: list[PeerRun], loops: dict[str, str]) -> str:
    keys = [(c.conns, c.compression, c.size) for c in runs[0].cells] if runs else []
    head = " | ".join(f"{n} conn{'s' if n > 1 else ''}, {'deflate' if z else 'plain'}, {s} B"
                      for n, z, s in keys)  # fmt: skip
    lines = ["msgs/s (p99 ms; server µs per message)", "",
             f"| peer | loop | {head} |", "|---|---|" + "---|" * len(keys)]  # fmt: skip
    for run in runs:
        cells = []
        for c in run.cells:
            figures = f"{c.msgs_per_s:,.0f} ({c.p99_ms:.2f}; {c.server_us_per_msg:.0f})"
            cells.append(c.note if c.note.startswith(("n/a", "failed")) else figures)
        if run.error:
            cells.append(run.error)
        lines.append(f"| {run.peer} | {loops.get(run.peer, '')} | {' | '.join(cells)} |")
    lines += ["", "| peer | idle WebSocket, KiB of server RSS each |", "|---|---|"]
    lines += [f"| {r.peer} | {r.idle_kib if r.idle_kib is not None else '-'} |" for r in runs]
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/ws_echo.py", description=__doc__)
    parser.add_argument("--peers", default="ws", help="names or groups (bench/peers.py)")
    parser.add_argument("--sizes", type=_ints, default=[16, 4096, 65536])
    parser.add_argument("--conns", type=_ints, default=[1, 10, 100])
    parser.add_argument("--compression", default="off,on",
                        type=lambda t: [x == "on" for x in t.split(",")])  # fmt: skip
    parser.add_argument("--seconds", type=float, default=3.0, help="per cell, after warm-up")
    parser.add_argument("--idle", type=int, default=1000, help="idle WebSockets (0: skip)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median is kept")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 60 or not 1 <= args.repeat <= 10:
        parser.error("--seconds must be in (0, 60] and --repeat in 1..10")
    if max(args.conns, default=0) > 1000 or args.idle > 5000 or max(args.sizes) > 1 << 24:
        parser.error("at most 1000 connections, 5000 idle WebSockets, 16 MiB messages")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.idle + 1100)), hard))
    os.sched_setaffinity(0, {int(peers.CLIENT_CPU)})
    names = peers.expand(args.peers)
    log_dir = OUT / "ws-logs"
    versions = peers.versions()
    rounds: dict[str, list[PeerRun]] = {name: [] for name in names}
    for r in range(args.repeat):
        for name in names if r % 2 == 0 else reversed(names):  # alternate the order
            print(f"[round {r + 1}] {name}", flush=True)
            rounds[name].append(bench_peer(name, args, log_dir))
    runs = [combine(rounds[name]) for name in names]
    loops = {n: "uvloop" if "uvloop" in peers.PEERS[n].note or n.startswith("uvicorn-")
             else "asyncio" for n in names}  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = OUT / f"ws-echo-{stamp}.json"
    raw = {"versions": versions, "args": {k: v for k, v in vars(args).items()},
           "runs": [asdict(r) for r in runs]}  # fmt: skip
    path.write_text(json.dumps(raw, indent=1))
    print(markdown(runs, loops))
    print(f"\nraw: {path.relative_to(peers.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
