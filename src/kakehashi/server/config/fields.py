"""The metadata every setting of ServerConfig carries (flag, help, section, bounds).

No I/O here.  Its own module so the settings can be declared in more than one file
(settings.py, wssettings.py) with one rule for all.
"""

from __future__ import annotations

from typing import Any

__all__ = ["opt"]


def opt(flag: str, help: str, section: str, **extra: Any) -> dict[str, Any]:
    """A field's metadata.  A number takes ``most`` (its upper bound, said in its help) and
    ``off`` (True when 0 is allowed, meaning "off"); otherwise it must be positive.
    ``aliases`` are the other spellings gunicorn and uvicorn users type (``-w``,
    ``--timeout-keep-alive``): the same setting, so ``--help`` lists it once."""
    if "most" in extra:
        help = f"{help} (at most {extra['most']:,})"
    return {"flag": flag, "help": help, "section": section, "aliases": (), **extra}
