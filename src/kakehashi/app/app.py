"""``App``: the WSGI application object that ties routes, views and error pages together.

One call of the app is: build a ``Request``; route it (404, 405 with an exact ``Allow``,
OPTIONS answered from the routes, HEAD served by the GET view, a 308 to the slashed URL only
for rules declared with the slash); call the view as ``view(request, **params)``; turn its
return value into a ``Response``; send that.  An ``HTTPError`` becomes its error page (the
app's ``errorhandler`` for it, else a short plain-text page); any other exception is logged
on the ``kakehashi.app`` logger and becomes a plain 500 with no traceback unless ``debug``.

This module must not do I/O besides logging and reading the request body through the
``Request``; it runs under any WSGI server.  It never configures logging.

Invariants: the app is safe to call from many threads at once once its routes are
registered (calls share no mutable state); an exception never escapes ``__call__`` before
``start_response`` has been called.
"""

from __future__ import annotations

import logging
import traceback
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from kakehashi.errors import BadRequest, HTTPError, MethodNotAllowed, RouteConflictError

from .converters import Converter
from .request import DEFAULT_MAX_BODY_SIZE, Request
from .response import TEXT, Response, StartResponse, make_response, redirect, status_phrase
from .routing import RequestRedirect, Router

if TYPE_CHECKING:
    from .testing import Client

__all__ = ["App"]

logger = logging.getLogger("kakehashi.app")

View = Callable[..., Any]
ErrorHandler = Callable[[Request, Any], Any]
F = TypeVar("F", bound=Callable[..., Any])
_PATH_SAFE = "/!$&'()*+,;=:@"


class App:
    """A WSGI application; register views with ``route`` / ``get`` / ``post`` and friends."""

    def __init__(
        self,
        *,
        debug: bool = False,
        converters: dict[str, type[Converter]] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self.debug = debug
        self.max_body_size = max_body_size
        self.router = Router(converters)
        self.views: dict[str, View] = {}
        self.error_handlers: dict[int | type[BaseException], ErrorHandler] = {}

    # --- registration ----------------------------------------------------------------------

    def add_converter(self, name: str, converter: type[Converter]) -> None:
        """Make ``<name:param>`` usable in rules registered from now on."""
        self.router.converters[name] = converter

    def add_route(
        self,
        rule: str,
        view: View,
        *,
        methods: Sequence[str] = ("GET",),
        endpoint: str | None = None,
    ) -> None:
        """Register ``view`` for ``rule``; conflicts raise ``RouteConflictError`` right here."""
        name = endpoint or view.__name__
        existing = self.views.get(name)
        if existing is not None and existing is not view:
            raise RouteConflictError(f"endpoint {name!r} already belongs to {existing!r}")
        self.router.add(rule, name, tuple(methods))
        self.views[name] = view

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

    def errorhandler(self, key: int | type[BaseException]) -> Callable[[F], F]:
        """Register ``handler(request, error)`` for a status code or an exception class.

        What the handler returns is converted like a view's return value; a plain body keeps
        the error's status.  ``errorhandler(500)`` also receives unexpected exceptions.
        """

        def register(handler: F) -> F:
            self.error_handlers[key] = handler
            return handler

        return register

    def url_for(self, endpoint: str, **params: Any) -> str:
        """The path of ``endpoint`` (without any mount point; see ``Request.url_for``)."""
        return self.router.build(endpoint, params)

    def test_client(self, *, validate: bool = False) -> Client:
        """An in-process client for tests; ``validate`` wraps the app in wsgiref's validator."""
        from .testing import Client  # deferred: testing imports this module

        return Client(self, validate=validate)

    # --- handling --------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ, self.router, max_body_size=self.max_body_size)
        return self.handle(request)(environ, start_response)

    def handle(self, request: Request) -> Response:
        """The response to ``request``; never raises."""
        try:
            return self._dispatch(request)
        except HTTPError as error:
            return self._http_error(request, error)
        except Exception as error:
            return self._internal_error(request, error)

    def _dispatch(self, request: Request) -> Response:
        if request.path_error is not None:
            raise BadRequest(request.path_error)
        if request.method == "OPTIONS" and request.path == "*":
            return _options(self.router.allowed_everywhere())
        try:
            match = self.router.match(request.method, request.path)
        except RequestRedirect as slash:
            return self._slash_redirect(request, slash.new_path)
        except MethodNotAllowed as error:
            if request.method == "OPTIONS":
                return _options(error.allowed)
            raise
        request.endpoint, request.params = match.rule.endpoint, match.params
        return make_response(self.views[match.rule.endpoint](request, **match.params))

    def _slash_redirect(self, request: Request, new_path: str) -> Response:
        location = request.script_root + urllib.parse.quote(new_path, safe=_PATH_SAFE)
        if request.query_string:
            location += "?" + request.query_string
        return redirect(location, 308)

    def _handler_for(self, error: BaseException, status: int | None) -> ErrorHandler | None:
        if status is not None and status in self.error_handlers:
            return self.error_handlers[status]
        for cls in type(error).__mro__:
            if cls in self.error_handlers:
                return self.error_handlers[cls]
        return None

    def _http_error(self, request: Request, error: HTTPError) -> Response:
        handler = self._handler_for(error, error.status)
        if handler is None:
            response = _error_page(error.status, error.description)
        else:
            response = self._run_handler(handler, request, error, error.status)
        for name, value in error.headers:
            response.headers.setdefault(name, value)
        return response

    def _internal_error(self, request: Request, error: Exception) -> Response:
        logger.error("%s %s failed", request.method, request.path, exc_info=error)
        handler = self._handler_for(error, None) or self.error_handlers.get(500)
        if handler is not None:
            return self._run_handler(handler, request, error, 500)
        return self._plain_500(error)

    def _run_handler(
        self, handler: ErrorHandler, request: Request, error: BaseException, status: int
    ) -> Response:
        try:
            value = handler(request, error)
            response = make_response(value)
        except Exception as failure:
            logger.error("the error handler for %r failed", error, exc_info=failure)
            return self._plain_500(failure)
        if not isinstance(value, tuple | Response):
            response.status = status
        return response

    def _plain_500(self, error: BaseException) -> Response:
        page = _error_page(500, status_phrase(500))
        if self.debug:
            trace = "".join(traceback.format_exception(error))
            page = Response(f"500 Internal Server Error\n\n{trace}", 500, content_type=TEXT)
        return page


def _error_page(status: int, description: str) -> Response:
    phrase = status_phrase(status)
    text = f"{status} {phrase}"
    if description not in ("", phrase):
        text += f": {description}"
    return Response(text + "\n", status, content_type=TEXT)


def _options(allowed: Iterable[str]) -> Response:
    return Response(b"", 200, [("Allow", ", ".join(allowed))], content_type=TEXT)
