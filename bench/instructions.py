"""Instructions per request: what a server's CPU does for one request, counted, not timed.

    python bench/instructions.py raw|fastapi PEER [PEER ...]

Each peer runs under valgrind's callgrind (every process of it, children too) and serves
500, then 2,500 ``GET /`` on 10 keep-alive connections; the instructions of the second run
less the first's, over 2,000, are one request's, start-up and shutdown cancelling out.  The
count does not move with the machine's load (two runs of one build agree within 0.1%), so it
measures a change on a shared, noisy machine where req/s cannot; it is a proxy of server CPU
per request, not a speed (instructions of C code and of Python's eval loop cost different
times).  Needs ``valgrind`` (Debian's package) and the peers' packages (``.[bench]``).
"""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import peers  # noqa: E402

VALGRIND = ["valgrind", "--tool=callgrind", "--trace-children=yes", "-q"]
REAL = os.path.realpath(sys.executable)  # valgrind must run the interpreter, not a shim
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\n\r\n"
CONNECTIONS = 10
READY_SECONDS = 120  # start-up under valgrind is slow


def _start(name: str, port: int, app: str, out: str) -> subprocess.Popen[bytes]:
    argv = peers.PEERS[name].argv(f"127.0.0.1:{port}", app=app)
    argv[0] = REAL
    path = [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, path)))
    with open(f"{out}/err", "w") as err:
        return subprocess.Popen(
            [*VALGRIND, f"--callgrind-out-file={out}/cg.%p", *argv],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as probe:
                probe.sendall(REQUEST)
                if probe.recv(65536):
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _load(port: int, n: int) -> None:
    """``n`` requests, in rounds of one per connection, each answer read whole."""
    conns = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(CONNECTIONS)]
    for _ in range(n // CONNECTIONS):
        for c in conns:
            c.sendall(REQUEST)
        for c in conns:
            buf = b""
            while not buf.endswith(b"Hello, World!"):
                chunk = c.recv(65536)
                if not chunk:
                    raise RuntimeError("the server closed a connection")
                buf += chunk
    for c in conns:
        c.close()


def _instructions(out: str) -> int:
    total = 0
    # Every numbered part: a dump asked by anyone else splits a process's counts in two.
    for dump in glob.glob(f"{out}/cg.*.[0-9]*"):
        for line in Path(dump).read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                total += int(line.split()[1])
                break
    return total


def run(name: str, n: int, app: str) -> int:
    """Instructions of peer ``name`` serving ``n`` requests, start-up included."""
    port = peers.free_port("127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="cg-") as out:
        proc = _start(name, port, app, out)
        try:
            _wait_ready(port)
            _load(port, n)
            # Dump the counts of this peer's processes (its session: start_new_session) while
            # they still run, so the shutdown is not counted; other callgrind runs on the
            # machine are left alone.
            pids = subprocess.run(
                ["pgrep", "-s", str(proc.pid)], capture_output=True, text=True, check=False
            ).stdout.split()
            for pid in pids:
                subprocess.run(["callgrind_control", "-d", pid], capture_output=True, check=False)
            time.sleep(3)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return _instructions(out)


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    app = sys.argv[1]
    for name in sys.argv[2:]:
        few, many = run(name, 500, app), run(name, 2500, app)
        print(f"{name:24s} {app:8s} instructions/request {(many - few) / 2000:10.0f}", flush=True)


if __name__ == "__main__":
    main()
