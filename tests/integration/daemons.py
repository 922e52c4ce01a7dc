"""Running a real peer (nginx, HAProxy) in the foreground for the length of a test."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def running(argv: list[str], log: Path, *ports: int, seconds: float = 10) -> Iterator[None]:
    """``argv`` started with its output in ``log``, once it listens on every port of
    127.0.0.1 given; terminated (killed if it must be) on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + seconds
            for port in ports:
                _wait_for_port(port, proc, argv[0], deadline)
            yield
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a process we started (by its handle), killing it if it will not go."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], name: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not start listening on {port}")
