"""How each peer is started, stopped and watched.

Every server runs as a subprocess pinned to core 0 (``taskset -c 0``), listens on
127.0.0.1:PORT, serves ``bench.apps:app`` (a WSGI peer) or one of ASGI_APPS (an ASGI peer,
chosen by ``app=``) and has its access log off. The repo root is prepended to ``PYTHONPATH``
so ``bench.apps`` imports; any ``PYTHONPATH`` you set on the command line is kept after it
(that is how to point the ``kakehashi`` peers at a checkout).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "APP",
    "ASGI_APPS",
    "GROUPS",
    "KAKEHASHI_ARGS",
    "KAKEHASHI_ASGI_ARGS",
    "PEERS",
    "ROOT",
    "Peer",
    "Server",
    "available",
    "expand",
    "free_port",
    "missing",
    "moved",
    "rss_bytes",
    "start",
    "versions",
]

ROOT = Path(__file__).resolve().parents[1]
APP = "bench.apps:app"
# The applications an ASGI peer can serve (``{app}`` in its command line), all with
# bench.apps:app's routes and bodies: the server alone, and under a framework.
ASGI_APPS = {"raw": "bench.asgi_app:app", "fastapi": "bench.fastapi_app:app"}
SERVER_CPU = "0"
CLIENT_CPU = "1"
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0

# ---- kakehashi: the one place that says how it is started -------------------------------
# ``{bind}`` becomes HOST:PORT. KAKEHASHI_FLOOD_ARGS is appended for the flood scenario.
KAKEHASHI_ARGS = (
    "-m",
    "kakehashi",
    "serve",
    APP,
    "--bind",
    "{bind}",
    "--threads",
    "4",
    "--no-access-log",
    "--log-level",
    "warning",
)
KAKEHASHI_FLOOD_ARGS = ("--header-timeout", "10")
# ``kakehashi-base``: the same command line run from another checkout's ``src`` (set
# KAKEHASHI_BASE_SRC to it), to compare a change with the commit before it in one run.
_FROM_BASE = (
    "-c",
    "import os, sys; sys.path.insert(0, os.environ['KAKEHASHI_BASE_SRC']); "
    "from kakehashi.cli import main; sys.exit(main())",
)
# The ASGI engine (issue 21): one process, one event loop, the loop named rather than "auto"
# so a run says which it measured.
KAKEHASHI_ASGI_ARGS = (
    "-m",
    "kakehashi",
    "serve",
    "{app}",
    "--bind",
    "{bind}",
    "--interface",
    "asgi",
    "--no-access-log",
    "--log-level",
    "warning",
)
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    name: str
    note: str
    # After sys.executable; "{bind}" is replaced by HOST:PORT, "{host}" and "{port}" by each,
    # "{app}" (ASGI peers) by the module:attribute of the ASGI application served.
    args: tuple[str, ...]
    flood_args: tuple[str, ...] = ()
    # Modules the peer needs: a peer without them is left out of available() and refused by
    # start() with the reason, rather than dying with a traceback in its log.
    requires: tuple[str, ...] = ()
    # In the default peers of the WSGI runs (available()); the ASGI comparison names its own.
    default: bool = True

    @property
    def asgi(self) -> bool:
        return "{app}" in self.args

    def argv(self, bind: str, *, flood: bool = False, app: str = "raw") -> list[str]:
        args = self.args + (self.flood_args if flood else ())
        host, port = bind.rsplit(":", 1)
        host = host.strip("[]")
        return [
            sys.executable,
            *(
                a.replace("{bind}", bind)
                .replace("{host}", host)
                .replace("{port}", port)
                .replace("{app}", ASGI_APPS[app])
                for a in args
            ),
        ]


_GUNICORN = ("-m", "gunicorn", "--bind", "{bind}", "--workers", "1", "--log-level", "warning")
# gunicorn's own ASGI worker (since 24); its pure-Python parser, named so that installing the
# optional C one (gunicorn_h1c) does not change what is measured.
_GUNICORN_ASGI = (*_GUNICORN, "--worker-class", "asgi", "--http-parser", "python")
_UVICORN = (
    "-m",
    "uvicorn",
    "{app}",
    "--host",
    "{host}",
    "--port",
    "{port}",
    "--no-access-log",
    "--log-level",
    "warning",
    "--lifespan",
    "off",
)

PEERS: dict[str, Peer] = {
    peer.name: peer
    for peer in (
        Peer(
            "waitress",
            "waitress, 4 threads (its default), backlog 1024, connection_limit 100",
            ("-m", "waitress", "--threads=4", "--listen={bind}", APP),
        ),
        Peer(
            "gunicorn-sync",
            "gunicorn, 1 sync worker (no keep-alive: closes after every response)",
            (*_GUNICORN, "--worker-class", "sync", APP),
        ),
        Peer(
            "gunicorn-gthread",
            "gunicorn, 1 gthread worker with 4 threads (worker_connections 1000)",
            (*_GUNICORN, "--worker-class", "gthread", "--threads", "4", APP),
        ),
        Peer(
            "cheroot",
            "cheroot.wsgi.Server, numthreads=4 (its default is 10), backlog 1024",
            ("-m", "bench.serve_peer", "cheroot", "{bind}"),
        ),
        Peer(
            "wsgiref",
            "wsgiref.simple_server: single-threaded, one request per connection",
            ("-m", "bench.serve_peer", "wsgiref", "{bind}"),
        ),
        Peer(
            "stdlib",
            "ThreadingHTTPServer + bench/stdlib_wsgi.py, thread per connection, TCP_NODELAY",
            ("-m", "bench.serve_peer", "stdlib", "{bind}"),
        ),
        Peer(
            "uvicorn",
            "uvicorn + httptools + uvloop, 1 worker, ASGI (bench/asgi_app.py unless --app "
            "says otherwise): C parts, for calibration",
            (*_UVICORN, "--loop", "uvloop", "--http", "httptools"),
            requires=("uvicorn", "uvloop", "httptools"),
        ),
        Peer(
            "kakehashi",
            "kakehashi, 4 threads (flood: --header-timeout 10)",
            KAKEHASHI_ARGS,
            KAKEHASHI_FLOOD_ARGS,
        ),
        Peer(
            "kakehashi-log",
            "kakehashi as shipped: 4 threads, access log on (to the peer's log file)",
            tuple(a for a in KAKEHASHI_ARGS if a != "--no-access-log"),
        ),
        Peer(
            "kakehashi-metrics",
            "kakehashi as shipped plus Prometheus metrics (--metrics-bind 127.0.0.1:0)",
            (
                *(a for a in KAKEHASHI_ARGS if a != "--no-access-log"),
                "--metrics-bind",
                "127.0.0.1:0",
            ),
        ),
        Peer(
            "kakehashi-base",
            "kakehashi from $KAKEHASHI_BASE_SRC (an older checkout), same flags",
            (*_FROM_BASE, *KAKEHASHI_ARGS[2:]),
            KAKEHASHI_FLOOD_ARGS,
        ),
        Peer(
            "kakehashi-portable",
            "kakehashi, 4 threads, --poller portable (the selectors one of macOS and Windows)",
            (*KAKEHASHI_ARGS, "--poller", "portable"),
            KAKEHASHI_FLOOD_ARGS,
        ),
        # ---- the ASGI comparison (issue 21): one process or one worker each, log off ----
        Peer(
            "kakehashi-asgi",
            "kakehashi's ASGI engine, --loop asyncio (the standard library only)",
            (*KAKEHASHI_ASGI_ARGS, "--loop", "asyncio"),
            default=False,
        ),
        Peer(
            "kakehashi-asgi-uvloop",
            "kakehashi's ASGI engine, --loop uvloop",
            (*KAKEHASHI_ASGI_ARGS, "--loop", "uvloop"),
            requires=("uvloop",),
            default=False,
        ),
        Peer(
            "kakehashi-asgi-base",
            "kakehashi-asgi from $KAKEHASHI_BASE_SRC (an older checkout), same flags",
            (*_FROM_BASE, *KAKEHASHI_ASGI_ARGS[2:], "--loop", "asyncio"),
            default=False,
        ),
        Peer(
            "kakehashi-asgi-uvloop-base",
            "kakehashi-asgi-uvloop from $KAKEHASHI_BASE_SRC (an older checkout), same flags",
            (*_FROM_BASE, *KAKEHASHI_ASGI_ARGS[2:], "--loop", "uvloop"),
            requires=("uvloop",),
            default=False,
        ),
        Peer(
            "gunicorn-asgi",
            "gunicorn's ASGI worker (--worker-class asgi), 1 worker, --asgi-loop asyncio, "
            "pure-Python parser",
            (*_GUNICORN_ASGI, "--asgi-loop", "asyncio", "{app}"),
            requires=("gunicorn",),
            default=False,
        ),
        Peer(
            "gunicorn-asgi-uvloop",
            "gunicorn's ASGI worker, 1 worker, --asgi-loop uvloop, pure-Python parser",
            (*_GUNICORN_ASGI, "--asgi-loop", "uvloop", "{app}"),
            requires=("gunicorn", "uvloop"),
            default=False,
        ),
        Peer(
            "uvicorn-h11",
            "uvicorn + h11 + asyncio (no C parts), 1 worker",
            (*_UVICORN, "--loop", "asyncio", "--http", "h11"),
            requires=("uvicorn", "h11"),
            default=False,
        ),
        Peer(
            "hypercorn",
            "hypercorn, 1 worker (a child of its supervisor), --worker-class asyncio",
            (
                "-m",
                "hypercorn",
                "--bind",
                "{bind}",
                "--workers",
                "1",
                "--worker-class",
                "asyncio",
                "--log-level",
                "warning",
                "{app}",
            ),
            requires=("hypercorn",),
            default=False,
        ),
        # ---- the WebSocket comparison (issue 22): uvicorn with each of its backends ----
        *(
            Peer(
                f"uvicorn-{backend}",
                f"uvicorn + httptools + uvloop, --ws {backend}, 1 worker",
                (*_UVICORN, "--loop", "uvloop", "--http", "httptools", "--ws", backend),
                requires=("uvicorn", "uvloop", "httptools", module),
                default=False,
            )
            for backend, module in (
                ("websockets", "websockets"),
                ("websockets-sansio", "websockets"),
                ("wsproto", "wsproto"),
            )
        ),
        Peer(
            "granian",
            "granian --interface asgi (Rust I/O and HTTP), 1 worker (a child of its "
            "supervisor), 1 runtime thread, --loop uvloop (what its auto picks when installed)",
            (
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--host",
                "{host}",
                "--port",
                "{port}",
                "--workers",
                "1",
                "--runtime-threads",
                "1",
                "--loop",
                "uvloop",
                "--no-access-log",
                "--log-level",
                "warning",
                "{app}",
            ),
            requires=("granian", "uvloop"),
            default=False,
        ),
    )
}

# ``--peers asgi``: the ASGI comparison of issue 21, in the order its tables are read.
GROUPS: dict[str, tuple[str, ...]] = {
    "asgi": (
        "kakehashi-asgi",
        "kakehashi-asgi-uvloop",
        "gunicorn-asgi",
        "gunicorn-asgi-uvloop",
        "uvicorn-h11",
        "uvicorn",
        "hypercorn",
        "granian",
    ),
    # ``bench/ws_echo.py``'s default: the WebSocket comparison of issue 22, uvloop first.
    "ws": (
        "kakehashi-asgi-uvloop",
        "uvicorn-websockets",
        "uvicorn-websockets-sansio",
        "uvicorn-wsproto",
        "gunicorn-asgi-uvloop",
        "kakehashi-asgi",
        "gunicorn-asgi",
        "hypercorn",
    ),
}


def missing(name: str) -> list[str]:
    """What peer ``name`` needs and this environment lacks (empty when it can start)."""
    from importlib.util import find_spec

    lacks = [m for m in PEERS[name].requires if find_spec(m) is None]
    if (
        name.startswith("kakehashi")
        and name.endswith("-base")
        and not os.environ.get("KAKEHASHI_BASE_SRC")
    ):
        lacks.append("KAKEHASHI_BASE_SRC")
    return lacks


def available() -> list[str]:
    """The default peers of the WSGI runs, less those missing() something: ``kakehashi-base``
    unless KAKEHASHI_BASE_SRC says where it is, ``uvicorn`` unless it is installed with uvloop
    and httptools."""
    return [p for p, peer in PEERS.items() if peer.default and not missing(p)]


def expand(text: str) -> list[str]:
    """Peer names from a comma-separated list, each group of GROUPS replaced by its peers;
    SystemExit naming the known ones on an unknown name."""
    names: list[str] = []
    for name in (n.strip() for n in text.split(",")):
        for one in GROUPS.get(name, (name,) if name else ()):
            if one not in names:
                names.append(one)
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        known = ", ".join([*GROUPS, *PEERS])
        raise SystemExit(f"unknown peers: {', '.join(unknown)} (known: {known})")
    return names


def versions() -> dict[str, str]:
    """Python, peer and wrk versions, and the commit of the kakehashi checkout in use."""
    from importlib import metadata

    found = {"python": sys.version.split()[0]}
    packages = ("waitress", "gunicorn", "cheroot", "uvicorn", "kakehashi")
    packages += ("httptools", "h11", "uvloop", "hypercorn", "granian", "fastapi", "starlette")
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    probe = "import kakehashi, os; print(os.path.dirname(kakehashi.__file__))"
    where = subprocess.run(
        [sys.executable, "-c", probe], env=_env(), capture_output=True, text=True, check=False
    ).stdout.strip()
    if where:
        found["kakehashi_path"] = where  # raw JSON only (git-ignored)
        rev = subprocess.run(
            ["git", "-C", where, "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
            check=False,
        )
        found["kakehashi_commit"] = rev.stdout.strip() or "unknown"
    if shutil.which("wrk") is None:  # ws_echo.py does not need it
        found["wrk"] = "not installed"
    else:
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        found["wrk"] = (wrk.stdout or wrk.stderr).split("Copyright")[0].strip()
    return found


def moved(before: dict[str, str], after: dict[str, str]) -> str | None:
    """A warning if the kakehashi checkout changed commit while the run was going."""
    a, b = before.get("kakehashi_commit"), after.get("kakehashi_commit")
    if a == b:
        return None
    return f"kakehashi changed during the run: {a!r} -> {b!r}; pin a checkout (see RESULTS.md)"


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    extra = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([extra] if extra else [])])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _probe(host: str, port: int, tls: ssl.SSLContext | None = None) -> bool:
    """True once the server answers ``GET /`` with 200 (over TLS with ``tls``)."""
    conn = (
        http.client.HTTPConnection(host, port, timeout=2.0)
        if tls is None
        else http.client.HTTPSConnection(host, port, timeout=2.0, context=tls)
    )
    try:
        conn.request("GET", "/")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found.append(int(entry.name))
    return found


def rss_bytes(pid: int, *, children: bool = True) -> int:
    """VmRSS of ``pid`` (and, recursively, its children) in bytes; 0 if it is gone."""
    total = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    if children:
        total += sum(rss_bytes(child) for child in _children(pid))
    return total


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of ``pid`` and its live children (recursively), in seconds;
    0 for a process that is gone."""
    total = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    return total + sum(cpu_seconds(child) for child in _children(pid))


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Server:
    """A running peer. Stop it with :meth:`stop` (or use it as a context manager)."""

    peer: Peer
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, limit: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-limit:]
        return ""

    def stop(self) -> int | None:
        """terminate, then kill after STOP_TIMEOUT; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        return self.proc.returncode

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    name: str,
    log_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    flood: bool = False,
    label: str = "",
    extra_args: tuple[str, ...] = (),
    tls: ssl.SSLContext | None = None,
    app: str = "raw",
) -> Server:
    """Start peer ``name`` pinned to SERVER_CPU; wait (bounded) until it answers ``GET /``.
    ``extra_args`` go before the application argument (bench/tls.py: the certificate);
    ``tls``: the client context the readiness probe speaks HTTPS with; ``app``: the key in
    ASGI_APPS an ASGI peer serves (a WSGI peer serves bench.apps:app whatever it says)."""
    peer = PEERS[name]
    if lacks := missing(name):
        raise RuntimeError(f"{name} needs {', '.join(lacks)} (pip install -e '.[bench]')")
    port = port or free_port(host)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}{'-' + label if label else ''}.log"
    command = peer.argv(f"{host}:{port}", flood=flood, app=app)
    if extra_args:
        target = ASGI_APPS[app] if peer.asgi else APP
        at = command.index(target) if target in command else len(command)
        command[at:at] = extra_args
    argv = ["taskset", "-c", SERVER_CPU, *command]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    server = Server(peer, host, port, proc, log_path)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{server.log_tail()}")
        if _probe(host, port, tls):
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} not ready after {READY_TIMEOUT:.0f}s:\n{server.log_tail()}")
