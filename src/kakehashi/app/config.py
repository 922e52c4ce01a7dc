"""``app.config``: a plain dict of settings, with loaders from a mapping, a TOML file or the
environment.

The framework reads three keys (upper case, as in Flask); everything else is the
application's own:

* ``DEBUG`` (``False``): a 500 page shows the traceback;
* ``MAX_BODY_SIZE`` (16 MiB): a larger request body answers 413;
* ``UPLOAD_SPOOL_SIZE`` (512 KiB): an uploaded file larger than this is kept in a temporary
  file instead of memory.

``from_env`` takes every ``KAKEHASHI_APP_<KEY>`` variable; a value that parses as JSON
(``true``, ``1048576``, ``["a"]``) is stored parsed, anything else as the string.

This module must not read settings on its own initiative: loaders run only when called.

Invariants: the limits are checked when they are read (``read_limit``), so a bad value set
by any means gives a ``ConfigError`` naming the key, never a wrong limit.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kakehashi.errors import ConfigError

__all__ = ["DEFAULTS", "ENV_PREFIX", "Config", "read_limit"]

ENV_PREFIX = "KAKEHASHI_APP_"
DEFAULTS: dict[str, Any] = {
    "DEBUG": False,
    "MAX_BODY_SIZE": 16 * 1024 * 1024,
    "UPLOAD_SPOOL_SIZE": 512 * 1024,
}
# Upper bounds: a limit is a promise about memory and disk, so it cannot be unbounded.
_UPPER = {"MAX_BODY_SIZE": 1 << 40, "UPLOAD_SPOOL_SIZE": 1 << 30}


class Config(dict[str, Any]):
    """A dict; ``from_mapping``, ``from_toml`` and ``from_env`` update it in place."""

    def from_mapping(self, mapping: Mapping[str, Any] | None = None, **values: Any) -> None:
        self.update(mapping or {}, **values)

    def from_toml(self, path: str | Path) -> None:
        """Every top-level key of the TOML file at ``path`` (tables stay nested dicts)."""
        try:
            with open(path, "rb") as file:
                self.update(tomllib.load(file))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from exc

    def from_env(self, prefix: str = ENV_PREFIX, environ: Mapping[str, str] | None = None) -> None:
        """Every ``<prefix><KEY>`` variable of ``environ`` (default ``os.environ``)."""
        source = os.environ if environ is None else environ
        for name in sorted(source):
            if name.startswith(prefix) and len(name) > len(prefix):
                raw = source[name]
                try:
                    value = json.loads(raw)
                except ValueError:
                    value = raw
                self[name[len(prefix) :]] = value


def read_limit(config: Mapping[str, Any], key: str) -> int:
    """The integer setting ``key``, checked against its bounds."""
    value = config.get(key, DEFAULTS[key])
    upper = _UPPER[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= upper:
        raise ConfigError(f"config {key} must be an integer from 0 to {upper}, not {value!r}")
    return value
