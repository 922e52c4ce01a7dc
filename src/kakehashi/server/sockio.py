"""Blocking-with-deadline reads and writes on a non-blocking socket, for worker threads.

Sockets stay non-blocking for their whole life (the poller needs that).  A worker that owns
a connection and must wait for it, to send a response to a slow reader or to read a streamed
body, waits here on that one descriptor with ``poll()``, bounded by a timeout.  Every failure
becomes ClientDisconnected: a client that goes away or stalls is not an error of ours.
"""

from __future__ import annotations

import os
import select
import socket

from kakehashi.errors import ClientDisconnected

__all__ = ["recv_some", "send_all", "send_parts", "sendfile_all"]

_WRITABLE = select.POLLOUT | select.POLLERR | select.POLLHUP
_READABLE = select.POLLIN | select.POLLERR | select.POLLHUP


def _wait(sock: socket.socket, events: int, timeout: float, what: str) -> None:
    poller = select.poll()
    poller.register(sock.fileno(), events)
    if not poller.poll(timeout * 1000):
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


def send_parts(sock: socket.socket, parts: list[bytes], timeout: float) -> None:
    """Send several buffers in order, with one ``sendmsg`` (writev) when the kernel takes them
    all, so a large body is never copied just to be joined to its head.

    Raises:
        ClientDisconnected: the peer closed, reset, or stalled.
    """
    try:
        sent = sock.sendmsg(parts)
    except BlockingIOError:
        sent = 0
    except OSError as exc:
        raise ClientDisconnected(f"send failed: {exc}") from exc
    if sent < sum(map(len, parts)):  # the kernel's buffer filled: finish the slow way
        send_all(sock, memoryview(b"".join(parts))[sent:], timeout)


def sendfile_all(sock: socket.socket, fd: int, offset: int, count: int, timeout: float) -> int:
    """Send ``count`` bytes of file ``fd`` from ``offset`` with ``os.sendfile``; returns bytes sent.

    Stops early at the end of the file (returns fewer bytes).

    Raises:
        ClientDisconnected: the peer closed, reset, or stalled.
    """
    total = 0
    while total < count:
        try:
            sent = os.sendfile(sock.fileno(), fd, offset + total, count - total)
        except BlockingIOError:
            _wait(sock, _WRITABLE, timeout, "send")
            continue
        except OSError as exc:
            raise ClientDisconnected(f"sendfile failed: {exc}") from exc
        if sent == 0:
            break
        total += sent
    return total


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
