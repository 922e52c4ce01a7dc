"""Open a WebSocket and talk on it: lines typed are sent, messages received are printed.

What it does (as websocat does): connects with :mod:`kakehashi.client.websocket`, sends each
line of stdin as a text message (``--binary``: a binary one) and prints each message received
on its own line; at the end of stdin it closes (1000) and prints what arrives during the close
handshake.  For scripts, ``--send TEXT`` (repeatable) sends messages instead of stdin and
``-n N`` exits after N messages received.  ``-v`` shows on stderr the handshake and every
frame each way (opcode, FIN, RSV bits, length, mask) and the close codes: the raw view
``kakehashi send`` gives HTTP, for WebSockets; a refused upgrade (any status but 101) shows
the request, the answer's head and the start of its body, then one line names the status.

What it must not do: exit the process (it returns 0 after a normal close or N messages, 1
when the connection failed, was refused or ended abnormally, 2 for a usage error), or print
anything but the messages to stdout.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterable
from typing import BinaryIO

from kakehashi.cli.get import _headers, _ssl_context
from kakehashi.client import Proxies, Timeout, websocket
from kakehashi.errors import (
    ClientError,
    HandshakeInvalid,
    HandshakeRefused,
    LocalWebSocketError,
    ProtocolError,
    ReadTimeout,
    WebSocketClosed,
    WebSocketError,
)
from kakehashi.websocket import DeflateSettings, FrameHeader, Opcode

__all__ = ["add_arguments", "describe_frame", "run"]

_POLL = 0.1  # seconds between checks for the end of stdin while waiting for messages


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("url", help="a ws:// or wss:// URL")
    add("--send", action="append", metavar="TEXT", help="send this message; repeatable (no stdin)")
    add("-n", "--count", type=int, metavar="N", help="exit after N messages received")
    add("--binary", action="store_true", help="send binary messages rather than text")
    add("-H", "--header", action="append", default=[], help="'Name: value'; repeatable")
    add("--subprotocol", action="append", default=[], help="offer this subprotocol; repeatable")
    add("--compressed", action="store_true", help="offer permessage-deflate")
    add("-v", "--verbose", action="store_true", help="show the handshake and every frame")
    add("-x", "--proxy", help="[http://][user:pw@]host:port; otherwise *_proxy variables")
    add("-k", "--insecure", action="store_true", help="do not verify TLS certificates")
    add("--cacert", metavar="FILE", help="trust the CA certificates in this PEM file")
    add("--timeout", type=float, default=10.0, help="seconds for each phase (default 10)")
    add("--max-size", type=int, default=16 << 20, metavar="BYTES", help="largest message")


def describe_frame(head: FrameHeader, sent: bool) -> str:
    """One frame header as a line: ``> TEXT fin=1 rsv=100 len=5 mask=1a2b3c4d``."""
    try:
        name = Opcode(head.opcode).name
    except ValueError:
        name = f"opcode-{head.opcode:#x}"
    mask = f"mask={head.mask.hex()}" if head.mask is not None else "unmasked"
    arrow = ">" if sent else "<"
    return f"{arrow} {name} fin={int(head.fin)} rsv={head.rsv:03b} len={head.length} {mask}"


def _show_frame(head: FrameHeader, sent: bool) -> None:
    print(describe_frame(head, sent), file=sys.stderr, flush=True)


def _show_exchange(
    request_head: bytes, status: int, reason: str, headers: Iterable[tuple[str, str]]
) -> None:
    for line in request_head.decode("latin-1").split("\r\n")[:-1]:
        print(f"> {line}".rstrip(), file=sys.stderr)
    print(f"< HTTP/1.1 {status} {reason}".rstrip(), file=sys.stderr)
    for name, value in headers:
        print(f"< {name}: {value}", file=sys.stderr)
    print("<", file=sys.stderr, flush=True)


def _show_handshake(sock: websocket.WebSocket) -> None:
    hs = sock.handshake
    _show_exchange(hs.request_head, hs.status_code, hs.reason, hs.headers)


def _show_answer(
    request_head: bytes, status: int, reason: str, headers: Iterable[tuple[bytes, bytes]]
) -> None:
    fields = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
    _show_exchange(request_head, status, reason, fields)


def _show_refusal(exc: HandshakeRefused) -> None:
    """The request and the refusing answer, and the start of its body (as text, control
    characters escaped, so a binary body cannot upset the terminal)."""
    _show_answer(exc.request_head, exc.status_hint, exc.reason, exc.response_headers)
    text = exc.body.decode("utf-8", "replace")
    for line in text.splitlines():
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
        print(f"< {shown}", file=sys.stderr)
    sys.stderr.flush()


class _Session:
    """One WebSocket: the messages to send, the ones to print, and when to stop."""

    def __init__(self, sock: websocket.WebSocket, args: argparse.Namespace, out: BinaryIO):
        self.sock = sock
        self.args = args
        self.out = out
        self.received = 0
        self.input_done = threading.Event()

    def message(self, text: str) -> str | bytes:
        return text.encode("utf-8") if self.args.binary else text

    def show(self, message: str | bytes) -> None:
        data = message.encode("utf-8") if isinstance(message, str) else message
        self.out.write(data + b"\n")
        self.out.flush()
        self.received += 1

    def read_stdin(self) -> None:
        """Send each line of stdin (in a thread); mark the end of input."""
        try:
            for line in sys.stdin:
                self.sock.send(self.message(line.rstrip("\r\n")))
        except WebSocketError:
            pass  # the WebSocket ended: the main thread reports how
        finally:
            self.input_done.set()

    def done(self) -> bool:
        return self.args.count is not None and self.received >= self.args.count

    def receive(self) -> None:
        """Print messages until ``-n`` is reached or the input ended (then close)."""
        while not self.done():
            try:
                self.show(self.sock.recv(timeout=_POLL))
            except ReadTimeout:
                if self.input_done.is_set() and self.args.count is None:
                    return
        return

    def drain(self) -> None:
        """Print what came during the close handshake (unless ``-n`` was reached)."""
        while not self.done():
            try:
                self.show(self.sock.recv(timeout=0))
            except (ReadTimeout, WebSocketClosed):
                return


def _connect(args: argparse.Namespace) -> websocket.WebSocket:
    return websocket.connect(
        args.url,
        subprotocols=args.subprotocol,
        headers=_headers(args.header),
        compression=DeflateSettings() if args.compressed else False,
        proxies=Proxies.of(args.proxy, trust_env=True),
        timeout=Timeout.of(args.timeout),
        ssl_context=_ssl_context(args),
        max_message_bytes=args.max_size,
        on_frame=_show_frame if args.verbose else None,
    )


def _converse(session: _Session) -> int:
    args, sock = session.args, session.sock
    if args.send is not None:
        for text in args.send:
            sock.send(session.message(text))
        session.input_done.set()
    else:
        threading.Thread(target=session.read_stdin, daemon=True).start()
    try:
        session.receive()
    except WebSocketClosed as exc:
        _report_close(sock, args.verbose)
        if exc.ok or session.done():
            return 0
        print(f"kakehashi ws: {exc}", file=sys.stderr)
        return 1
    sock.close()
    session.drain()
    _report_close(sock, args.verbose)
    return 0


def _report_close(sock: websocket.WebSocket, verbose: bool) -> None:
    sock.close()
    if verbose:
        sent, received = sock.close_sent, sock.close_received
        ours = f"{sent[0]} {sent[1]!r}" if sent else "none"
        theirs = f"{received[0]} {received[1]!r}" if received else "none"
        print(f"* close code sent: {ours}; received: {theirs}", file=sys.stderr)
        print(f"* closed: {sock.close_code}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        print("kakehashi ws: -n must be at least 1", file=sys.stderr)
        return 2
    try:
        sock = _connect(args)
    except (OSError, ValueError) as exc:  # a bad URL, header, --cacert file
        if isinstance(exc, ClientError):
            print(f"kakehashi ws: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        print(f"kakehashi ws: {exc}", file=sys.stderr)
        return 2
    except LocalWebSocketError as exc:  # a subprotocol that is not a token
        print(f"kakehashi ws: {exc}", file=sys.stderr)
        return 2
    except HandshakeRefused as exc:
        if args.verbose:
            _show_refusal(exc)
        print(f"kakehashi ws: {exc}", file=sys.stderr)
        return 1
    except HandshakeInvalid as exc:  # a 101 that does not accept what was asked
        if args.verbose:
            _show_answer(exc.request_head, exc.status, exc.reason, exc.response_headers)
        print(f"kakehashi ws: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except (ClientError, ProtocolError, WebSocketError) as exc:
        print(f"kakehashi ws: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.verbose:
        _show_handshake(sock)
    session = _Session(sock, args, sys.stdout.buffer)
    try:
        return _converse(session)
    except (ClientError, WebSocketError) as exc:
        print(f"kakehashi ws: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        sock.close()
