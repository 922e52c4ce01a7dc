"""The settings table of docs/settings.md, generated from ServerConfig's fields.

No I/O here: :func:`settings_markdown` returns the text; ``python -m kakehashi.server.config.page``
prints it, and a test checks that docs/settings.md is up to date.
"""

from __future__ import annotations

import dataclasses

from kakehashi.server.config.settings import ServerConfig, default_text

__all__ = ["settings_markdown"]


def settings_markdown() -> str:
    """docs/settings.md, from the metadata of every ServerConfig field."""
    lines = [
        "# kakehashi serve: settings",
        "",
        "Generated from `ServerConfig` (`python -m kakehashi.server.config.page`); do not edit.",
        "Every setting is a field of `kakehashi.ServerConfig` and a flag of `kakehashi serve`.",
        "",
    ]
    sections: dict[str, list[dataclasses.Field[object]]] = {}
    for f in dataclasses.fields(ServerConfig):
        sections.setdefault(f.metadata["section"], []).append(f)
    for section, fields in sections.items():
        lines += [f"## {section}", "", "| flag | field | default | meaning |", "|---|---|---|---|"]
        for f in fields:
            flag = f.metadata["flag"]
            if f.type in (bool, "bool"):
                flag = f"{flag} / --no-{flag[2:]}"
            aliases = ", ".join(f"`{alias}`" for alias in f.metadata["aliases"])
            flag = f"`{flag}`" + (f" ({aliases})" if aliases else "")
            default = default_text(f)
            lines.append(f"| {flag} | `{f.name}` | {default} | {f.metadata['help']} |")
        lines.append("")
    lines += [
        "In parentheses, the other names of a setting: the spellings of gunicorn (`-w`, `-t`,",
        "`--log-file`, `--access-logformat`, `--worker-connections`, ...) and uvicorn",
        "(`--timeout-keep-alive`, `--ssl-certfile`, `--limit-max-requests`, ...). Also accepted:",
        "uvicorn's `--host`/`--port`, `--uds PATH` and `--fd N` (each instead of `--bind`),",
        "`--proxy-headers` (the default) and `--no-proxy-headers` (`--forwarded-allow-ips ''`),",
        "`--factory` (APP names a factory to call, as `module:factory()` does), and gunicorn's",
        "`-c FILE` (the TOML file below).",
        "",
        "## Configuration file and environment",
        "",
        "Every setting above can also be given in a TOML file read with `--config FILE`, under",
        'its flag\'s name or a long alias (`max-requests = 200`, `bind = ["127.0.0.1:8000"]`,',
        '`log-level = "debug"`), with the application as `app = "module:attr"` (and',
        "`factory = true`; the command line's APP wins), and as the environment variable",
        "`KAKEHASHI_` + its field in capitals (`KAKEHASHI_MAX_REQUESTS=200`;",
        "`KAKEHASHI_BIND` takes addresses separated by commas). The command line wins over the",
        "environment, which wins over the file, which wins over the default. `--print-config`",
        "prints the merged result as TOML; `--check-config` checks it and imports the application",
        "(exit 0, or 2 with one line naming the key and where it came from). SIGHUP reads the",
        "file and the environment again (docs/deploy.md).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(settings_markdown(), end="")
