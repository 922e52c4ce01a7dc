"""Keep ``kakehashi serve``'s own logs on whatever the application does to ``logging``.

An application configures logging when it is imported: Django's ``django.setup()`` calls
``logging.config.dictConfig``, Flask's documented recipe does too.  Two things of that call
reach loggers the configuration does not name:

- every handler of the process is closed.  kakehashi's LogFileHandler opens its destination
  again when it is next written to (logfile.py), and ``logging.StreamHandler`` keeps
  writing, so nothing is needed here;
- with ``disable_existing_loggers`` (true unless said otherwise, also for
  ``logging.config.fileConfig``) every logger that exists and is not named is switched off
  (``Logger.disabled``): the banner, the error log and the access log would go silent.

``logging.config`` is the only code of the standard library that sets ``disabled``, and a
configuration that names a logger switches it on; so a kakehashi logger found disabled was
switched off by a configuration that did not mean it, and :func:`restore_logs` switches it
on again.  A configuration that names ``kakehashi``, ``kakehashi.error`` or
``kakehashi.access`` is followed: their handlers, levels and propagation are the
application's to set, and nothing here touches them.

The guard is off until :func:`guard_logs` (``kakehashi serve`` calls it once it has set up
its logs): a program that embeds the Server keeps full control of ``logging``.
``restore_logs`` runs after the application is imported and at every tick of the server's
sweeper, so a configuration made later (on the first request, in a thread) is undone within
half a second.
"""

from __future__ import annotations

import logging

__all__ = ["guard_logs", "restore_logs", "unguard_logs"]

_NAMES = ("kakehashi", "kakehashi.error", "kakehashi.access")
# The loggers to keep on; empty while the guard is off.  Replaced whole, never mutated, so
# the sweeper may read it from its thread.
_guarded: tuple[logging.Logger, ...] = ()


def guard_logs() -> None:
    """Keep kakehashi's loggers switched on from now on (``kakehashi serve``)."""
    global _guarded
    _guarded = tuple(logging.getLogger(name) for name in _NAMES)


def unguard_logs() -> None:
    """Stop keeping them on (tests)."""
    global _guarded
    _guarded = ()


def restore_logs() -> list[str]:
    """Switch on again the kakehashi loggers a logging configuration switched off without
    naming them; returns their names.  Cheap enough for every sweeper tick: three attribute
    reads while nothing happened."""
    restored = []
    for logger in _guarded:
        if logger.disabled:
            logger.disabled = False
            restored.append(logger.name)
    if restored:
        logging.getLogger("kakehashi.error").debug(
            "the application's logging configuration switched off %s; switched on again "
            "(name them in it to route them)",
            ", ".join(restored),
        )
    return restored
