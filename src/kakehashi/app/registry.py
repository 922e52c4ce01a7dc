"""What an ``App`` and a ``Group`` both offer: route decorators, hooks, error handlers, static
files.

Hooks take the request explicitly, like views do:

* ``before_request(req)``: runs before the view; returning anything but ``None`` answers the
  request with that value and skips the view (and the remaining ``before_request`` hooks);
* ``after_request(req, response)``: runs on every response, error pages included; returns the
  response to send (``None`` keeps the one it was given);
* ``teardown_request(req, error)``: runs last, always, even when a view or a hook failed;
  ``error`` is the exception that became a 500, else ``None``.  What it raises is logged and
  ignored.

Each kind runs in registration order.

This module must not dispatch requests; ``App`` does, reading the lists kept here.

Invariants: registration only appends; the lists are read, never changed, while requests run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from kakehashi.errors import ConfigError

from .request import Request
from .response import Response
from .static import send_from_directory

__all__ = ["ErrorHandler", "Registry", "View"]

View = Callable[..., Any]
ErrorHandler = Callable[[Request, Any], Any]
BeforeHook = Callable[[Request], Any]
AfterHook = Callable[[Request, Response], Response | None]
TeardownHook = Callable[[Request, BaseException | None], None]
F = TypeVar("F", bound=Callable[..., Any])


class Registry:
    """Route decorators, hooks and error handlers; subclasses decide what ``add_route`` does."""

    def __init__(self) -> None:
        self.before_request_hooks: list[BeforeHook] = []
        self.after_request_hooks: list[AfterHook] = []
        self.teardown_request_hooks: list[TeardownHook] = []
        self.error_handlers: dict[int | type[BaseException], ErrorHandler] = {}

    def add_route(
        self,
        rule: str,
        view: View,
        *,
        methods: Sequence[str] = ("GET",),
        endpoint: str | None = None,
    ) -> None:
        """Register ``view`` for ``rule``; the endpoint defaults to the view's name."""
        self._register(rule, view, tuple(methods), endpoint or view.__name__)

    def _register(self, rule: str, view: View, methods: tuple[str, ...], endpoint: str) -> None:
        raise NotImplementedError

    def route(
        self, rule: str, *, methods: Sequence[str] = ("GET",), endpoint: str | None = None
    ) -> Callable[[F], F]:
        """Decorator form of ``add_route``."""

        def register(view: F) -> F:
            self.add_route(rule, view, methods=methods, endpoint=endpoint)
            return view

        return register

    def get(self, rule: str, *, endpoint: str | None = None) -> Callable[[F], F]:
        return self.route(rule, methods=("GET",), endpoint=endpoint)

    def post(self, rule: str, *, endpoint: str | None = None) -> Callable[[F], F]:
        return self.route(rule, methods=("POST",), endpoint=endpoint)

    def put(self, rule: str, *, endpoint: str | None = None) -> Callable[[F], F]:
        return self.route(rule, methods=("PUT",), endpoint=endpoint)

    def patch(self, rule: str, *, endpoint: str | None = None) -> Callable[[F], F]:
        return self.route(rule, methods=("PATCH",), endpoint=endpoint)

    def delete(self, rule: str, *, endpoint: str | None = None) -> Callable[[F], F]:
        return self.route(rule, methods=("DELETE",), endpoint=endpoint)

    def static(
        self,
        prefix: str,
        directory: str | Path,
        *,
        endpoint: str = "static",
        max_age: int | None = None,
    ) -> None:
        """Serve the files under ``directory`` at ``prefix/<path:filename>`` (GET and HEAD).

        ``url_for(endpoint, filename="app.css")`` builds their URLs.  ``max_age`` (seconds)
        lets clients cache without asking again; by default they revalidate every time.
        """
        root = Path(directory).resolve()
        if not root.is_dir():
            raise ConfigError(f"static directory {str(directory)!r} is not a directory")
        if max_age is not None and not 0 <= max_age <= 10 * 365 * 86400:
            raise ConfigError(f"static max_age {max_age!r} is out of range (0 to ten years)")

        def serve_static(req: Request, filename: str) -> Response:
            return send_from_directory(req, root, filename, max_age=max_age)

        self.add_route(prefix.rstrip("/") + "/<path:filename>", serve_static, endpoint=endpoint)

    def errorhandler(self, key: int | type[BaseException]) -> Callable[[F], F]:
        """Register ``handler(request, error)`` for a status code or an exception class.

        What the handler returns is converted like a view's return value; a plain body keeps
        the error's status.  ``errorhandler(500)`` also receives unexpected exceptions.
        """

        def register(handler: F) -> F:
            self.error_handlers[key] = handler
            return handler

        return register

    def before_request(self, hook: F) -> F:
        """Run ``hook(req)`` before each view; a non-``None`` result answers the request."""
        self.before_request_hooks.append(hook)
        return hook

    def after_request(self, hook: F) -> F:
        """Run ``hook(req, response)`` on each response; it returns the response to send."""
        self.after_request_hooks.append(hook)
        return hook

    def teardown_request(self, hook: F) -> F:
        """Run ``hook(req, error)`` after each request, whatever happened."""
        self.teardown_request_hooks.append(hook)
        return hook

    def handler_for(self, error: BaseException, status: int | None) -> ErrorHandler | None:
        """The error handler registered here for ``status`` or ``error``'s class, if any."""
        if status is not None and status in self.error_handlers:
            return self.error_handlers[status]
        for cls in type(error).__mro__:
            if cls in self.error_handlers:
                return self.error_handlers[cls]
        return None
