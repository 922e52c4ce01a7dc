"""Stop new TCP handshakes on a listening socket while the ones under way complete.

Closing a listener resets every connection the kernel holds for it but the server has not
accepted yet, including clients that already sent their request: they see a reset, not an
answer.  On shutdown the server therefore first makes the kernel drop new SYNs (a classic
BPF socket filter: no new handshake starts), accepts what the backlog holds while the
handshakes already under way finish, and only then closes the listener.  A client whose
SYN was dropped retries it and then finds the port closed: it was never accepted, and
knows so before it sends anything.

Linux only (SO_ATTACH_FILTER); elsewhere the server closes the listener after one last
accept, and the rare connection completing in between is reset by the kernel.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import sys

__all__ = ["refuse_new_handshakes"]

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
