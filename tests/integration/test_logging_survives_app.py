"""``kakehashi serve``'s own logs (the banner, the error log, the access log) go on whatever
the application does to ``logging`` when it is loaded or while it serves, and follow it where
it names kakehashi's loggers: real processes serving Django at default settings, Flask's
documented recipe, and blunter setups (tests/integration/logging_apps.py)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ServeProcess
from tests.wire import get, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

Spawn = Callable[..., ServeProcess]
# A line is due within the flusher's interval (0.5 s); a loaded machine gets some slack.
DUE = 5.0


def _logged_while_serving(proc: ServeProcess, where: str, path: str) -> None:
    """Request ``path`` and see its access line on stderr while the server still runs."""
    assert get(where, path, timeout=10).status == 200
    assert proc.wait_for(f'"GET {path} HTTP/1.1" 200', DUE), proc.stderr
    assert proc.proc.poll() is None  # not the line written at exit


def _stop(proc: ServeProcess) -> None:
    proc.signal(signal.SIGTERM)
    assert proc.wait(20) == 0, proc.stderr


def test_django_at_default_settings(
    serve_process: Spawn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAKEHASHI_DJANGO_DIR", str(tmp_path))
    proc = serve_process("tests.integration.logging_apps:django()", "--port", "0")
    where = proc.address(timeout=40)  # the banner
    _logged_while_serving(proc, where, "/token")
    _logged_while_serving(proc, where, "/count")
    _stop(proc)


def test_django_with_log_files(
    serve_process: Spawn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Files are closed by Django's dictConfig, and opened again when next written to.
    monkeypatch.setenv("KAKEHASHI_DJANGO_DIR", str(tmp_path))
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    proc = serve_process(
        "tests.integration.logging_apps:django()", "--port", "0",
        "--access-logfile", str(access), "--error-logfile", str(errors),
    )  # fmt: skip
    assert wait_until(lambda: errors.exists() and " serving " in errors.read_text(), 40)
    where = errors.read_text().split(" on http://", 1)[1].split("/", 1)[0]
    assert get(where, "/token", timeout=10).status == 200
    assert wait_until(lambda: '"GET /token HTTP/1.1" 200' in access.read_text(), DUE)
    assert proc.proc.poll() is None
    _stop(proc)
    assert "SIGTERM: shutting down gracefully" in errors.read_text()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_flasks_documented_dict_config(serve_process: Spawn, workers: str) -> None:
    proc = serve_process(
        "tests.integration.flask_logging_app:app", "--port", "0", "--workers", workers
    )
    where = proc.address()  # the banner is there
    for number in range(3):
        _logged_while_serving(proc, where, f"/?n={number}")
    assert proc.wait_for("INFO in flask_logging_app: the view logs too")  # the app's own logs
    assert proc.stderr.count(" serving ") == 1  # not again through Flask's root handler
    _stop(proc)
    assert "SIGTERM: shutting down gracefully" in proc.stderr


def test_a_config_naming_the_access_logger_is_followed(
    serve_process: Spawn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    routed = tmp_path / "routed.log"
    monkeypatch.setenv("KAKEHASHI_ROUTED_LOG", str(routed))
    proc = serve_process("tests.integration.logging_apps:rerouted()", "--port", "0")
    where = proc.address()  # kakehashi.error, not named, stays on
    assert get(where, "/routed").status == 200
    assert wait_until(lambda: "/routed" in routed.read_text(), DUE)
    (line,) = routed.read_text().splitlines()
    assert line.startswith("ROUTED 127.0.0.1 - - [") and '"GET /routed HTTP/1.1" 200' in line
    _stop(proc)
    assert "/routed" not in proc.stderr  # where the app sent it, only


def test_basic_config_force_and_logging_shutdown(serve_process: Spawn, tmp_path: Path) -> None:
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    proc = serve_process(
        "tests.integration.logging_apps:rude()", "--port", "0",
        "--access-logfile", str(access), "--error-logfile", str(errors),
    )  # fmt: skip
    assert wait_until(lambda: errors.exists() and " serving " in errors.read_text(), 10)
    where = errors.read_text().split(" on http://", 1)[1].split("/", 1)[0]
    assert get(where, "/rude").status == 200
    assert wait_until(lambda: '"GET /rude HTTP/1.1" 200' in access.read_text(), DUE)
    _stop(proc)


def test_logging_configured_while_serving(serve_process: Spawn) -> None:
    # The first request switches existing loggers off; the server's sweeper switches
    # kakehashi's on again within its tick (lines in between may be lost).
    proc = serve_process("tests.integration.logging_apps:lazy()", "--port", "0")
    where = proc.address()
    assert get(where, "/configures").status == 200
    time.sleep(1.0)
    _logged_while_serving(proc, where, "/after")
    _stop(proc)
    assert "SIGTERM: shutting down gracefully" in proc.stderr
