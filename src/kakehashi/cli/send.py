"""Send raw bytes to HOST:PORT and print exactly what comes back (garbage, nothing, pipelining).

What it does: connects, sends exactly the bytes of a file, of stdin or of ``--text`` (with
``--crlf``, every bare LF becomes CRLF), all at once or in timed pieces, or nothing at all,
and prints what the server sends back as it arrives, raw or (``--escape``) with every
non-printable byte escaped; ``--timings`` reports each step on stderr.  It stops when the
server closes, when it has been silent for ``--wait`` seconds, or after ``--max-time``.

What it must not do: interpret HTTP in any way (it is for watching what a server does with
bytes no correct client would send), or exit the process (0 when it connected, 1 when it
could not, 2 for a usage error).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import BinaryIO

from kakehashi.client import SocketStream, connect
from kakehashi.errors import ReadError, ReadTimeout, TransportError, WriteError

__all__ = ["add_arguments", "escape", "run", "unescape"]

_ESCAPES = {0x5C: "\\\\", 0x0D: "\\r", 0x0A: "\\n\n", 0x09: "\\t"}
_TEXT_ESCAPE_RE = re.compile(r"\\(x[0-9A-Fa-f]{2}|[rnt0\\])")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", help="HOST:PORT ([::1]:PORT for IPv6)")
    parser.add_argument("file", nargs="?", default="-", help="what to send (default: stdin)")
    parser.add_argument("--text", help="send this text; \\r \\n \\t \\0 \\\\ \\xNN are decoded")
    parser.add_argument("--crlf", action="store_true", help="turn every bare LF into CRLF")
    parser.add_argument("--nothing", action="store_true", help="connect and send nothing at all")
    parser.add_argument("--split", type=int, metavar="BYTES", help="send in pieces of BYTES")
    parser.add_argument(
        "--delay", type=float, default=0.5, help="seconds between pieces (default 0.5)"
    )
    parser.add_argument(
        "--half-close", action="store_true", help="shut down our sending side after sending"
    )
    parser.add_argument(
        "-x", "--escape", action="store_true", help="show non-printable bytes as escapes"
    )
    parser.add_argument("-t", "--timings", action="store_true", help="report each step on stderr")
    parser.add_argument(
        "--wait", type=float, default=2.0, help="stop after this long without data (default 2)"
    )
    parser.add_argument(
        "--max-time", type=float, default=30.0, help="stop after this long in all (default 30)"
    )
    parser.add_argument("--tls", action="store_true", help="speak TLS (certificate verified)")


def escape(data: bytes) -> str:
    """Printable ASCII as is; CR, LF, TAB and backslash as ``\\r \\n \\t \\\\`` (a newline
    follows ``\\n`` to keep lines readable); every other byte as ``\\xNN``."""
    out = []
    for byte in data:
        if byte in _ESCAPES:
            out.append(_ESCAPES[byte])
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def unescape(text: str) -> bytes:
    """Decode ``--text``: ``\\r \\n \\t \\0 \\\\`` and ``\\xNN`` (one byte each);
    everything else is encoded as UTF-8."""
    table = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}
    out = bytearray()
    pos = 0
    for m in _TEXT_ESCAPE_RE.finditer(text):
        out += text[pos : m.start()].encode("utf-8")
        code = m.group(1)
        out += bytes([int(code[1:], 16)]) if code[0] == "x" else table[code]
        pos = m.end()
    out += text[pos:].encode("utf-8")
    return bytes(out)


def to_crlf(data: bytes) -> bytes:
    """Every LF not already preceded by CR becomes CRLF."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


class _Session:
    """One connection: sends pieces, prints what arrives, reports timings."""

    def __init__(self, stream: SocketStream, args: argparse.Namespace, out: BinaryIO) -> None:
        self.stream = stream
        self.args = args
        self.out = out
        self.start = time.monotonic()
        self.deadline = self.start + args.max_time
        self.closed = False

    def note(self, message: str) -> None:
        if self.args.timings:
            elapsed = (time.monotonic() - self.start) * 1000
            print(f"* {elapsed:9.1f} ms  {message}", file=sys.stderr)

    def emit(self, data: bytes) -> None:
        self.note(f"received {len(data)} bytes")
        self.out.write(escape(data).encode("ascii") if self.args.escape else data)
        self.out.flush()

    def send(self, pieces: list[bytes]) -> None:
        for i, piece in enumerate(pieces):
            if i:
                self.read_until(time.monotonic() + self.args.delay, give_up=False)
            if self.closed:
                self.note(f"not sending the {len(pieces) - i} remaining pieces")
                return
            try:
                self.stream.write(piece, max(0.01, self.deadline - time.monotonic()))
            except (WriteError, TransportError) as exc:
                self.note(f"send failed: {exc}")
                print(f"kakehashi send: {exc}", file=sys.stderr)
                return
            self.note(f"sent {len(piece)} bytes")

    def read_until(self, until: float, give_up: bool = True) -> None:
        """Print what arrives until ``until`` or the server closes; when ``give_up``, also
        stop after ``--wait`` seconds of silence."""
        until = min(until, self.deadline)
        while not self.closed:
            left = until - time.monotonic()
            if left <= 0:
                return
            try:
                data = self.stream.read(65536, min(left, self.args.wait))
            except ReadTimeout:
                if give_up and left > self.args.wait:
                    self.note(f"silent for {self.args.wait:g} s; giving up")
                    self.closed = True
                continue
            except ReadError as exc:
                self.note(f"read failed: {exc}")
                print(f"kakehashi send: {exc}", file=sys.stderr)
                self.closed = True
                return
            if not data:
                self.note("the server closed the connection")
                self.closed = True
                return
            self.emit(data)


def _payload(args: argparse.Namespace) -> list[bytes]:
    if args.nothing:
        return []
    if args.text is not None:
        data = unescape(args.text)
    elif args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(args.file, "rb") as f:
            data = f.read()
    if args.crlf:
        data = to_crlf(data)
    size = args.split or len(data) or 1
    return [data[i : i + size] for i in range(0, len(data), size)]


def _address(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not host:
        raise ValueError(f"the address must be HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


def run(args: argparse.Namespace) -> int:
    try:
        host, port = _address(args.address)
        pieces = _payload(args)
        if args.split is not None and args.split < 1:
            raise ValueError("--split must be at least 1")
    except (OSError, ValueError) as exc:
        print(f"kakehashi send: {exc}", file=sys.stderr)
        return 2
    try:
        stream = connect(host, port, min(args.max_time, 10.0), tls=args.tls)
    except TransportError as exc:
        print(f"kakehashi send: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    session = _Session(stream, args, sys.stdout.buffer)
    try:
        session.note(f"connected to {host}:{port} from port {stream.local_address[1]}")
        session.send(pieces)
        if args.half_close and not session.closed:
            stream.shutdown_write()
            session.note("half-closed: we send nothing more")
        session.read_until(session.deadline)
    except WriteError as exc:
        print(f"kakehashi send: {exc}", file=sys.stderr)
    finally:
        stream.close()
    if args.escape:
        session.out.write(b"\n")
    return 0
