"""Settings from a TOML file and KAKEHASHI_<NAME> variables: keys, types, precedence, and
errors that name the key and the source."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from kakehashi.cli import build_parser
from kakehashi.cli.serve import config_from_args
from kakehashi.errors import ConfigError
from kakehashi.server import ServerConfig
from kakehashi.server.config.sources import from_env, from_toml, merge, to_toml

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
