"""Looking at ``kakehashi serve`` processes from a test: which workers it started, which are
alive, whether its port still answers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ROOT, SRC, ServeProcess
from tests.wire import connect, wait_until


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def started_workers(proc: ServeProcess) -> list[int]:
    return [int(pid) for pid in re.findall(r"started worker (\d+)", proc.stderr)]


def ready_workers(proc: ServeProcess, count: int, timeout: float = 10) -> list[int]:
    assert wait_until(lambda: proc.stderr.count(" ready\n") >= count, timeout), proc.stderr
    return [int(pid) for pid in re.findall(r"worker (\d+) ready", proc.stderr)]


def refused(where: str) -> bool:
    try:
        with connect(where, timeout=1):
            return False
    except OSError:
        return True


def cli(
    *args: str, timeout: float = 20, module: str = "kakehashi"
) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS``, kakehashi's command line by default, run to its end."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(ROOT)]))
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def two_workers(
    serve_process: Callable[..., ServeProcess], app: str, *args: str
) -> tuple[ServeProcess, str, list[int]]:
    """``kakehashi serve APP --workers 2 ARGS`` on a free port, once both workers are ready:
    the process, its address and the workers' pids."""
    proc = serve_process(app, "--port", "0", "--workers", "2", *args)
    where = proc.address()
    return proc, where, ready_workers(proc, 2)


def socket_inodes(pid: int) -> set[str]:
    """The sockets process ``pid`` holds open (``socket:[inode]``), from /proc."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found
