"""Listening sockets: where to listen (``--bind``), and binding there.

No settings object here: the callers hand over the addresses and the listen options, so the
config room can use :func:`parse_bind` to check ``--bind`` and every engine can bind.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kakehashi.errors import ConfigError
from kakehashi.server.net.sockio import reuse_address
from kakehashi.server.net.systemd import adopt_socket

__all__ = ["Address", "accept_at_handshake", "bind_sockets", "bound_addresses", "parse_bind"]

_BIND_RE = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]*)):(?P<port>[0-9]{1,5})")


@dataclass(frozen=True)
class Address:
    """Where to listen: a TCP (host, port), a Unix socket path, or an inherited descriptor."""

    host: str = ""
    port: int = 0
    unix_path: str = ""
    fd: int = -1  # a listening socket this process was given (fd://N, systemd)

    def __str__(self) -> str:
        if self.fd >= 0:
            return f"fd://{self.fd}"
        if self.unix_path:
            return f"unix:{self.unix_path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_bind(text: str) -> Address:
    """``HOST:PORT``, ``[::1]:PORT``, ``:PORT`` (all interfaces), ``unix:/path`` or ``fd://N``.

    Raises:
        ConfigError: anything else.
    """
    if text.startswith("fd://"):
        if not text[5:].isdigit() or int(text[5:]) > 65535:
            raise ConfigError(f"cannot bind to {text!r}: want fd://N, N a file descriptor")
        return Address(fd=int(text[5:]))
    if text.startswith("unix:"):
        if len(text) == 5:
            raise ConfigError("unix: needs a path, as in unix:/run/app.sock")
        return Address(unix_path=text[5:])
    m = _BIND_RE.fullmatch(text)
    if m is None or int(m["port"]) > 65535:
        raise ConfigError(
            f"cannot bind to {text!r}: want HOST:PORT, [::1]:PORT, unix:/path or fd://N"
        )
    host = m["v6"] if m["v6"] is not None else (m["host"] or "0.0.0.0")
    return Address(host, int(m["port"]))


def bind_sockets(
    addresses: Iterable[Address], backlog: int = 2048, reuse_port: bool = False
) -> list[socket.socket]:
    """Listening sockets for ``addresses`` (non-blocking), or none at all.

    Raises:
        ConfigError: an address cannot be bound (in use, no permission, bad host).
    """
    sockets: list[socket.socket] = []
    try:
        for address in addresses:
            sockets.append(_bind_one(address, backlog, reuse_port))
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ConfigError(f"cannot listen on {address}: {exc.strerror or exc}") from exc
    return sockets


def _bind_one(address: Address, backlog: int, reuse_port: bool = False) -> socket.socket:
    if address.fd >= 0:
        return adopt_socket(address.fd)
    if address.unix_path:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            Path(address.unix_path).unlink()
        target: Any = address.unix_path
    else:
        family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        reuse_address(sock)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if hasattr(socket, "TCP_DEFER_ACCEPT"):
            # Linux hands a connection to accept() only once its first bytes arrived (or after
            # about a second), as nginx's "deferred": the request is then there to read at once,
            # and a silent connection costs us nothing until the kernel gives up waiting.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
        target = (address.host, address.port)
    try:
        sock.bind(target)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def accept_at_handshake(sock: socket.socket) -> None:
    """Undo TCP_DEFER_ACCEPT (see _bind_one) on ``sock``: connections are handed to accept()
    once their handshake completes, before their first bytes.

    For uvloop: libuv takes one connection from the listener per pass of its loop.  Deferred,
    a burst of connections becomes ready with their requests, while the loop is busy serving
    the first ones; the hundredth waited a hundred busy passes (measured: 100 new keep-alive
    connections under load, first answers up to 110 ms late, p99 30 ms against 4 ms without
    the option).  Accepted at the handshake, they are taken while the loop is still idle."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and hasattr(socket, "TCP_DEFER_ACCEPT"):
        with contextlib.suppress(OSError):  # a socket handed over may not be TCP after all
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 0)


def bound_addresses(sockets: Iterable[socket.socket]) -> list[str]:
    """Where ``sockets`` listen, ports resolved: ``127.0.0.1:54321``, ``[::1]:80``,
    ``unix:/path`` (what both engines log at start and tests read)."""
    out = []
    for sock in sockets:
        name = sock.getsockname()
        if isinstance(name, str):
            out.append(f"unix:{name}")
        elif sock.family == socket.AF_INET6:
            out.append(f"[{name[0]}]:{name[1]}")
        else:
            out.append(f"{name[0]}:{name[1]}")
    return out
