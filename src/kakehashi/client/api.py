"""The client's policy: :class:`Client`, and the one-shot ``request()``, ``get()``...

What it does: the Client turns a call into a request (default fields, Host, the framing
fields for the body, the timeout) and hands it to a :class:`~kakehashi.client.exchange.
Transport`, which does the exchange; it follows redirects when asked.  ``request()``,
``get()``... are one-shot shortcuts over a fresh Client.

What it must not do: touch sockets or the pool, or parse HTTP (the Transport and
``kakehashi.http1`` do).

Invariants:
    * A Client always has a finite timeout; None is refused.
    * Credentials (Authorization, Cookie) never follow a redirect to another origin, and a
      body that cannot be read twice is never "resent" empty by a 307/308.
"""

from __future__ import annotations

import http.cookiejar
import ssl
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from kakehashi.client.auth import Auth, AuthInput, to_auth
from kakehashi.client.cookies import add_cookie_header, extract_cookies
from kakehashi.client.decoding import ACCEPT_ENCODING, decode_body
from kakehashi.client.exchange import Transport
from kakehashi.client.models import (
    DEFAULT_TIMEOUT,
    URL,
    Body,
    HeadersInput,
    PreparedBody,
    Response,
    Timeout,
    header_pairs,
)
from kakehashi.client.payloads import (
    FilesInput,
    FormInput,
    ParamsInput,
    add_params,
    encode_payload,
)
from kakehashi.client.proxy import Proxies
from kakehashi.errors import TooManyRedirects

__all__ = [
    "Client",
    "OneShotOptions",
    "PayloadOptions",
    "RequestOptions",
    "delete",
    "get",
    "head",
    "options",
    "patch",
    "post",
    "put",
    "request",
]

USER_AGENT = "kakehashi/0.1"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_BODY_FIELDS = frozenset({"content-length", "transfer-encoding", "content-type"})
_CREDENTIAL_FIELDS = frozenset({"authorization", "cookie", "proxy-authorization"})
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class PayloadOptions(TypedDict, total=False):
    """What one request carries: the keyword arguments every request method takes."""

    params: ParamsInput
    headers: HeadersInput
    body: Body
    data: FormInput
    json: Any
    files: FilesInput
    auth: AuthInput


class RequestOptions(PayloadOptions, total=False):
    """The keyword arguments of :meth:`Client.request` (for the method shortcuts)."""

    timeout: Timeout | float | None
    follow_redirects: bool | None
    stream: bool


class OneShotOptions(PayloadOptions, total=False):
    """The keyword arguments of :func:`request` (for the method shortcuts)."""

    timeout: Timeout | float
    follow_redirects: bool


@dataclass(slots=True)
class _Hop:
    """One request of a redirect chain."""

    method: str
    url: URL
    headers: list[tuple[str, str]]
    body: PreparedBody | None


class Client:
    """Policy over a :class:`Transport`: defaults, timeouts, redirects, cookies, auth, proxies.

    Use it as a context manager, or call :meth:`close`, to close the kept-alive connections.

    Args:
        timeout: seconds for every phase, or a :class:`Timeout`; never None.
        headers: fields sent with every request (a request's own fields override them).
        follow_redirects: follow 301, 302, 303, 307 and 308 answers.
        max_redirects: how many redirects one request may follow.
        ssl_context: the TLS context for https (verification on, system store, by default).
        transport: the mechanics; a new :class:`Transport` when None.
        auth: credentials for every request: ``("user", "password")`` (Basic), or
            :func:`~kakehashi.client.auth.bearer` ``(token)``.
        cookies: the jar that keeps what servers set; a new, empty one when None.
        decompress: send ``Accept-Encoding: gzip, deflate`` and decode such bodies.
        proxy: send every request through this ``http://[user:pw@]host:port`` proxy (or a
            :class:`Proxies`); when None and ``trust_env``, ``HTTP_PROXY``, ``HTTPS_PROXY``
            and ``NO_PROXY`` decide.  Ignored when ``transport`` is given.
        trust_env: read the proxy variables from the environment.

    Raises:
        ValueError: an invalid timeout or proxy.
    """

    def __init__(
        self,
        *,
        timeout: Timeout | float = DEFAULT_TIMEOUT,
        headers: HeadersInput = None,
        follow_redirects: bool = False,
        max_redirects: int = 20,
        ssl_context: ssl.SSLContext | None = None,
        transport: Transport | None = None,
        auth: AuthInput = None,
        cookies: http.cookiejar.CookieJar | None = None,
        decompress: bool = True,
        proxy: Proxies | str | None = None,
        trust_env: bool = True,
    ) -> None:
        self.timeout = Timeout.of(timeout)
        self.headers = [("User-Agent", USER_AGENT), ("Accept", "*/*")]
        if decompress:
            self.headers.append(("Accept-Encoding", ACCEPT_ENCODING))
        self.headers = _merge(self.headers, header_pairs(headers))
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.auth = to_auth(auth)
        self.cookies = http.cookiejar.CookieJar() if cookies is None else cookies
        self.decompress = decompress
        if transport is None:
            proxies = Proxies.of(proxy, trust_env)
            transport = Transport(ssl_context=ssl_context, proxies=proxies)
        self.transport = transport

    def request(
        self,
        method: str,
        url: str,
        *,
        params: ParamsInput = None,
        headers: HeadersInput = None,
        body: Body = None,
        data: FormInput = None,
        json: Any = None,
        files: FilesInput = None,
        auth: AuthInput = None,
        timeout: Timeout | float | None = None,
        follow_redirects: bool | None = None,
        stream: bool = False,
    ) -> Response:
        """Send a request and return its response.

        Args:
            method: ``GET``, ``POST``... (upper-cased here).
            url: an absolute ``http://`` or ``https://`` URL.
            params: query parameters appended to the URL: a mapping (a list value repeats
                the name) or ``(name, value)`` pairs.
            headers: fields for this request, a mapping or ``(name, value)`` pairs.
            body: bytes, text (UTF-8), a binary file (its size gives Content-Length), or an
                iterator of bytes (sent chunked).
            data: a form, sent ``application/x-www-form-urlencoded`` (or as the fields of a
                multipart body when ``files`` is given).
            json: a value sent as ``application/json``.
            files: ``{name: content}`` sent as ``multipart/form-data``; content is bytes, a
                binary file, or ``(filename, content[, content_type])``.
            auth: credentials for this request (overrides the client's).
            timeout: overrides the client's timeout for this request.
            follow_redirects: overrides the client's setting for this request.
            stream: return as soon as the head arrived; read the body with
                ``response.iter_bytes()`` and close the response when done.

        Returns:
            The response, with its body read unless ``stream`` is true.

        Raises:
            ValueError: a malformed URL or timeout, both Content-Length and
                Transfer-Encoding in ``headers``, or more than one of body, data, json.
            TypeError: a body, form or file of a type that cannot be sent.
            TransportError: a connect, read or write error or timeout (each also the matching
                builtin: ConnectionError or TimeoutError).
            RemoteProtocolError: the server's response is malformed.
            TooManyRedirects: more than ``max_redirects`` redirects.
        """
        fields = header_pairs(headers)
        payload = encode_payload(body, data, json, files)
        self._add_defaults(fields, payload.content_type, to_auth(auth) or self.auth)
        hop = _Hop(method.upper(), URL.parse(add_params(url, params)), fields, payload.body)
        limits = self.timeout if timeout is None else Timeout.of(timeout)
        follow = self.follow_redirects if follow_redirects is None else follow_redirects
        response = self._follow(hop, limits, follow)
        if not stream:
            response.read()
        return response

    @staticmethod
    def _add_defaults(
        fields: list[tuple[str, str]], content_type: str | None, credentials: Auth | None
    ) -> None:
        """The payload's Content-Type and the credentials, unless ``fields`` set them."""
        names = {name.lower() for name, _ in fields}
        if content_type and "content-type" not in names:
            fields.append(("Content-Type", content_type))
        if credentials is not None and "authorization" not in names:
            fields.append(("Authorization", credentials.authorization()))

    def _follow(self, hop: _Hop, timeout: Timeout, follow: bool) -> Response:
        history: list[Response] = []
        while True:
            response = self._send(hop, timeout)
            nxt = _redirect(hop, response) if follow else None
            if nxt is None:
                break
            response.read()
            history.append(response)
            if len(history) > self.max_redirects:
                raise TooManyRedirects(f"more than {self.max_redirects} redirects from {hop.url}")
            hop = nxt
        response.history = history
        return response

    def _send(self, hop: _Hop, timeout: Timeout) -> Response:
        fields = _merge(self.headers, hop.headers)
        names = {name.lower() for name, _ in fields}
        if {"content-length", "transfer-encoding"} <= names:
            raise ValueError("a request cannot have both Content-Length and Transfer-Encoding")
        if "host" not in names:
            fields.insert(0, ("Host", hop.url.authority))
        if not names & {"content-length", "transfer-encoding"}:
            if hop.body is not None and hop.body.length is None:
                fields.append(("Transfer-Encoding", "chunked"))
            elif hop.body is not None or hop.method in _METHODS_WITH_BODY:
                fields.append(("Content-Length", str(hop.body.length if hop.body else 0)))
        cookie_request = add_cookie_header(self.cookies, hop.url, fields)
        encoded = [(n.encode("ascii"), _encode_value(v)) for n, v in fields]
        response = self.transport.send(hop.method, hop.url, encoded, hop.body, timeout)
        extract_cookies(self.cookies, cookie_request, response)
        if self.decompress:
            decode_body(response)
        return response

    def stream(self, method: str, url: str, **kwargs: Unpack[RequestOptions]) -> Response:
        """:meth:`request` with ``stream=True``: use it as ``with client.stream(...) as r:``."""
        kwargs["stream"] = True
        return self.request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Unpack[RequestOptions]) -> Response:
        """A GET request; see :meth:`request`."""
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Unpack[RequestOptions]) -> Response:
        """A HEAD request; see :meth:`request`."""
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, **kwargs: Unpack[RequestOptions]) -> Response:
        """A POST request; see :meth:`request`."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Unpack[RequestOptions]) -> Response:
        """A PUT request; see :meth:`request`."""
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Unpack[RequestOptions]) -> Response:
        """A PATCH request; see :meth:`request`."""
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Unpack[RequestOptions]) -> Response:
        """A DELETE request; see :meth:`request`."""
        return self.request("DELETE", url, **kwargs)

    def options(self, url: str, **kwargs: Unpack[RequestOptions]) -> Response:
        """An OPTIONS request; see :meth:`request`."""
        return self.request("OPTIONS", url, **kwargs)

    def close(self) -> None:
        """Close the kept-alive connections."""
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _merge(base: list[tuple[str, str]], override: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``base`` without the names ``override`` sets, then ``override`` (repeats kept)."""
    names = {name.lower() for name, _ in override}
    return [f for f in base if f[0].lower() not in names] + list(override)


def _encode_value(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _redirect(hop: _Hop, response: Response) -> _Hop | None:
    """The next request of a redirect, or None when this response is not one to follow."""
    location = response.headers.get("location")
    if response.status not in _REDIRECTS or not location:
        return None
    url = hop.url.join(location)
    headers, body, method = hop.headers, hop.body, hop.method
    if (response.status == 303 and method != "HEAD") or (
        response.status in (301, 302) and method == "POST"
    ):
        method, body = ("GET", None)
        headers = [f for f in headers if f[0].lower() not in _BODY_FIELDS]
    elif body is not None and body.replay is None:
        return None  # 307/308 must resend the body, and this one cannot be read twice
    if url.origin != hop.url.origin:
        headers = [f for f in headers if f[0].lower() not in _CREDENTIAL_FIELDS]
    return _Hop(method, url, headers, body)


def request(
    method: str,
    url: str,
    *,
    timeout: Timeout | float = DEFAULT_TIMEOUT,
    follow_redirects: bool = False,
    **kwargs: Unpack[PayloadOptions],
) -> Response:
    """Send one request on a new connection and read the whole response.

    Args and Raises: as :meth:`Client.request`.

    Returns:
        The response with its body read.
    """
    with Client(timeout=timeout, follow_redirects=follow_redirects) as client:
        return client.request(method, url, **kwargs)


def get(url: str, **kwargs: Unpack[OneShotOptions]) -> Response:
    """A one-shot GET; see :func:`request`."""
    return request("GET", url, **kwargs)


def head(url: str, **kwargs: Unpack[OneShotOptions]) -> Response:
    """A one-shot HEAD; see :func:`request`."""
    return request("HEAD", url, **kwargs)


def post(url: str, **kwargs: Unpack[OneShotOptions]) -> Response:
    """A one-shot POST; see :func:`request`."""
    return request("POST", url, **kwargs)


def put(url: str, **kwargs: Unpack[OneShotOptions]) -> Response:
    """A one-shot PUT; see :func:`request`."""
    return request("PUT", url, **kwargs)


def patch(url: str, **kwargs: Unpack[OneShotOptions]) -> Response:
    """A one-shot PATCH; see :func:`request`."""
    return request("PATCH", url, **kwargs)


def delete(url: str, **kwargs: Unpack[OneShotOptions]) -> Response:
    """A one-shot DELETE; see :func:`request`."""
    return request("DELETE", url, **kwargs)


def options(url: str, **kwargs: Unpack[OneShotOptions]) -> Response:
    """A one-shot OPTIONS; see :func:`request`."""
    return request("OPTIONS", url, **kwargs)
