"""``App``: the WSGI application object that ties routes, views and error pages together.

One call of the app is: build a ``Request``; route it (404, 405 with an exact ``Allow``,
OPTIONS answered from the routes, HEAD served by the GET view, a 308 to the slashed URL only
for rules declared with the slash); run the ``before_request`` hooks; call the view as
``view(request, **params)``; turn its return value into a ``Response``; run the
``after_request`` hooks on it, then the ``teardown_request`` hooks; send it.  An
``HTTPError`` becomes its error page (the group's or the app's ``errorhandler`` for it, else
a short plain-text page); any other exception is logged on ``app.logger`` and becomes a plain
500 with no traceback unless ``config["DEBUG"]``.  Groups (``App.mount``) add their routes,
hooks and error handlers; see ``group.py`` for the order.

This module must not do I/O besides logging and reading the request body through the
``Request``; it runs under any WSGI server.  It never configures logging.  ``run`` is the one
exception: it imports kakehashi's server when called, for development (docs/design.md says
why that deferred import is allowed), and gives kakehashi's loggers the handlers
``kakehashi serve`` would, where the program has not configured them.

Invariants: the app is safe to call from many threads at once once its routes are
registered (calls share no mutable state); an exception never escapes ``__call__`` before
``start_response`` has been called; teardown hooks run exactly once per request.
"""

from __future__ import annotations

import logging
import sys
import traceback
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from kakehashi.errors import (
    BadRequest,
    ConfigError,
    HTTPError,
    MethodNotAllowed,
    RouteConflictError,
)

from .config import DEFAULTS, Config, read_limit
from .converters import Converter
from .group import Group
from .registry import ErrorHandler, Registry, View
from .request import Request
from .response import TEXT, Response, StartResponse, make_response, redirect, status_phrase
from .routing import Match, RequestRedirect, Router

if TYPE_CHECKING:
    from .testing import Client

__all__ = ["App"]

_PATH_SAFE = "/!$&'()*+,;=:@"
Routed = Match | Response | HTTPError


class App(Registry):
    """A WSGI application; register views with ``route`` / ``get`` / ``post`` and friends."""

    def __init__(
        self,
        *,
        name: str = "kakehashi.app",
        debug: bool = False,
        converters: dict[str, type[Converter]] | None = None,
        max_body_size: int = DEFAULTS["MAX_BODY_SIZE"],
        config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.config = Config(DEFAULTS, DEBUG=debug, MAX_BODY_SIZE=max_body_size)
        self.config.from_mapping(config)
        self.logger = logging.getLogger(name)
        self.router = Router(converters)
        self.views: dict[str, View] = {}
        self.groups: dict[str, Group] = {}

    @property
    def debug(self) -> bool:
        return bool(self.config.get("DEBUG"))

    @property
    def max_body_size(self) -> int:
        return read_limit(self.config, "MAX_BODY_SIZE")

    # --- registration ----------------------------------------------------------------------

    def add_converter(self, name: str, converter: type[Converter]) -> None:
        """Make ``<name:param>`` usable in rules registered from now on."""
        self.router.converters[name] = converter

    def _register(self, rule: str, view: View, methods: tuple[str, ...], endpoint: str) -> None:
        # Conflicts raise RouteConflictError right here, at registration.
        existing = self.views.get(endpoint)
        if existing is not None and existing is not view:
            raise RouteConflictError(f"endpoint {endpoint!r} already belongs to {existing!r}")
        self.router.add(rule, endpoint, methods)
        self.views[endpoint] = view

    def mount(self, prefix: str, group: Group) -> None:
        """Serve ``group``'s routes under ``prefix``; its endpoints become ``"<group>.<view>"``."""
        prefix = prefix.rstrip("/")
        if prefix and not prefix.startswith("/"):
            raise ConfigError(f"mount prefix {prefix!r} must start with '/'")
        if group.name in self.groups or group.mounted_at is not None:
            raise ConfigError(f"group {group.name!r} is already mounted")
        for rule, view, methods, endpoint in group.routes:
            self.add_route(
                prefix + rule, view, methods=methods, endpoint=f"{group.name}.{endpoint}"
            )
        group.mounted_at = prefix
        self.groups[group.name] = group

    def url_for(self, endpoint: str, **params: Any) -> str:
        """The path of ``endpoint`` (without any mount point; see ``Request.url_for``)."""
        return self.router.build(endpoint, params)

    def test_client(self, *, validate: bool = False) -> Client:
        """An in-process client for tests; ``validate`` wraps the app in wsgiref's validator."""
        from .testing import Client  # deferred: testing imports this module

        return Client(self, validate=validate)

    def run(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        debug: bool | None = None,
        **settings: Any,
    ) -> None:
        """Serve this app with kakehashi's server until Ctrl-C: for development.

        ``settings`` are ``ServerConfig`` fields (``threads=8``...); production setups use
        ``kakehashi serve module:app`` instead.  Each request gets an access line on stderr,
        and errors their traceback, as under ``kakehashi serve`` (``access_log=False`` for
        none), unless the program configured logging first: its handlers then get them.
        """
        from kakehashi.server import Server, ServerConfig  # deferred: see docs/design.md
        from kakehashi.server.observe.logdefaults import log_to_stderr_unless_configured

        if debug is not None:
            self.config["DEBUG"] = debug
        settings.setdefault("bind", (f"[{host}]:{port}" if ":" in host else f"{host}:{port}",))
        config = ServerConfig(**settings)
        log_to_stderr_unless_configured(config.access_log)
        server = Server(self, config)
        for address in server.addresses:
            print(f" * {self.name} on http://{address}/ (Ctrl-C to stop)", file=sys.stderr)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            server.shutdown()

    # --- handling --------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            limits = self.max_body_size, read_limit(self.config, "UPLOAD_SPOOL_SIZE")
        except ConfigError as error:  # set wrong at run time: every request is a 500
            self.logger.error("bad app.config: %s", error)
            return self._plain_500(error)(environ, start_response)
        request = Request(environ, self.router, max_body_size=limits[0], spool_size=limits[1])
        return self.handle(request)(environ, start_response)

    def handle(self, request: Request) -> Response:
        """The response to ``request``, after every hook has run; never raises."""
        failure: Exception | None = None
        try:
            try:
                response = self._dispatch(request)
            except HTTPError as error:
                try:
                    response = self._http_error(request, error)
                finally:
                    # Its traceback holds the frame that raised it, which holds the error:
                    # a cycle left to the garbage collector on every 404 unless cut.
                    error.__traceback__ = None
            except Exception as error:
                failure = error
                response = self._internal_error(request, error)
            try:
                response = self._after(request, response)
            except Exception as error:
                failure = error
                response = self._internal_error(request, error)
        finally:
            self._teardown(request, failure)
            failure = None  # this frame, in the failure's traceback, must not hold it
        return response

    def _dispatch(self, request: Request) -> Response:
        routed = self._route(request)
        request.group = self._group_of(request)
        before = [h for r in self._registries(request) for h in r.before_request_hooks]
        for hook in before:
            value = hook(request)
            if value is not None:
                return make_response(value)
        if isinstance(routed, HTTPError):
            raise routed
        if isinstance(routed, Response):
            return routed
        return make_response(self.views[routed.rule.endpoint](request, **routed.params))

    def _route(self, request: Request) -> Routed:
        """The match, an automatic response (OPTIONS, slash redirect) or the routing error."""
        if request.path_error is not None:
            return BadRequest(request.path_error)
        if request.method == "OPTIONS" and request.path == "*":
            return _options(self.router.allowed_everywhere())
        try:
            match = self.router.match(request.method, request.path)
        except RequestRedirect as slash:
            return self._slash_redirect(request, slash.new_path)
        except MethodNotAllowed as error:
            return _options(error.allowed) if request.method == "OPTIONS" else error
        except HTTPError as error:
            return error
        request.endpoint, request.params = match.rule.endpoint, match.params
        return match

    def _group_of(self, request: Request) -> str | None:
        """The group of the matched endpoint, or, when none matched, the deepest mount point's."""
        if request.endpoint is not None:
            name, dot, _ = request.endpoint.partition(".")
            return name if dot and name in self.groups else None
        owners = [group for group in self.groups.values() if group.owns(request.path)]
        if not owners:
            return None
        return max(owners, key=lambda group: len(group.mounted_at or "")).name

    def _registries(self, request: Request) -> list[Registry]:
        """The app and, when the request belongs to one, its group: outermost first."""
        group = self.groups.get(request.group) if request.group else None
        return [self] if group is None else [self, group]

    def _after(self, request: Request, response: Response) -> Response:
        # The innermost registry (the group) sees the response first, the app last.
        after = [h for r in reversed(self._registries(request)) for h in r.after_request_hooks]
        for hook in after:
            result = hook(request, response)
            if result is not None:
                response = make_response(result)
        return response

    def _teardown(self, request: Request, failure: Exception | None) -> None:
        registries = reversed(self._registries(request))
        try:
            for hook in [h for r in registries for h in r.teardown_request_hooks]:
                try:
                    hook(request, failure)
                except Exception as error:
                    self.logger.error("teardown hook %r failed", hook, exc_info=error)
        finally:
            request.close()

    def _slash_redirect(self, request: Request, new_path: str) -> Response:
        location = request.script_root + urllib.parse.quote(new_path, safe=_PATH_SAFE)
        if request.query_string:
            location += "?" + request.query_string
        return redirect(location, 308)

    def _handler_for(
        self, request: Request, error: BaseException, status: int | None
    ) -> ErrorHandler | None:
        registries = self._registries(request)
        for registry in reversed(registries):
            handler = registry.handler_for(error, status)
            if handler is not None:
                return handler
        return None

    def _http_error(self, request: Request, error: HTTPError) -> Response:
        handler = self._handler_for(request, error, error.status)
        if handler is None:
            response = _error_page(error.status, error.description)
        else:
            response = self._run_handler(handler, request, error, error.status)
        for name, value in error.headers:
            response.headers.setdefault(name, value)
        return response

    def _internal_error(self, request: Request, error: Exception) -> Response:
        self.logger.error("%s %s failed", request.method, request.path, exc_info=error)
        handler = self._handler_for(request, error, None) or self._handler_for(request, error, 500)
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
            self.logger.error("the error handler for %r failed", error, exc_info=failure)
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
