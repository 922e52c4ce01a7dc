"""Blocking-with-deadline reads and writes on a non-blocking socket, for worker threads.

Sockets stay non-blocking for their whole life (the poller needs that).  A worker that owns
a connection and must wait for it, to read a streamed body or to send a short error response,
waits here on that one descriptor with ``poll()``, bounded by a timeout.  Responses are sent
with the ``*_some`` functions, which never wait: what the kernel does not take is queued in
the connection's OutputBuffer (outbuf.py).  Every failure becomes ClientDisconnected: a
client that goes away or stalls is not an error of ours.
"""

from __future__ import annotations

import os
import select
import socket
import ssl

from kakehashi.errors import ClientDisconnected

__all__ = [
    "TLS_SEND_BYTES",
    "recv_some",
    "reuse_address",
    "send_all",
    "send_file",
    "send_some",
    "sendfile_some",
    "wait_writable",
]

_HAS_POLL = hasattr(select, "poll")  # not on Windows
_WRITABLE = getattr(select, "POLLOUT", 4) | getattr(select, "POLLERR", 8)
_READABLE = getattr(select, "POLLIN", 1) | getattr(select, "POLLERR", 8)
_HUP = getattr(select, "POLLHUP", 16)
# A file read to send where os.sendfile cannot be used (a TLS socket encrypts in user space;
# Windows has no sendfile); TLS also gives a socket at most this much per write (tls.py says
# why the bound must be the same on every call).
TLS_SEND_BYTES = 256 * 1024


def _ready(sock: socket.socket, events: int, timeout: float) -> bool:
    if not _HAS_POLL:  # Windows: select() takes sockets, and one is within its FD_SETSIZE
        write = [sock] if events & _WRITABLE == _WRITABLE else []
        ready = select.select([] if write else [sock], write, [sock], max(timeout, 0.0))
        return any(ready)
    poller = select.poll()
    poller.register(sock.fileno(), events | _HUP)
    return bool(poller.poll(max(timeout, 0.0) * 1000))


def _wait(sock: socket.socket, events: int, timeout: float, what: str) -> None:
    if not _ready(sock, events, timeout):
        raise ClientDisconnected(f"{what} timed out after {timeout:g} s")


def send_all(sock: socket.socket, data: bytes | memoryview, timeout: float) -> None:
    """Send all of ``data``; a peer that takes nothing for ``timeout`` seconds is dropped.

    Raises:
        ClientDisconnected: the peer closed, reset, or stalled.
    """
    try:
        sent = sock.send(data)
        if sent == len(data):  # the common case: the kernel took it all at once
            return
        view = memoryview(data)[sent:]
        while view:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                _wait(sock, _WRITABLE, timeout, "send")
                continue
            view = view[sent:]
    except BlockingIOError:
        _wait(sock, _WRITABLE, timeout, "send")
        send_all(sock, data, timeout)
    except OSError as exc:
        raise ClientDisconnected(f"send failed: {exc}") from exc


def send_some(sock: socket.socket, data: bytes | memoryview | list[bytes]) -> int:
    """Send what the kernel takes now, without waiting; returns the count.  A list of
    buffers goes in one ``sendmsg`` (writev), so a large body is never copied just to be
    joined to its head (the caller queues the rest as views, still without joining).

    Raises:
        ClientDisconnected: the peer closed or reset.
    """
    try:
        if not isinstance(data, list):
            return sock.send(data)
        if _HAS_SENDMSG:
            return sock.sendmsg(data)
        return _send_pieces(sock, data)
    except BlockingIOError:
        return 0
    except OSError as exc:
        raise ClientDisconnected(f"send failed: {exc}") from exc


_HAS_SENDMSG = hasattr(socket.socket, "sendmsg")  # not on Windows


def _send_pieces(sock: socket.socket, data: list[bytes]) -> int:
    """``sendmsg`` where it is missing: one ``send`` a piece while the kernel takes them."""
    total = 0
    for piece in data:
        try:
            sent = sock.send(piece)
        except BlockingIOError:
            if total:
                return total
            raise
        total += sent
        if sent < len(piece):
            break
    return total


def send_file(sock: socket.socket, fd: int, offset: int, count: int) -> int:
    """``os.sendfile(sock, fd, offset, count)``; on a TLS socket, which the kernel cannot
    encrypt for, or where sendfile is missing (Windows), a read of the file and a ``send`` of
    what was read.  Returns the count sent, 0 at the file's end.

    Raises:
        BlockingIOError: the socket takes nothing now.
        OSError: the peer closed or reset.
    """
    if _HAS_SENDFILE and not isinstance(sock, ssl.SSLSocket):
        return os.sendfile(sock.fileno(), fd, offset, count)
    data = _read_at(fd, offset, min(count, TLS_SEND_BYTES))
    return sock.send(data) if data else 0


def _read_at(fd: int, offset: int, size: int) -> bytes:
    """``os.pread`` where it exists; else a read that puts the file position back (a spool
    file is appended to at its position)."""
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    position = os.lseek(fd, 0, os.SEEK_CUR)
    try:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, size)
    finally:
        os.lseek(fd, position, os.SEEK_SET)


_HAS_SENDFILE = hasattr(os, "sendfile")


def sendfile_some(sock: socket.socket, fd: int, offset: int, count: int) -> tuple[int, bool]:
    """Send up to ``count`` bytes of file ``fd`` from ``offset`` with ``os.sendfile`` while
    the kernel takes them; returns (bytes sent, whether the file ended before ``count``).

    Raises:
        ClientDisconnected: the peer closed or reset.
    """
    total = 0
    while total < count:
        try:
            sent = send_file(sock, fd, offset + total, count - total)
        except BlockingIOError:
            return total, False
        except OSError as exc:
            raise ClientDisconnected(f"sendfile failed: {exc}") from exc
        if sent == 0:
            return total, True
        total += sent
    return total, False


def wait_writable(sock: socket.socket, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for room in the socket's send buffer (or an error)."""
    return _ready(sock, _WRITABLE, timeout)


def recv_some(sock: socket.socket, size: int, timeout: float) -> bytes:
    """Up to ``size`` bytes, waiting at most ``timeout`` seconds for the first; b"" at EOF.

    Raises:
        ClientDisconnected: reset, or nothing arrived in time.
    """
    while True:
        try:
            return sock.recv(size)
        except BlockingIOError:
            _wait(sock, _READABLE, timeout, "body read")
        except OSError as exc:
            raise ClientDisconnected(f"receive failed: {exc}") from exc


def reuse_address(sock: socket.socket) -> None:
    """Let a listener bind its port again while old connections linger in TIME_WAIT.  On
    Windows SO_REUSEADDR would let another process take a port in use, so a listener asks
    for the port to itself there instead (SO_EXCLUSIVEADDRUSE, which allows the rebind)."""
    exclusive = getattr(socket, "SO_EXCLUSIVEADDRUSE", None)
    if exclusive is not None:
        sock.setsockopt(socket.SOL_SOCKET, exclusive, 1)
    else:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
