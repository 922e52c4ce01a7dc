"""The flags of ``kakehashi serve``, generated from ServerConfig's fields, and the settings
they make together with the ``--config`` file and the ``KAKEHASHI_*`` variables.

Each setting is one argparse option whose spellings are its flag and the aliases gunicorn and
uvicorn users type (``-w``, ``--timeout-keep-alive``: metadata in server/config/settings.py), so
``--help`` shows it once.  A few uvicorn spellings are not one setting's other name but say
it another way: ``--host``/``--port``, ``--uds`` and ``--fd`` make a ``--bind`` address, and
``--no-proxy-headers`` trusts no proxy; they are accepted, and said in those settings' help.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, get_type_hints

from kakehashi.errors import ConfigError
from kakehashi.server import ServerConfig
from kakehashi.server.config.settings import default_text
from kakehashi.server.config.sources import Layer, from_env, merge, read_toml

__all__ = [
    "DEFAULT_APP",
    "AppSpec",
    "HelpFormatter",
    "Parser",
    "add_arguments",
    "config_from_args",
    "settings_from_args",
]

DEFAULT_APP = "kakehashi.demo:app"
_TYPES = get_type_hints(ServerConfig)


class Parser(argparse.ArgumentParser):
    """A usage error is one line and a pointer to ``--help``, not the whole usage block
    (``kakehashi serve`` has some sixty flags)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\nsee '{self.prog} --help'\n")


class HelpFormatter(argparse.HelpFormatter):
    """Options as ``-w, --workers N``: the value's name once, however many aliases."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        value = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {value}"


# gunicorn's and uvicorn's options that have no kakehashi setting: (takes a value, why).  Known,
# so that the line says so instead of taking the option's value for the APP.
_UNSUPPORTED = {
    ("-k", "--worker-class"): (True, "each worker runs --threads threads; there is no other"),
    ("-D", "--daemon"): (False, "run it under systemd or another supervisor (docs/deploy.md)"),
    ("-e", "--env"): (True, "set the variable in the environment kakehashi starts in"),
    ("-u", "--user"): (True, "start it as that user (systemd's User=)"),
    ("-g", "--group"): (True, "start it as that group (systemd's Group=)"),
    ("-n", "--name"): (True, "kakehashi does not rename its processes"),
    ("--pythonpath",): (True, "set PYTHONPATH, or use --chdir"),
    ("--app-dir",): (True, "use --chdir, or set PYTHONPATH"),
    ("--env-file",): (True, "load the file in the shell or the service unit"),
    ("--http",): (True, "kakehashi has its own HTTP/1.1 implementation and no other"),
    ("--reload-dir",): (True, "--reload watches the imported modules; add files with "
                              "--reload-extra-file"),
}  # fmt: skip


class _Unsupported(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        parser.error(f"{'/'.join(self.option_strings)} is not supported: {self.const}")


@dataclass(frozen=True)
class AppSpec:
    """The application to serve: ``module:attr``, called first when ``factory`` is set."""

    reference: str = DEFAULT_APP
    factory: bool = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "%(prog)s [options] [APP]"  # some sixty options: --help lists them
    parser.add_argument(
        "app",
        nargs="?",
        metavar="APP",
        help="the application as module:attr or module:factory() (default: the --config "
        f"file's app, else {DEFAULT_APP})",
    )
    parser.add_argument(
        "--factory",
        action="store_true",
        default=None,
        help="APP names a factory: call it to get the application (as uvicorn's --factory)",
    )
    groups: dict[str, Any] = {}
    for f in dataclasses.fields(ServerConfig):
        section = f.metadata["section"]
        groups[section] = groups.get(section) or parser.add_argument_group(section)
        _add_setting(groups[section], f)
    files = parser.add_argument_group("configuration file")
    files.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="read settings from a TOML file (keys are the long flag names, and app = "
        "'module:attr'); the environment (KAKEHASHI_<NAME>) and the command line override it",
    )
    files.add_argument(
        "--print-config", action="store_true", help="print the merged settings as TOML and exit"
    )
    files.add_argument(
        "--check-config",
        action="store_true",
        help="check the settings and import the application, then exit (0 ok, 2 not)",
    )
    # uvicorn's other ways of saying --bind and --forwarded-allow-ips: said in their help.
    hidden = argparse.SUPPRESS
    parser.add_argument("--host", help=hidden)
    parser.add_argument("--port", type=int, help=hidden)
    parser.add_argument("--uds", help=hidden)
    parser.add_argument("--fd", type=int, help=hidden)
    parser.add_argument("--proxy-headers", action=argparse.BooleanOptionalAction, help=hidden)
    for options, (takes_value, why) in _UNSUPPORTED.items():
        nargs = None if takes_value else 0
        parser.add_argument(
            *options, action=_Unsupported, nargs=nargs, const=why, default=hidden, help=hidden
        )


def _add_setting(group: Any, f: dataclasses.Field[Any]) -> None:
    meta = f.metadata
    aliases = meta["aliases"]
    # Short ones first, as gunicorn's help has them: -w, --workers N.
    flags = [a for a in aliases if not a.startswith("--")]
    flags += [meta["flag"], *(a for a in aliases if a.startswith("--"))]
    kind = _TYPES[f.name]
    help_text = f"{meta['help']} (default: {default_text(f)})".replace("%", "%%")
    if kind is bool:
        action: Any = argparse.BooleanOptionalAction
        group.add_argument(*flags, dest=f.name, action=action, help=help_text)
    elif kind == tuple[str, ...]:  # repeatable
        metavar = meta.get("metavar")
        group.add_argument(*flags, dest=f.name, action="append", metavar=metavar, help=help_text)
    else:
        metavar = meta.get("metavar", "N" if kind in (int, float) else "VALUE")
        group.add_argument(*flags, dest=f.name, type=kind, metavar=metavar, help=help_text)


def config_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> ServerConfig:
    """The settings alone (see :func:`settings_from_args`): what SIGHUP reads again."""
    return settings_from_args(args, environ)[0]


def settings_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> tuple[ServerConfig, AppSpec]:
    """The settings, defaults < ``--config`` file < ``KAKEHASHI_*`` variables < flags, and
    the application (the command line's, else the file's, else the demo).

    Raises:
        ConfigError: a bad value (naming its key and source), or two ways of saying the
            same thing at once (--bind and --host/--port).
    """
    layers: list[Layer] = []
    from_file: dict[str, Any] = {}
    if getattr(args, "config", None):
        layer, from_file = read_toml(args.config)
        layers.append(layer)
    layers.append(from_env(os.environ if environ is None else environ))
    layers.append(("command line", _command_line(args)))
    config = merge(layers)
    if args.app is not None:
        return config, AppSpec(args.app, bool(args.factory))
    reference = from_file.get("app", DEFAULT_APP)
    return config, AppSpec(reference, bool(args.factory or from_file.get("factory", False)))


def _command_line(args: argparse.Namespace) -> dict[str, tuple[str, Any]]:
    settings: dict[str, tuple[str, Any]] = {}
    for f in dataclasses.fields(ServerConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            settings[f.name] = (f.metadata["flag"], tuple(value) if type(value) is list else value)
    bind = _uvicorn_bind(args)
    if bind is not None:
        settings["bind"] = bind
    if args.proxy_headers is False:  # uvicorn: believe no X-Forwarded-* header
        if args.forwarded_allow_ips is not None:
            raise ConfigError("use either --no-proxy-headers or --forwarded-allow-ips")
        settings["forwarded_allow_ips"] = ("--no-proxy-headers", "")
    return settings


def _uvicorn_bind(args: argparse.Namespace) -> tuple[str, tuple[str, ...]] | None:
    """``--host``/``--port``, ``--uds`` or ``--fd`` as a ``--bind`` address (one of them)."""
    ways: list[tuple[str, str]] = []
    if args.host is not None or args.port is not None:
        host = args.host or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        ways.append(("--host/--port", f"{host}:{args.port if args.port is not None else 8000}"))
    if args.uds is not None:
        ways.append(("--uds", f"unix:{args.uds}"))
    if args.fd is not None:
        ways.append(("--fd", f"fd://{args.fd}"))
    if not ways:
        return None
    if len(ways) > 1 or args.bind:
        names = (["--bind"] if args.bind else []) + [name for name, _ in ways]
        raise ConfigError(f"use only one of {', '.join(names)}: each says where to listen")
    name, address = ways[0]
    return name, (address,)
