"""Settings from a TOML file and from ``KAKEHASHI_<NAME>`` environment variables, merged.

Everything here is generated from ServerConfig's fields: a file key is a flag's long name
or long alias (``max-requests``, ``limit-max-requests``; ``max_requests`` is accepted too) and
a variable is ``KAKEHASHI_`` plus the field's name in capitals (``KAKEHASHI_MAX_REQUESTS``).
The file may also name the application (``app = "module:attr"``, ``factory = true``), which
is the command line's business, not a server setting: :func:`read_toml` hands it back apart.
Precedence, lowest first: defaults, the file, the environment, the command line.  Each value
is checked as it is applied, so an error names the key and where it came from.  No I/O but
reading the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
from collections.abc import Mapping
from typing import Any, get_type_hints

from kakehashi.errors import ConfigError
from kakehashi.server.config.settings import ServerConfig

__all__ = [
    "APP_KEYS",
    "ENV_PREFIX",
    "Layer",
    "from_env",
    "from_toml",
    "merge",
    "read_toml",
    "to_toml",
]

ENV_PREFIX = "KAKEHASHI_"
_TYPES = get_type_hints(ServerConfig)
_FIELDS = {f.name: f for f in dataclasses.fields(ServerConfig)}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}

Layer = tuple[str, dict[str, tuple[str, Any]]]  # (source, {field: (key as written, value)})
APP_KEYS: dict[str, type] = {"app": str, "factory": bool}  # the file's keys that are no setting


def _key(name: str) -> str:
    return str(_FIELDS[name].metadata["flag"]).removeprefix("--")


def _file_keys() -> dict[str, str]:
    """Each accepted file key (underscores for dashes) -> its field's name."""
    keys = {}
    for name, f in _FIELDS.items():
        for flag in (f.metadata["flag"], *f.metadata["aliases"]):
            if flag.startswith("--"):
                keys[flag[2:].replace("-", "_")] = name
        keys[name] = name
    return keys


_FILE_KEYS = _file_keys()


def from_toml(path: str) -> Layer:
    """The settings of a TOML file (see :func:`read_toml`)."""
    return read_toml(path)[0]


def read_toml(path: str) -> tuple[Layer, dict[str, Any]]:
    """The settings of a TOML file, and apart from them its :data:`APP_KEYS`.

    Raises:
        ConfigError: the file cannot be read or parsed (a gunicorn Python file is named as
            such), a key is unknown or given twice, a value has the wrong type.
    """
    if path.endswith(".py"):
        raise ConfigError(f"--config {path}: kakehashi reads TOML, not a gunicorn Python "
                          "config (its settings are the flag names: workers = 2)")  # fmt: skip
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read --config {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    settings: dict[str, tuple[str, Any]] = {}
    app: dict[str, Any] = {}
    for key, value in data.items():
        if key in APP_KEYS:
            if not isinstance(value, APP_KEYS[key]):
                raise ConfigError(f"{path}: {key}: want {APP_KEYS[key].__name__}, not {value!r}")
            app[key] = value
            continue
        name = _FILE_KEYS.get(key.replace("-", "_"))
        if name is None:
            raise ConfigError(f"{path}: unknown key {key!r}")
        if name in settings:
            raise ConfigError(f"{path}: {key} and {settings[name][0]} are the same setting")
        settings[name] = (key, _checked_type(name, value, f"{path}: {key}"))
    return (path, settings), app


def _checked_type(name: str, value: Any, where: str) -> Any:
    kind = _TYPES[name]
    if kind == tuple[str, ...]:  # bind, reload-extra-file: one string or a list of them
        value = [value] if isinstance(value, str) else value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where}: want a string or a list of strings")
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise ConfigError(f"{where}: want {kind.__name__}, not {type(value).__name__} {value!r}")
    return value


def from_env(environ: Mapping[str, str]) -> Layer:
    """The settings in ``KAKEHASHI_<NAME>`` variables (lists, as ``KAKEHASHI_BIND``, split on
    commas).

    Other ``KAKEHASHI_`` variables are left alone (``KAKEHASHI_APP_*`` are the application's),
    unless the name is a near miss of a setting's, which is taken for a typo.

    Raises:
        ConfigError: a near-miss name, or a bad value.
    """
    settings: dict[str, tuple[str, Any]] = {}
    for var, text in environ.items():
        if not var.startswith(ENV_PREFIX):
            continue
        name = var.removeprefix(ENV_PREFIX).lower()
        if name not in _FIELDS:
            near = difflib.get_close_matches(name, _FIELDS, n=1, cutoff=0.8)
            if near:
                hint = f"{ENV_PREFIX}{near[0].upper()}"
                raise ConfigError(f"environment: unknown variable {var} (did you mean {hint}?)")
            continue
        settings[name] = (var, _parse_text(name, text, var))
    return "environment", settings


def _parse_text(name: str, text: str, where: str) -> Any:
    kind = _TYPES[name]
    text = text.strip()
    if kind == tuple[str, ...]:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if kind is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ConfigError(f"{where}: want true or false, not {text!r}")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ConfigError(f"{where}: want {kind.__name__}, not {text!r}") from None
    return text


def merge(layers: list[Layer], base: ServerConfig | None = None) -> ServerConfig:
    """Apply each layer's settings in order (later wins), one value at a time.

    Raises:
        ConfigError: a value is refused; the message names its key and source.
    """
    config = base or ServerConfig()
    for source, settings in layers:
        for name, (key, value) in settings.items():
            try:
                config = config.replace(**{name: value})
            except ConfigError as exc:
                if source == "command line":
                    raise
                raise ConfigError(f"{source}: {key}: {exc}") from None
    return config


def to_toml(config: ServerConfig) -> str:
    """The settings as a TOML document ``--config`` reads back (secrets left out)."""
    lines = []
    for name, f in _FIELDS.items():
        value = getattr(config, name)
        if f.metadata.get("secret") and value:  # a password is not printed
            lines.append(f"# {_key(name)} is set (not shown)")
            continue
        lines.append(f"{_key(name)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    return repr(value)
