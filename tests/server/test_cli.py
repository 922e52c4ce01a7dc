"""``kakehashi serve`` argument parsing and app loading, in-process (no server started)."""

from __future__ import annotations

import argparse

import pytest

from kakehashi.cli import build_parser
from kakehashi.cli.serve import DEFAULT_APP, config_from_args, load_app
from kakehashi.errors import AppImportError, ConfigError
from kakehashi.server import ServerConfig
from tests import server_apps

pytestmark = pytest.mark.timeout(10)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def test_defaults() -> None:
    args = parse()
    assert args.app == DEFAULT_APP
    assert config_from_args(args) == ServerConfig()


def test_every_flag() -> None:
    args = parse(
        "tests.server_apps:app",
        "-b", "127.0.0.1:1",
        "--bind", "[::1]:2",
        "-b", "unix:/tmp/x.sock",
        "--threads", "3",
        "--workers", "2",
        "--backlog", "10",
        "--keep-alive", "1.5",
        "--header-timeout", "2",
        "--body-timeout", "3",
        "--send-timeout", "4",
        "--graceful-timeout", "5",
        "--limit-request-line", "100",
        "--limit-request-fields", "20",
        "--limit-request-field-size", "300",
        "--max-body-size", "1000",
        "--no-access-log",
        "--access-logfile", "-",
        "--log-level", "debug",
    )  # fmt: skip
    config = config_from_args(args)
    assert args.app == "tests.server_apps:app"
    assert config.bind == ("127.0.0.1:1", "[::1]:2", "unix:/tmp/x.sock")
    assert (config.threads, config.workers, config.backlog) == (3, 2, 10)
    assert (config.keep_alive, config.header_timeout, config.body_timeout) == (1.5, 2.0, 3.0)
    assert (config.send_timeout, config.graceful_timeout) == (4.0, 5.0)
    assert config.limit_request_line == 100
    assert config.limit_request_fields == 20
    assert config.limit_request_field_size == 300
    assert config.max_body_size == 1000
    assert config.access_log is False
    assert args.log_level == "debug" and args.access_logfile == "-"


@pytest.mark.parametrize(
    ("argv", "bind"),
    [
        (["--host", "0.0.0.0", "--port", "9000"], ("0.0.0.0:9000",)),
        (["--port", "9001"], ("127.0.0.1:9001",)),
        (["--host", "::1"], ("[::1]:8000",)),
    ],
)
def test_host_and_port_aliases(argv: list[str], bind: tuple[str, ...]) -> None:
    assert config_from_args(parse(*argv)).bind == bind


@pytest.mark.parametrize(
    "argv",
    [
        ["--threads", "0"],
        ["--keep-alive", "-1"],
        ["--bind", "nonsense"],
        ["--host", "x", "--bind", "127.0.0.1:1"],
    ],
)
def test_bad_values_are_config_errors(argv: list[str]) -> None:
    with pytest.raises(ConfigError):
        config_from_args(parse(*argv))


@pytest.mark.parametrize("argv", [["--threads", "many"], ["--log-level", "loud"], ["--bogus"]])
def test_unparseable_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse(*argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_load_app_attr_and_factory() -> None:
    assert load_app("tests.server_apps:app") is server_apps.app
    assert load_app("tests.server_apps:make_app()") is server_apps.hello
    assert load_app("kakehashi.demo:app") is not None


@pytest.mark.parametrize(
    "reference",
    [
        "no_colon",
        "tests.server_apps:",
        "tests.nope_module:app",
        "tests.server_apps:missing",
        "tests.server_apps:not_callable",
        "tests:server_apps",  # a module is not an application
        "tests.server_apps:app()x",
    ],
)
def test_bad_app_references(reference: str) -> None:
    with pytest.raises(AppImportError):
        load_app(reference)
