"""``kakehashi serve`` logging flags as real processes: where the lines go, in which format,
that none is lost on a graceful shutdown, and that a blocked destination stalls nobody."""

from __future__ import annotations

import fcntl
import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, SRC, ServeProcess
from tests.integration.processes import cli
from tests.wire import get, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Spawn = Callable[..., ServeProcess]
F_SETPIPE_SZ = 1031


def _keep_alive(where: str, count: int, path: str = "/", agent: str = "t") -> None:
    host, _, port = where.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for _ in range(count):
            conn.request("GET", path, headers={"User-Agent": agent})
            response = conn.getresponse()
            response.read()
            assert response.status == 200
    finally:
        conn.close()


def test_dash_means_stdout(serve_process: Spawn) -> None:
    proc = serve_process("tests.server_apps:hello", "--port", "0", "--access-logfile", "-")
    get(proc.address(), "/to-stdout")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert proc.proc.stdout is not None
    out = proc.proc.stdout.read()
    assert '"GET /to-stdout HTTP/1.1" 200 12' in out
    assert "/to-stdout" not in proc.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_no_line_is_lost_on_graceful_shutdown(
    serve_process: Spawn, tmp_path: Path, workers: str
) -> None:
    log = tmp_path / "access.log"
    proc = serve_process(
        "tests.server_apps:hello", "--port", "0", "--workers", workers,
        "--access-logfile", str(log),
    )  # fmt: skip
    where = proc.address()
    threads = [threading.Thread(target=_keep_alive, args=(where, 100, "/ka")) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    proc.signal(signal.SIGTERM)  # at once: the flusher's timer has not fired for most
    assert proc.wait(20) == 0
    # Counted by path: on a shared machine a stray client may hit the port too.
    ours = [line for line in log.read_text().splitlines() if '"GET /ka HTTP/1.1" 200' in line]
    assert len(ours) == 300


def test_json_lines(serve_process: Spawn, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    proc = serve_process(
        "tests.server_apps:hello", "--port", "0", "--access-logfile", str(log),
        "--access-log-format", "json",
    )  # fmt: skip
    _keep_alive(proc.address(), 3, "/j?x=1", 'quote " and \\')
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    records = [r for r in records if r["path"] == "/j?x=1"]  # a stray client may come too
    assert len(records) == 3
    assert {r["user_agent"] for r in records} == {'quote " and \\'}


def test_error_logfile(serve_process: Spawn, tmp_path: Path) -> None:
    errors, access, sock = tmp_path / "error.log", tmp_path / "access.log", tmp_path / "k.sock"
    proc = serve_process(
        "tests.server_apps:hello", "--bind", f"unix:{sock}", "--error-logfile", str(errors),
        "--access-logfile", str(access),
    )  # fmt: skip
    assert wait_until(lambda: errors.exists() and "serving" in errors.read_text(), 10)
    assert get(f"unix:{sock}", "/e").status == 200
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert "SIGTERM: shutting down gracefully" in errors.read_text()
    assert "serving" not in proc.stderr
    assert "- - [" in access.read_text() and '"GET /e HTTP/1.1" 200' in access.read_text()


def test_log_config_json_routes_through_logging(serve_process: Spawn, tmp_path: Path) -> None:
    log = tmp_path / "routed.log"
    config = {
        "version": 1,
        "formatters": {"tagged": {"format": "ROUTED %(levelname)s %(message)s"}},
        "handlers": {
            "err": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
            "file": {"class": "logging.FileHandler", "filename": str(log), "formatter": "tagged"},
        },
        "loggers": {
            "kakehashi": {"handlers": ["err"], "level": "INFO"},
            "kakehashi.access": {"handlers": ["file"], "propagate": False},
        },
    }
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(config))
    proc = serve_process("tests.server_apps:hello", "--port", "0", "--log-config", str(path))
    get(proc.address(), "/routed")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    ours = [line for line in log.read_text().splitlines() if "/routed" in line]
    assert len(ours) == 1 and ours[0].startswith("ROUTED INFO 127.0.0.1 - - [")
    assert '"GET /routed HTTP/1.1" 200 12' in ours[0]


def test_log_config_toml_with_the_fast_handler(serve_process: Spawn, tmp_path: Path) -> None:
    log = tmp_path / "fast.log"
    path = tmp_path / "logging.toml"
    path.write_text(
        f"""
[handlers.err]
class = "logging.StreamHandler"
stream = "ext://sys.stderr"

[handlers.access]
class = "kakehashi.server.observe.logfile.LogFileHandler"
filename = "{log}"
flush_interval = 0.1

[loggers.kakehashi]
handlers = ["err"]
level = "INFO"

[loggers."kakehashi.access"]
handlers = ["access"]
propagate = false
"""
    )
    proc = serve_process("tests.server_apps:hello", "--port", "0", "--log-config", str(path))
    get(proc.address(), "/toml")
    assert wait_until(lambda: log.exists() and "/toml" in log.read_text())  # the timer flushed
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0


def test_flags_given_with_log_config_win(serve_process: Spawn, tmp_path: Path) -> None:
    routed, flagged, errors = tmp_path / "routed.log", tmp_path / "flag.log", tmp_path / "e.log"
    config = {
        "handlers": {
            "err": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
            "file": {"class": "logging.FileHandler", "filename": str(routed)},
        },
        "loggers": {
            "kakehashi": {"handlers": ["err"], "level": "INFO"},
            "kakehashi.access": {"handlers": ["file"], "propagate": False},
        },
    }
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(config))
    proc = serve_process(
        "tests.server_apps:hello", "--port", "0", "--log-config", str(path),
        "--access-logfile", str(flagged), "--error-logfile", str(errors),
    )  # fmt: skip
    get(proc.address(), "/flagged")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert '"GET /flagged HTTP/1.1" 200' in flagged.read_text()
    assert "/flagged" not in routed.read_text()
    assert "serving" in errors.read_text() and "serving" in proc.stderr  # both destinations


BAD_LOG_CONFIGS = [
    ("missing.json", None, "cannot read --log-config"),
    ("bad.json", "{not json", "not valid JSON or TOML"),
    ("list.json", "[1, 2]", "must hold a dictConfig"),
    ("bad.toml", "= nope", "not valid JSON or TOML"),
    ("handler.json", '{"handlers": {"h": {"class": "no.such.Class"}}}', "--log-config"),
]


def test_bad_log_config_exits_2(tmp_path: Path) -> None:
    env_path = f"{SRC}:{ROOT}"
    for name, text, message in BAD_LOG_CONFIGS:
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        result = subprocess.run(
            [sys.executable, "-m", "kakehashi", "serve", "--port", "0", "--log-config", str(path)],
            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert result.returncode == 2, (name, result.stderr)
        assert message in result.stderr, (name, result.stderr)


@pytest.mark.parametrize(
    ("fmt", "message", "not_said"),
    [
        ("%(foo)s", "kakehashi: --access-log-format: unknown atom %(foo)s\n", "stray"),
        ("%(h)s 50%", "kakehashi: --access-log-format: stray % at '%'", "unknown atom"),
    ],
)
def test_a_bad_access_log_format_exits_2_naming_what_is_wrong(
    fmt: str, message: str, not_said: str
) -> None:
    result = cli("serve", "tests.server_apps:hello", "--port", "0", "--access-log-format", fmt)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not_said not in result.stderr


def test_a_blocked_stdout_stalls_no_request(serve_process: Spawn, tmp_path: Path) -> None:
    path = tmp_path / "logging.json"
    config = {
        "version": 1,
        "handlers": {
            "err": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
            "out": {
                "class": "kakehashi.server.observe.logfile.LogFileHandler",
                "stream": "ext://sys.stdout",
                "flush_interval": 0.05,
                "max_buffer_bytes": 16384,
            },
        },
        "loggers": {
            "kakehashi": {"handlers": ["err"], "level": "INFO"},
            "kakehashi.access": {"handlers": ["out"], "propagate": False},
        },
    }
    path.write_text(json.dumps(config))
    proc = serve_process("tests.server_apps:hello", "--port", "0", "--log-config", str(path))
    assert proc.proc.stdout is not None
    fcntl.fcntl(proc.proc.stdout.fileno(), F_SETPIPE_SZ, 4096)
    where = proc.address()
    started = time.monotonic()
    _keep_alive(where, 200, "/blocked", "b" * 1000)  # 200 KB of lines into a 4 KiB pipe
    assert time.monotonic() - started < 30  # generous: without the bound this never ends
    drained: list[str] = []
    reader = threading.Thread(target=lambda: drained.append(proc.proc.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    assert proc.wait_for("line(s) dropped", 10)
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    reader.join(10)
    lines = [line for line in drained[0].splitlines() if "/blocked" in line]
    assert 0 < len(lines) < 200  # some got through, the rest were dropped and counted
    assert all(line.endswith('"' + "b" * 1000 + '" ' + line.rsplit(" ", 1)[1]) for line in lines)
