"""Settings from a TOML file and KAKEHASHI_<NAME> variables: keys, types, precedence, and
errors that name the key and the source."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from kakehashi.cli import build_parser
from kakehashi.cli.flags import AppSpec, settings_from_args
from kakehashi.cli.serve import config_from_args
from kakehashi.errors import ConfigError
from kakehashi.server import ServerConfig
from kakehashi.server.config.sources import from_env, from_toml, merge, read_toml, to_toml

pytestmark = pytest.mark.timeout(10)


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "kakehashi.toml"
    path.write_text(text)
    return str(path)


def _config(argv: list[str], env: dict[str, str]) -> ServerConfig:
    return config_from_args(build_parser().parse_args(["serve", *argv]), env)


def test_precedence_command_line_then_environment_then_file_then_default(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path,
        'workers = 3\nthreads = 7\nkeep-alive = 2\nbind = "127.0.0.1:9001"\nmax_requests = 5\n',
    )
    env = {"KAKEHASHI_THREADS": "9", "KAKEHASHI_KEEP_ALIVE": "3.5", "KAKEHASHI_APP_SECRET": "x"}
    config = _config(["--config", path, "--keep-alive", "4"], env)
    assert config.workers == 3  # the file over the default
    assert config.threads == 9  # the environment over the file
    assert config.keep_alive == 4.0  # the command line over both
    assert config.bind == ("127.0.0.1:9001",)
    assert config.max_requests == 5  # underscores work too
    assert config.backlog == ServerConfig().backlog  # nobody set it


def test_every_setting_round_trips_through_toml_and_the_environment() -> None:
    changed = ServerConfig(
        bind=("127.0.0.1:1", "unix:/tmp/x.sock"), threads=3, keep_alive=1.5, preload=True,
        pid="/run/k.pid", max_requests=9, url_scheme="https",
    )  # fmt: skip
    text = to_toml(changed)
    assert merge([("file", {k.replace("-", "_"): (k, v) for k, v in _toml(text).items()})]) == (
        changed
    )
    env = {}
    for f in dataclasses.fields(ServerConfig):
        value = getattr(changed, f.name)
        text_value = ",".join(value) if isinstance(value, tuple) else str(value)
        env["KAKEHASHI_" + f.name.upper()] = text_value
    assert merge([from_env(env)]) == changed


def _toml(text: str) -> dict[str, object]:
    parsed = tomllib.loads(text)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in parsed.items()}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wokers = 2\n", "kakehashi.toml: unknown key 'wokers'"),
        ('workers = "two"\n', "kakehashi.toml: workers: want int, not str 'two'"),
        ("workers = 1000\n", "kakehashi.toml: workers: --workers must be at most 256, not 1,000"),
        ("preload = 1\n", "kakehashi.toml: preload: want bool, not int 1"),
        ("bind = 8000\n", "kakehashi.toml: bind: want a string or a list of strings"),
        ("workers = \n", "kakehashi.toml: not valid TOML"),
        ('log-level = "loud"\n', "kakehashi.toml: log-level: --log-level must be debug, info"),
        ("app = 3\n", "kakehashi.toml: app: want str, not 3"),
        ("factory = 1\n", "kakehashi.toml: factory: want bool, not 1"),
        (
            "keep-alive = 2\ntimeout-keep-alive = 3\n",
            "kakehashi.toml: timeout-keep-alive and keep-alive are the same setting",
        ),
    ],
)
def test_bad_file_keys_and_values_name_key_and_source(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        _config(["--config", path], {})
    assert str(info.value).startswith(str(tmp_path / message.split(":")[0]))
    assert message.split(": ", 1)[1] in str(info.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAKEHASHI_WORKERS": "many"}, "KAKEHASHI_WORKERS: want int, not 'many'"),
        ({"KAKEHASHI_WORKERS": "999"}, "environment: KAKEHASHI_WORKERS: --workers must be at most"),
        ({"KAKEHASHI_PRELOAD": "maybe"}, "KAKEHASHI_PRELOAD: want true or false"),
        ({"KAKEHASHI_WOKERS": "2"}, "KAKEHASHI_WOKERS (did you mean KAKEHASHI_WORKERS?)"),
    ],
)  # fmt: skip
def test_bad_environment_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        _config([], env)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read --config"):
        from_toml(str(tmp_path / "nope.toml"))


def test_command_line_errors_keep_their_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^--workers must be at most 256, not 100,000$"):
        _config(["--workers", "100000"], {})


def test_the_file_takes_every_flag_name_its_long_aliases_and_the_app(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        'app = "tests.server_apps:make_app"\nfactory = true\n'
        'access-logfile = "-"\nlog-level = "debug"\n'
        'log-config = "/etc/k/log.toml"\ntimeout-keep-alive = 7\nlimit-max-requests = 9\n'
        'access-logformat = "%(h)s"\nlog-file = "/tmp/e2.log"\n',
    )
    config, spec = settings_from_args(build_parser().parse_args(["serve", "-c", path]), {})
    assert spec == AppSpec("tests.server_apps:make_app", True)
    assert (config.access_logfile, config.log_level) == ("-", "debug")
    assert (config.log_config, config.keep_alive, config.max_requests) == (
        "/etc/k/log.toml",
        7.0,
        9,
    )
    assert (config.access_log_format, config.error_logfile) == ("%(h)s", "/tmp/e2.log")
    # The command line's APP wins, and the file's factory goes with the file's app.
    argv = ["serve", "--config", path, "tests.server_apps:app"]
    assert settings_from_args(build_parser().parse_args(argv), {})[1] == AppSpec(
        "tests.server_apps:app", False
    )


def test_every_long_alias_is_a_file_key(tmp_path: Path) -> None:
    lines = dict(line.split(" = ", 1) for line in to_toml(ServerConfig()).splitlines())
    checked = 0
    for f in dataclasses.fields(ServerConfig):
        key = f.metadata["flag"][2:]
        for alias in (a[2:] for a in f.metadata["aliases"] if a.startswith("--")):
            (_, settings), _ = read_toml(_write(tmp_path, f"{alias} = {lines[key]}\n"))
            assert settings == {f.name: (alias, getattr(ServerConfig(), f.name))}
            checked += 1
    assert checked >= 12


def test_a_gunicorn_python_config_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "gunicorn.conf.py"
    path.write_text("workers = 2\n")
    with pytest.raises(ConfigError, match="kakehashi reads TOML, not a gunicorn Python config"):
        _config(["-c", str(path)], {})


def test_logging_settings_come_from_the_environment_too() -> None:
    config = _config([], {"KAKEHASHI_LOG_LEVEL": "warning", "KAKEHASHI_ACCESS_LOGFILE": "-"})
    assert (config.log_level, config.access_logfile) == ("warning", "-")
