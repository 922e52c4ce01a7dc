"""StreamingInput: wsgi.input over a body that arrives while the application runs.

The body comes from a body reader (the seam the server fills from the socket); here readers
hand out pieces directly, so what is measured is the stream's own work.  Work is measured,
never time: the bytes a step allocates beyond what it keeps are the bytes it copies, so a
stream that re-joins a growing buffer for every one-byte piece (issue 8: 1 MiB of one-byte
chunks through ``readline()`` took 25 s) shows a per-piece cost that grows with the offset.
"""

from __future__ import annotations

import io
import socket
import statistics
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from kakehashi import http1
from kakehashi.server.threads.input import StreamingInput

pytestmark = pytest.mark.timeout(120)

WINDOW = 2048  # pieces measured at each offset


class PieceReader:
    """A body reader that hands out ``pieces`` one per call, recording what each step allocated
    while the piece index is inside one of the ``windows`` (start offsets)."""

    def __init__(self, pieces: Iterator[bytes], windows: tuple[int, ...] = ()) -> None:
        self.pieces = pieces
        self.windows = windows
        self.index = 0
        self.samples: dict[int, list[int]] = {w: [] for w in windows}
        self._base = -1
        self._window = 0

    def read(self, buf: http1.ReceiveBuffer) -> http1.Data | http1.EndOfMessage:
        self._measure()
        piece = next(self.pieces, None)
        self.index += 1
        return http1.EndOfMessage() if piece is None else http1.Data(piece)

    def _measure(self) -> None:
        if self._base >= 0:  # the step since the previous piece
            peak = tracemalloc.get_traced_memory()[1]
            samples = self.samples[self._window]
            samples.append(peak - self._base)
            self._base = -1
            if len(samples) == WINDOW and self._window != self.windows[0]:
                assert_flat([*self.medians()[:1], statistics.median(samples)])  # fail fast
        if tracemalloc.is_tracing() and not self._inside():
            tracemalloc.stop()
        if self._inside():
            if not tracemalloc.is_tracing():
                tracemalloc.start()
            tracemalloc.reset_peak()
            self._base = tracemalloc.get_traced_memory()[0]

    def _inside(self) -> bool:
        for start in self.windows:
            if start <= self.index < start + WINDOW:
                self._window = start
                return True
        return False

    def read_eof(self) -> http1.EndOfMessage:
        raise AssertionError("never called: the reader ends the body itself")

    def medians(self) -> list[float]:
        return [statistics.median(self.samples[w]) for w in self.windows if self.samples[w]]


def one_byte_line(size: int) -> Iterator[bytes]:
    """One line of ``size`` bytes, one byte at a time."""
    for _ in range(size - 1):
        yield b"x"
    yield b"\n"


@pytest.fixture
def make_stream() -> Iterator[Callable[[PieceReader], StreamingInput]]:
    socks: list[socket.socket] = []

    def make(reader: PieceReader) -> StreamingInput:
        a, b = socket.socketpair()  # never read: the reader supplies the whole body
        socks.extend((a, b))
        return StreamingInput(a, reader, b"", 5.0, False)  # type: ignore[arg-type]

    yield make
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    for sock in socks:
        sock.close()


def assert_flat(medians: list[float]) -> None:
    """The cost of a piece does not grow with the offset (or size) it is measured at."""
    assert all(m <= 2 * medians[0] + 256 for m in medians[1:]), medians


@pytest.mark.parametrize(
    "pieces",
    [[b"a", b"b\n", b"\nc", b"d" * 10, b"\n", b"tail"], [b"x\ny\n" * 300], [b"z"] * 50],
)
def test_reads_match_io_bytesio(
    make_stream: Callable[[PieceReader], StreamingInput], pieces: list[bytes]
) -> None:
    body = b"".join(pieces)
    for sizes in ([1, 2, 3], [7, -1], [0, 100, 5], [None]):
        stream, expected = make_stream(PieceReader(iter(pieces))), io.BytesIO(body)
        for i in range(40):
            size = sizes[i % len(sizes)]
            if i % 3:
                assert stream.readline(size) == expected.readline(size), (sizes, i)
            else:
                assert stream.read(size) == expected.read(size), (sizes, i)
        assert stream.read() == expected.read()
        assert stream.done and stream.bytes_read == len(body)


def test_readline_over_a_mebibyte_of_one_byte_chunks_is_linear(
    make_stream: Callable[[PieceReader], StreamingInput],
) -> None:
    size = 1 << 20
    # Offsets N and 4N, twice: the cost of a piece at 1 MiB is that of a piece at 16 KiB.
    reader = PieceReader(one_byte_line(size), (1 << 14, 1 << 16, 1 << 18, size - WINDOW))
    stream = make_stream(reader)
    assert len(stream.readline()) == size
    assert_flat(reader.medians())


def test_read_n_over_one_byte_chunks_is_linear_in_n(
    make_stream: Callable[[PieceReader], StreamingInput],
) -> None:
    medians = []
    for n in (1 << 14, 1 << 16):
        reader = PieceReader(one_byte_line(n), (n - WINDOW,))
        assert len(make_stream(reader).read(n)) == n
        medians.extend(reader.medians())
    assert_flat(medians)


def test_small_reads_of_a_large_piece_do_not_copy_the_rest(
    make_stream: Callable[[PieceReader], StreamingInput],
) -> None:
    medians = []
    for size in (1 << 18, 1 << 20):
        stream = make_stream(PieceReader(iter([b"y" * size])))
        assert stream.read(1) == b"y"
        samples = []
        tracemalloc.start()
        for _ in range(WINDOW):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            assert stream.read(1) == b"y"
            samples.append(tracemalloc.get_traced_memory()[1] - before)
        tracemalloc.stop()
        medians.append(statistics.median(samples))
        assert len(stream.read()) == size - 1 - WINDOW
    assert_flat(medians)
