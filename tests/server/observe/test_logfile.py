"""LogFileHandler: batched writes from a flusher thread, a bounded buffer that drops and
reports when the destination blocks, whole lines on pipes, and reopening after rotation."""

from __future__ import annotations

import fcntl
import io
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.server.observe.logfile import LogFileHandler, dropped_lines, reopen_log_files
from tests.wire import wait_until

F_SETPIPE_SZ = 1031  # Linux fcntl: the pipe's capacity


@pytest.fixture
def handlers() -> Iterator[list[LogFileHandler]]:
    made: list[LogFileHandler] = []
    yield made
    for handler in made:
        handler.close()


def test_lines_go_out_on_the_timer(tmp_path: Path, handlers: list[LogFileHandler]) -> None:
    path = tmp_path / "a.log"
    handler = LogFileHandler(filename=str(path), flush_interval=0.1)
    handlers.append(handler)
    for number in range(3):
        handler.write_line(f"line {number}")
    assert path.read_text() == ""  # buffered: nothing written on the caller's thread
    assert wait_until(lambda: path.read_text() == "line 0\nline 1\nline 2\n")


def test_close_writes_what_is_queued(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    handler = LogFileHandler(filename=str(path), flush_interval=60)
    for number in range(1000):
        handler.write_line(f"line {number}")
    handler.close()
    assert path.read_text().splitlines() == [f"line {number}" for number in range(1000)]


def test_records_through_logging_use_the_formatter(
    tmp_path: Path, handlers: list[LogFileHandler]
) -> None:
    path = tmp_path / "a.log"
    handler = LogFileHandler(filename=str(path))
    handlers.append(handler)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tests.logfile.records")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("hello %s", "there")
        handler.flush()
        assert path.read_text() == "WARNING hello there\n"
    finally:
        logger.removeHandler(handler)


def test_unbuffered_writes_at_once(tmp_path: Path, handlers: list[LogFileHandler]) -> None:
    path = tmp_path / "e.log"
    handler = LogFileHandler(filename=str(path), buffered=False)
    handlers.append(handler)
    handler.write_line("at once")
    assert path.read_text() == "at once\n"


def test_a_stream_without_descriptor(handlers: list[LogFileHandler]) -> None:
    stream = io.StringIO()
    handler = LogFileHandler(stream=stream)
    handlers.append(handler)
    handler.write_line("caught")
    handler.flush()
    assert stream.getvalue() == "caught\n"


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"filename": "x", "stream": io.StringIO()}, {"stream": io.StringIO(), "flush_interval": 0},
     {"stream": io.StringIO(), "max_buffer_bytes": 1 << 40}],
)  # fmt: skip
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LogFileHandler(**kwargs)  # type: ignore[arg-type]


def test_a_blocked_pipe_drops_counts_and_reports(
    handlers: list[LogFileHandler], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kakehashi.error")
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(write_fd, F_SETPIPE_SZ, 4096)
    stream = os.fdopen(write_fd, "w")
    reader = os.fdopen(read_fd, "rb")
    handler = LogFileHandler(stream=stream, flush_interval=0.05, max_buffer_bytes=8192)
    handlers.append(handler)
    try:
        started = time.monotonic()
        for number in range(500):  # 50 KB into a 4 KiB pipe nobody reads
            handler.write_line(f"{number:04d} " + "x" * 94)
        assert time.monotonic() - started < 5  # the caller never waited on the pipe
        assert wait_until(lambda: handler.dropped > 0)
        assert dropped_lines() >= handler.dropped
        received: list[bytes] = []
        drain = threading.Thread(target=lambda: received.append(reader.read()), daemon=True)
        drain.start()
        assert wait_until(lambda: "line(s) dropped" in caplog.text)
        handler.close()
        stream.close()
        drain.join(5)
        got = received[0].decode().splitlines()
        # Whole lines only, in order, none torn: the pipe got pieces ending at a line end.
        assert all(len(line) == 99 and line[5:] == "x" * 94 for line in got)
        numbers = [int(line[:4]) for line in got]
        assert numbers == sorted(numbers)
        assert len(got) + handler.dropped == 500
    finally:
        reader.close()
        if not stream.closed:
            stream.close()


def test_reopen_after_rotation(tmp_path: Path, handlers: list[LogFileHandler]) -> None:
    path = tmp_path / "access.log"
    handler = LogFileHandler(filename=str(path), flush_interval=60)
    handlers.append(handler)
    plain_path = tmp_path / "plain.log"
    plain = logging.FileHandler(plain_path)
    logger = logging.getLogger("kakehashi.test_reopen")
    logger.addHandler(plain)
    logger.propagate = False
    try:
        handler.write_line("before")
        logger.warning("plain before")
        path.rename(tmp_path / "access.log.1")
        plain_path.rename(tmp_path / "plain.log.1")
        reopen_log_files()
        handler.write_line("after")
        logger.warning("plain after")
        handler.flush()
        plain.flush()
        assert (tmp_path / "access.log.1").read_text() == "before\n"  # queued lines first
        assert path.read_text() == "after\n"
        assert (tmp_path / "plain.log.1").read_text() == "plain before\n"
        assert plain_path.read_text() == "plain after\n"
    finally:
        logger.removeHandler(plain)
        plain.close()


def test_past_8_kib_the_request_thread_writes_without_waking_the_flusher(
    tmp_path: Path, handlers: list[LogFileHandler]
) -> None:
    path = tmp_path / "a.log"
    handler = LogFileHandler(filename=str(path), flush_interval=60)
    handlers.append(handler)
    line = "x" * 99
    for _ in range(82):  # the 82nd line takes the buffer past 8 KiB (8,192 characters)
        handler.write_line(line)
    assert path.read_text() == (line + "\n") * 82  # written at once, on this thread
    assert not handler._wake.is_set()


# -- closed by logging's machinery, still written to ------------------------------------------


def test_a_closed_handler_written_to_again_opens_its_file_and_flusher_again(
    tmp_path: Path, handlers: list[LogFileHandler]
) -> None:
    # dictConfig and logging.shutdown close every handler of the process, also one still on
    # a logger that keeps logging: like logging.FileHandler, it opens the file again.
    path = tmp_path / "a.log"
    handler = LogFileHandler(filename=str(path), flush_interval=0.05)
    handlers.append(handler)
    handler.write_line("before")
    handler.close()
    assert path.read_text() == "before\n"
    path.rename(tmp_path / "moved.log")  # the file is opened by its path again, not kept
    handler.write_line("after")
    # No flush(): the flusher's timer writes it, so the flusher runs again.
    assert wait_until(lambda: path.exists() and path.read_text() == "after\n")
    assert handler in _live_handlers()  # reopen_log_files() and dropped_lines() see it again


def test_an_unbuffered_handler_closed_and_written_to_again(
    tmp_path: Path, handlers: list[LogFileHandler]
) -> None:
    path = tmp_path / "e.log"
    handler = LogFileHandler(filename=str(path), buffered=False)
    handlers.append(handler)
    handler.close()
    handler.write_line("after close")
    assert path.read_text() == "after close\n"


def test_a_stream_handler_keeps_writing_after_logging_shutdown(
    handlers: list[LogFileHandler],
) -> None:
    stream = io.StringIO()
    handler = LogFileHandler(stream=stream, flush_interval=0.05)
    handlers.append(handler)
    logging.shutdown([weakref.ref(handler)])  # what dictConfig does to every handler
    assert not stream.closed  # not ours to close
    handler.write_line("still here")
    assert wait_until(lambda: stream.getvalue() == "still here\n")


def test_a_file_that_cannot_be_opened_again_keeps_the_lines(
    tmp_path: Path, handlers: list[LogFileHandler]
) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    path = directory / "a.log"
    handler = LogFileHandler(filename=str(path), flush_interval=0.05)
    handlers.append(handler)
    handler.close()
    path.unlink()
    directory.rmdir()
    handler.write_line("waits")
    time.sleep(0.3)  # the flusher tries a few times, and cannot open the path
    directory.mkdir()
    assert wait_until(lambda: path.exists() and path.read_text() == "waits\n")
    assert handler.dropped == 0


def _live_handlers() -> list[LogFileHandler]:
    from kakehashi.server.observe import logfile

    return list(logfile._live)
