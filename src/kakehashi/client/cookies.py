"""The cookie jar's view of our requests and responses (``http.cookiejar``, RFC 6265).

What it does: lets a stdlib :class:`http.cookiejar.CookieJar` pick the cookies a request may
carry (domain, path, secure, expiry: the jar's policy decides) and keep what a response sets.
The jar speaks ``urllib.request``'s types, so a request is shown to it as a
``urllib.request.Request`` and a response as a small object whose ``info()`` has ``get_all``.

What it must not do: parse or match cookies itself; the jar does all of that.
"""

from __future__ import annotations

import http.cookiejar
import urllib.request

from kakehashi.client.models import URL, Headers, Response

__all__ = ["add_cookie_header", "extract_cookies"]


def add_cookie_header(
    jar: http.cookiejar.CookieJar, url: URL, fields: list[tuple[str, str]]
) -> urllib.request.Request:
    """Append the jar's ``Cookie`` field for ``url`` to ``fields``, unless they already have
    one (an explicit Cookie wins, as in urllib and requests).

    Returns:
        The request as the jar saw it; pass it to :func:`extract_cookies` with the response.
    """
    request = urllib.request.Request(str(url), headers=dict(fields))
    jar.add_cookie_header(request)
    cookie = request.unredirected_hdrs.get("Cookie")
    if cookie:
        fields.append(("Cookie", cookie))
    return request


class _SetCookieSource:
    """What ``CookieJar.extract_cookies`` reads: ``info().get_all(name, default)``."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers

    def info(self) -> _SetCookieSource:
        return self

    def get_all(self, name: str, default: list[str]) -> list[str]:
        return self._headers.get_all(name) or default


def extract_cookies(
    jar: http.cookiejar.CookieJar, request: urllib.request.Request, response: Response
) -> None:
    """Keep the cookies ``response`` sets that the jar's policy accepts for ``request``."""
    jar.extract_cookies(_SetCookieSource(response.headers), request)  # type: ignore[arg-type]
