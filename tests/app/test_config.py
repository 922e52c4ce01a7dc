"""app.config (mapping, TOML, KAKEHASHI_APP_* environment), app.logger, and app.run serving
with kakehashi's server in a real process."""

from __future__ import annotations

import http.client
import logging
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kakehashi.app import App, Config, Request
from kakehashi.errors import ConfigError

SRC = Path(__file__).resolve().parents[2] / "src"


def test_defaults_and_constructor_values() -> None:
    app = App()
    assert app.config == {"DEBUG": False, "MAX_BODY_SIZE": 16 << 20, "UPLOAD_SPOOL_SIZE": 512 << 10}
    assert isinstance(app.config, dict)
    app = App(debug=True, max_body_size=10, config={"SECRET": "s", "MAX_BODY_SIZE": 20})
    assert (app.debug, app.max_body_size, app.config["SECRET"]) == (True, 20, "s")


def test_from_mapping_toml_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config()
    config.from_mapping({"A": 1}, B=2)
    path = tmp_path / "app.toml"
    path.write_text('NAME = "site"\nMAX_BODY_SIZE = 1024\n[DATABASE]\nurl = "sqlite://"\n')
    config.from_toml(path)
    monkeypatch.setenv("KAKEHASHI_APP_DEBUG", "true")
    monkeypatch.setenv("KAKEHASHI_APP_NAME", "from env")
    monkeypatch.setenv("KAKEHASHI_APP_LIST", '["a", 1]')
    monkeypatch.setenv("KAKEHASHI_APP_", "ignored: no key")
    monkeypatch.setenv("OTHER_DEBUG", "ignored: other prefix")
    config.from_env()
    assert config == {
        "A": 1,
        "B": 2,
        "NAME": "from env",
        "MAX_BODY_SIZE": 1024,
        "DATABASE": {"url": "sqlite://"},
        "DEBUG": True,
        "LIST": ["a", 1],
    }
    config.from_env("MY_", environ={"MY_PORT": "8080", "MY_WORDS": "not json"})
    assert (config["PORT"], config["WORDS"]) == (8080, "not json")


def test_bad_toml_and_missing_files_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Config().from_toml(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        Config().from_toml(tmp_path / "missing.toml")


def test_env_config_drives_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    app = App()

    @app.post("/")
    def echo(req: Request) -> bytes:
        return req.body

    monkeypatch.setenv("KAKEHASHI_APP_MAX_BODY_SIZE", "5")
    app.config.from_env()
    client = app.test_client()
    assert client.post("/", data=b"12345").body == b"12345"
    assert client.post("/", data=b"123456").status == 413


@pytest.mark.parametrize("value", [-1, True, "10", 1 << 41, None])
def test_limits_are_checked(value: object) -> None:
    app = App(config={"MAX_BODY_SIZE": value})
    with pytest.raises(ConfigError, match="MAX_BODY_SIZE"):
        _ = app.max_body_size


def test_logger_is_named_after_the_app(caplog: pytest.LogCaptureFixture) -> None:
    app = App(name="myapp")
    assert app.logger is logging.getLogger("myapp")

    @app.get("/")
    def boom(req: Request) -> str:
        req_logger = app.logger
        req_logger.info("about to fail")
        raise RuntimeError("boom")

    with caplog.at_level(logging.INFO, logger="myapp"):
        assert app.test_client().get("/").status == 500
    assert [r.getMessage() for r in caplog.records if r.name == "myapp"] == [
        "about to fail",
        "GET / failed",
    ]


RUNNER = """
from kakehashi.app import App

app = App(name="runner")

@app.get("/")
def hello(req):
    return "hello from run, debug=" + str(app.debug)

app.run("127.0.0.1", 0, debug=True, threads=2)
"""


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_run_serves_with_kakehashi_until_ctrl_c(tmp_path: Path) -> None:
    script = tmp_path / "runner.py"
    script.write_text(textwrap.dedent(RUNNER))
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        found = re.search(r"runner on http://127\.0\.0\.1:(\d+)/", banner)
        assert found, banner
        connection = http.client.HTTPConnection("127.0.0.1", int(found[1]), timeout=10)
        connection.request("GET", "/")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"hello from run, debug=True")
        assert response.getheader("Server") == "kakehashi"
        connection.close()
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stderr is not None:
            proc.stderr.close()
