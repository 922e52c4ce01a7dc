"""sockio's fallbacks where the platform lacks ``sendmsg``, ``os.sendfile`` or ``os.pread``
(Windows), over a real socket pair on this one."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator

import pytest

from kakehashi.server.net import sockio

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.settimeout(2)
    with ours, peer:
        yield ours, peer


def _read(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        data += sock.recv(count - len(data))
    return bytes(data)


def test_a_list_goes_out_piece_by_piece_without_sendmsg(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sockio, "_HAS_SENDMSG", False)
    ours, peer = pair
    assert sockio.send_some(ours, [b"head\r\n\r\n", b"body"]) == 12
    assert _read(peer, 12) == b"head\r\n\r\nbody"


def test_without_sendmsg_a_full_socket_takes_what_fits(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sockio, "_HAS_SENDMSG", False)
    ours, _ = pair
    big = [b"a" * (1 << 20)] * 8  # more than the socket buffers hold
    sent = sockio.send_some(ours, big)
    assert 0 < sent < 8 << 20
    assert sockio.send_some(ours, big) == 0  # full now: nothing, and no error


@pytest.mark.parametrize("has_pread", [True, False])
def test_a_file_region_is_read_and_sent_without_sendfile(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch, has_pread: bool
) -> None:
    monkeypatch.setattr(sockio, "_HAS_SENDFILE", False)
    if not has_pread:
        monkeypatch.delattr(os, "pread")
    ours, peer = pair
    with tempfile.TemporaryFile(buffering=0) as file:
        file.write(bytes(range(256)) * 16)
        position = file.tell()
        sent, short = sockio.sendfile_some(ours, file.fileno(), 100, 1000)
        assert (sent, short) == (1000, False)
        assert _read(peer, 1000) == (bytes(range(256)) * 16)[100:1100]
        assert file.tell() == position  # a spool file is appended to at its position
        assert sockio.sendfile_some(ours, file.fileno(), 4000, 500) == (96, True)  # it ended
