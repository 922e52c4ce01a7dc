"""Run kakehashi as if on a platform without Linux's and POSIX's extras (as on Windows:
no epoll, poll, fork, sendfile, writev, sched_yield, Unix sockets, POSIX signals or
``resource``), for tests/server/test_portability.py, which runs it in a subprocess:

    python -m tests.server.platform_strip check         # print a JSON report (see _check)
    python -m tests.server.platform_strip serve ARGS    # kakehashi serve ARGS

The attributes are removed before anything imports ``selectors``, so DefaultSelector is
the select() one, as on Windows.
"""

from __future__ import annotations

import importlib
import os
import select
import signal
import socket
import sys

_GONE = {
    select: [n for n in dir(select) if n.lower().startswith(("epoll", "poll", "devpoll", "kq"))],
    os: [
        "fork",
        "forkpty",
        "sendfile",
        "writev",
        "pread",
        "register_at_fork",
        "sched_yield",
        "O_NONBLOCK",
        "O_CLOEXEC",
    ],
    signal: ["SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT", "SIGTTIN", "SIGTTOU", "SIGCHLD"],
    socket: ["AF_UNIX", "SO_REUSEPORT", "TCP_DEFER_ACCEPT"],
}


def _tcp_socketpair(*args: object) -> tuple[socket.socket, socket.socket]:
    """What Windows' socketpair is: two ends of a loopback TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        one = socket.create_connection(listener.getsockname())
        two, _ = listener.accept()
    return one, two


def strip() -> None:
    for module, names in _GONE.items():
        for name in names:
            if hasattr(module, name):
                delattr(module, name)
    socket.socketpair = _tcp_socketpair  # type: ignore[assignment]
    sys.modules["resource"] = None  # type: ignore[assignment]  # import fails
    sys.modules.pop("selectors", None)
    # Windows' os takes no dir_fd argument, so its shutil.rmtree (TemporaryDirectory's
    # cleanup) walks by path.  Without this, 3.13's fd-based walk would ask for the
    # O_NONBLOCK removed above.  shutil decides when imported: again if it already was.
    os.supports_dir_fd = set()
    if "shutil" in sys.modules:
        importlib.reload(sys.modules["shutil"])


strip()

import json  # noqa: E402  (after strip: whatever they import sees the platform)
import pkgutil  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import kakehashi  # noqa: E402


def _import_all() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(kakehashi.__path__, "kakehashi.")]
    names = [name for name in names if name != "kakehashi.__main__"]  # it runs the CLI
    for name in names:
        importlib.import_module(name)
    return names


def _refusals() -> dict[str, str]:
    from kakehashi.errors import ConfigError
    from kakehashi.server import ServerConfig

    out = {}
    for key, settings in {
        "workers": {"workers": 2},
        "unix": {"bind": ("unix:k.sock",)},
        "reuse_port": {"reuse_port": True},
        "epoll": {"poller": "epoll"},
    }.items():
        try:
            ServerConfig(**settings)  # type: ignore[arg-type]
            out[key] = "accepted"
        except ConfigError as exc:
            out[key] = str(exc)
    return out


def _app(spool_dir: str) -> Any:
    from kakehashi.demo import app as demo
    from kakehashi.wsgi import FileWrapper

    path = os.path.join(spool_dir, "file.bin")
    with open(path, "wb") as file:
        file.write(bytes(range(256)) * 4096)  # 1 MiB

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/file":
            start_response("200 OK", [("Content-Length", str(1 << 20))])
            return FileWrapper(open(path, "rb"))  # the server closes it
        if environ["PATH_INFO"] == "/big":
            start_response("200 OK", [("Content-Length", str(64 << 16))])
            return (bytes([n]) * 65536 for n in range(64))  # 4 MiB, spooled past 64 KiB
        return demo(environ, start_response)

    return app


def _get(address: str, path: str, delay: float = 0.0) -> tuple[int, bytes]:
    """A request on a raw socket with a small receive window; reads after ``delay``."""
    host, port = address.rsplit(":", 1)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # before the handshake
        sock.settimeout(20)
        sock.connect((host, int(port)))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        time.sleep(delay)
        data = bytearray()
        while chunk := sock.recv(1 << 16):
            data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _count_file_sends() -> dict[str, int]:
    """Counts the fallback's calls, per caller: a file region, and spool files."""
    from kakehashi.server.net import sockio
    from kakehashi.server.threads import outbuf

    counts = {"region": 0, "spool": 0}
    send_file = sockio.send_file

    def counting(key: str) -> Any:
        def call(*args: Any) -> int:
            counts[key] += 1
            return send_file(*args)

        return call

    sockio.send_file = counting("region")  # type: ignore[assignment]
    outbuf.send_file = counting("spool")  # type: ignore[assignment]
    return counts


def _check() -> dict[str, Any]:
    import tempfile

    from kakehashi.server import Server, ServerConfig

    report: dict[str, Any] = {"imported": _import_all(), "refused": _refusals()}
    reads = _count_file_sends()
    with tempfile.TemporaryDirectory() as spool_dir:
        config = ServerConfig(bind=("127.0.0.1:0",), output_buffer_memory=65536)
        server = Server(_app(spool_dir), config)
        server.start()
        try:
            poller: Any = server._poller
            report["poller"] = type(poller).__name__
            report["selector"] = type(poller.selector).__name__
            report["connection_limit"] = poller.connection_limit
            address = server.addresses[0]
            report["hello"] = _get(address, "/")[1].decode()
            status, body = _get(address, "/file", delay=0.3)
            report["file"] = [status, body == bytes(range(256)) * 4096]
            status, body = _get(address, "/big", delay=0.5)
            report["big"] = [status, body == b"".join(bytes([n]) * 65536 for n in range(64))]
        finally:
            server.shutdown(timeout=2)
    report["file_sends"] = reads
    report["threads_left"] = [t.name for t in threading.enumerate() if t.name.startswith("kak")]
    return report


if __name__ == "__main__":
    if sys.argv[1] == "check":
        print(json.dumps(_check()))
    else:
        from kakehashi.cli import main

        raise SystemExit(main(sys.argv[1:]))
