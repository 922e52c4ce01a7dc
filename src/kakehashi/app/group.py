"""``Group``: routes, hooks and error handlers kept apart, mounted on an app under a prefix.

Flask calls this a blueprint::

    api = Group("api")

    @api.get("/users/<int:id>")
    def user(req, id): ...

    app.mount("/api", api)       # GET /api/users/7; req.url_for("api.user", id=7)

A request belongs to the group when its route is one of the group's, or, when no route
matched, when its path lies under the group's prefix (so the group's 404 handler answers
``/api/nope``).  Such a request runs the app's ``before_request`` hooks and then the
group's; ``after_request`` and ``teardown_request`` run the group's first, then the app's;
the group's error handlers are asked before the app's.

This module must not route or dispatch; ``App.mount`` copies the routes into the app's router.

Invariants: a group is mounted at most once; it takes no routes after it is mounted, so what
the app copied is everything the group has.
"""

from __future__ import annotations

import re

from kakehashi.errors import ConfigError

from .registry import Registry, View

__all__ = ["Group"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Group(Registry):
    """Routes and hooks to ``App.mount`` under a URL prefix; endpoints become ``name.view``."""

    def __init__(self, name: str) -> None:
        if not _NAME.fullmatch(name):
            raise ConfigError(f"group name {name!r} must be an identifier (it prefixes endpoints)")
        super().__init__()
        self.name = name
        self.routes: list[tuple[str, View, tuple[str, ...], str]] = []
        self.mounted_at: str | None = None

    def __repr__(self) -> str:
        return f"<Group {self.name!r} at {self.mounted_at!r}>"

    def _register(self, rule: str, view: View, methods: tuple[str, ...], endpoint: str) -> None:
        # Recorded for App.mount; rule conflicts are found when the group is mounted.
        if self.mounted_at is not None:
            raise ConfigError(f"group {self.name!r} is already mounted; add routes before")
        self.routes.append((rule, view, methods, endpoint))

    def owns(self, path: str) -> bool:
        """Whether ``path`` lies under the prefix this group is mounted at."""
        prefix = self.mounted_at
        return prefix is not None and (path == prefix or path.startswith(prefix + "/"))
