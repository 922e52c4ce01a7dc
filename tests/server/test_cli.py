"""``kakehashi serve`` argument parsing and app loading, in-process (no server started)."""

from __future__ import annotations

import argparse

import pytest

from kakehashi.cli import build_parser, main
from kakehashi.cli.flags import AppSpec, settings_from_args
from kakehashi.cli.serve import DEFAULT_APP, config_from_args, load_app
from kakehashi.errors import AppImportError, ConfigError
from kakehashi.server import ServerConfig
from tests import server_apps

pytestmark = pytest.mark.timeout(10)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def test_defaults() -> None:
    assert settings_from_args(parse(), {}) == (ServerConfig(), AppSpec(DEFAULT_APP, False))


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
    assert config.log_level == "debug" and config.access_logfile == "-"


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
        ["--uds", "/tmp/k.sock", "--port", "1"],
        ["--fd", "3", "-b", "127.0.0.1:1"],
        ["--no-proxy-headers", "--forwarded-allow-ips", "*"],
        ["--log-level", "loud"],
        ["--cert-reqs", "3", "--certfile", "c.pem", "--ca-certs", "ca.pem"],
    ],
)
def test_bad_values_are_config_errors(argv: list[str]) -> None:
    with pytest.raises(ConfigError):
        config_from_args(parse(*argv))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--threads", "many"], "argument --threads: invalid int value: 'many'"),
        (["-t", "soon"], "argument -t/--timeout: invalid float value: 'soon'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["-w", "2", "a:app", "b:app"], "unrecognized arguments: b:app"),
        (["-k", "gevent", "app:app"], "-k/--worker-class is not supported: each worker runs"),
    ],
)
def test_unparseable_flags_exit_2_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    first, second = err.splitlines()
    assert first.startswith(f"kakehashi serve: {message}")
    assert second == "see 'kakehashi serve --help'"


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


def test_a_gunicorn_line_with_the_app_after_the_options() -> None:
    config, spec = settings_from_args(parse("-w", "2", "-b", ":8000", "app:app"), {})
    assert spec == AppSpec("app:app", False)
    assert config.workers == 2 and config.bind == (":8000",)
    assert [(a.host, a.port) for a in config.addresses] == [("0.0.0.0", 8000)]  # as gunicorn


# Each alias is the same setting as its flag: (the alias's argv, the field, the value).
ALIASES = [
    (["-w", "3"], "workers", 3),
    (["-t", "12"], "timeout", 12.0),
    (["-p", "/run/k.pid"], "pid", "/run/k.pid"),
    (["--log-file", "/var/log/k.log"], "error_logfile", "/var/log/k.log"),
    (["--access-logformat", "%(h)s %(r)s"], "access_log_format", "%(h)s %(r)s"),
    (["--limit-request-field_size", "100"], "limit_request_field_size", 100),
    (["--worker-connections", "50"], "connection_limit", 50),
    (["--timeout-keep-alive", "7"], "keep_alive", 7.0),
    (["--timeout-graceful-shutdown", "9"], "graceful_timeout", 9.0),
    (["--limit-max-requests", "1000"], "max_requests", 1000),
    (["--limit-concurrency", "60"], "limit_concurrency", 60),  # its own: 503 above (ASGI)
    (["--no-access-log"], "access_log", False),
    (["--log-level", "WARNING"], "log_level", "WARNING"),
    (["--no-proxy-headers"], "forwarded_allow_ips", ""),
    (["--proxy-headers"], "forwarded_allow_ips", ServerConfig().forwarded_allow_ips),
    (["--uds", "/tmp/k.sock"], "bind", ("unix:/tmp/k.sock",)),
    (["--fd", "3"], "bind", ("fd://3",)),
]


@pytest.mark.parametrize(("argv", "name", "value"), ALIASES, ids=lambda v: str(v))
def test_gunicorn_and_uvicorn_spellings(argv: list[str], name: str, value: object) -> None:
    config = config_from_args(parse(*argv, "tests.server_apps:app"), {})
    assert getattr(config, name) == value


def test_uvicorn_tls_spellings() -> None:
    argv = ["--ssl-certfile", "c.pem", "--ssl-keyfile", "k.pem", "--ssl-ca-certs", "ca.pem",
            "--ssl-cert-reqs", "2", "--ssl-ciphers", "ECDHE",
            "--ssl-keyfile-password", "pw"]  # fmt: skip
    config = config_from_args(parse(*argv), {})
    assert (config.certfile, config.keyfile, config.ca_certs) == ("c.pem", "k.pem", "ca.pem")
    assert (config.cert_reqs, config.ciphers, config.keyfile_password) == (
        "required",
        "ECDHE",
        "pw",
    )


def test_uvicorn_factory_flag() -> None:
    args = parse("--factory", "tests.server_apps:make_app")
    spec = settings_from_args(args, {})[1]
    assert spec == AppSpec("tests.server_apps:make_app", True)
    assert load_app(spec.reference, spec.factory) is server_apps.hello
    assert load_app("tests.server_apps:make_app()", factory=True) is server_apps.hello  # once


def test_help_lists_each_setting_once_with_its_aliases_and_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    lines = [line.strip() for line in text.splitlines()]
    assert sum(line.startswith(("-w, --workers N ", "--workers")) for line in lines) == 1
    assert any(line.startswith("--keep-alive, --timeout-keep-alive N") for line in lines)
    assert not any(line.startswith("--timeout-keep-alive") for line in lines)
    assert "(default: )" not in text
    flat = " ".join(text.split())
    assert "-p, --pid FILE write the process id" in flat
    assert "removed on exit (default: none)" in flat
    assert "(default: the current directory)" in flat
    assert "--access-log, --no-access-log log one line per request" in flat
    assert "kakehashi.access logger (default: on)" in flat
    assert "--no-expose-tracebacks show the traceback" in flat
    assert "--host" not in text.split("options:")[1].split("binding:")[0]  # said in --bind's
