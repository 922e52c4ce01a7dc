"""Stop new TCP handshakes on a listening socket while the ones under way complete.

Closing a listener resets every connection the kernel holds for it but the server has not
accepted yet, including clients that already sent their request: they see a reset, not an
answer.  On shutdown the server therefore first makes the kernel drop new SYNs (a classic
BPF socket filter: no new handshake starts), accepts what the backlog holds while the
handshakes already under way finish, and only then closes the listener.  A client whose
SYN was dropped retries it and then finds the port closed: it was never accepted, and
knows so before it sends anything.

The handshakes under way include completed ones: with TCP_DEFER_ACCEPT (server.py) the
kernel keeps a connection whose client has sent nothing yet out of the accept queue, and the
client's first bytes come from its application, as late as it likes (a thread of a loaded
process: hundreds of milliseconds).  :func:`handshakes_pending` sees them all, as
SYN_RECV entries in ``/proc/net/tcp``, so the server can wait for them instead of guessing.

Linux only (SO_ATTACH_FILTER); elsewhere the server closes the listener after one last
accept, and the rare connection completing in between is reset by the kernel.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import sys

__all__ = ["handshakes_pending", "refuse_new_handshakes"]

_SO_ATTACH_FILTER = 26  # Linux's value, in <asm-generic/socket.h>

# The filter runs on each TCP segment for the listener with the TCP header at offset 0:
#   A = byte 13 (the flags); A &= SYN|ACK; if A == SYN: drop; else: keep it whole.
_PROGRAM = [
    (0x30, 0, 0, 13),  # ldb [13]
    (0x54, 0, 0, 0x12),  # and #0x12
    (0x15, 0, 1, 0x02),  # jeq #0x02, next, skip one
    (0x06, 0, 0, 0),  # ret #0: drop a bare SYN
    (0x06, 0, 0, 0xFFFFFFFF),  # ret #-1: keep everything else
]
_CODE = b"".join(struct.pack("HBBI", *insn) for insn in _PROGRAM)
# Kept alive for the life of the process: the kernel copies it at attach time, but the
# address must be valid during the call.
_BUFFER = ctypes.create_string_buffer(_CODE, len(_CODE))


def refuse_new_handshakes(sock: socket.socket) -> bool:
    """Make the kernel drop new SYNs to listener ``sock``; False where that is unsupported."""
    if not sys.platform.startswith("linux") or sock.family not in (
        socket.AF_INET,
        socket.AF_INET6,
    ):
        return False
    program = struct.pack("HP", len(_PROGRAM), ctypes.addressof(_BUFFER))  # native layout
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, program)
    except OSError:
        return False
    return True


_SYN_RECV = b"03"  # the state column of /proc/net/tcp (include/net/tcp_states.h)
_TABLES = {socket.AF_INET: "/proc/net/tcp", socket.AF_INET6: "/proc/net/tcp6"}


def handshakes_pending(listeners: list[socket.socket]) -> bool | None:
    """Whether the kernel holds connections for these listeners that accept() cannot return
    yet (SYN_RECV: a handshake under way, or, with TCP_DEFER_ACCEPT, one completed whose
    first bytes have not come); None where that cannot be known.

    Matched by local port only: a connection to another listener on the same port (another
    address, or SO_REUSEPORT) counts too, which only makes the caller wait longer."""
    ports: dict[str, set[int]] = {}
    for sock in listeners:
        table = _TABLES.get(sock.family)
        if table is None:
            continue
        ports.setdefault(table, set()).add(sock.getsockname()[1])
    if not ports:
        return None
    for table, wanted in ports.items():
        try:
            fd = os.open(table, os.O_RDONLY)
        except OSError:  # no procfs: not Linux, or a sandbox without it
            return None
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        finally:
            os.close(fd)
        for line in b"".join(chunks).splitlines()[1:]:
            fields = line.split(None, 4)  # sl, local, remote, state, the rest
            if (
                len(fields) > 3
                and fields[3] == _SYN_RECV
                and int(fields[1].rpartition(b":")[2], 16) in wanted
            ):
                return True
    return False
