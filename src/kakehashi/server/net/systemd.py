"""systemd's two small protocols, with the standard library only.

Socket activation (sd_listen_fds(3)): systemd binds the sockets of a ``.socket`` unit and
starts the service with them as file descriptors 3, 4, ... and ``LISTEN_FDS`` (how many) and
``LISTEN_PID`` (for whom) in the environment.  Readiness (sd_notify(3)): a ``Type=notify``
service sends ``READY=1``, ``RELOADING=1``, ``STOPPING=1`` and ``STATUS=...`` as datagrams to
the Unix socket named by ``NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace).
Without those variables both are no-ops, so the server runs the same outside systemd.
"""

from __future__ import annotations

import contextlib
import os
import socket

__all__ = ["LISTEN_FDS_START", "adopt_socket", "listen_fds", "notify"]

LISTEN_FDS_START = 3


def listen_fds(unset: bool = True) -> list[int]:
    """The descriptors systemd passed to this process (none when not socket-activated).

    ``unset`` removes the variables, so that the processes this one starts do not take them
    for their own (sd_listen_fds's ``unset_environment``).
    """
    count, pid = os.environ.get("LISTEN_FDS", ""), os.environ.get("LISTEN_PID", "")
    if unset:
        for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)
    if not (count.isdigit() and pid.isdigit()) or int(pid) != os.getpid():
        return []
    return list(range(LISTEN_FDS_START, LISTEN_FDS_START + int(count)))


def notify(state: str) -> bool:
    """Send ``state`` (lines of ``KEY=value``) to the service manager; True if sent."""
    where = os.environ.get("NOTIFY_SOCKET", "")
    if not where or where[0] not in "/@" or not hasattr(socket, "AF_UNIX"):
        return False
    address = "\0" + where[1:] if where[0] == "@" else where
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
        sock.sendto(state.encode("utf-8"), address)
        return True
    return False


def adopt_socket(fd: int) -> socket.socket:
    """The listening stream socket open as ``fd`` (given by systemd or ``--bind fd://N``).

    Raises:
        OSError: ``fd`` is not open, not a socket, or not a listening stream socket.
    """
    sock = socket.socket(fileno=fd)  # family and type are read from the descriptor
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_ACCEPTCONN
    ):
        sock.detach()
        raise OSError(f"descriptor {fd} is not a listening stream socket")
    sock.setblocking(False)
    return sock
