"""Which proxy a request goes through: ``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``.

What it does: reads the proxy settings (from the environment, as curl and requests do, or
one proxy given outright), says which proxy, if any, serves an origin, and builds the
``CONNECT`` request that opens a tunnel through it for ``https``.

What it must not do: open connections or read responses (the Transport does, through
``kakehashi.http1``), or speak TLS to the proxy itself (only ``http://`` proxies).

Invariants:
    * The lower-case variable wins over the upper-case one; ``HTTP_PROXY`` is ignored when
      ``REQUEST_METHOD`` is set, since in a CGI process a client's ``Proxy:`` header arrives
      as that variable ("httpoxy", CVE-2016-5385).
    * ``NO_PROXY``: ``*`` (everything), a host name (that host and its subdomains; a leading
      dot is allowed), an IP address, an address block (``10.0.0.0/8``), each optionally with
      ``:port``; entries are separated by commas or spaces.
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from kakehashi import http1
from kakehashi.client.auth import BasicAuth

__all__ = ["Origin", "Proxies", "Proxy"]

Origin = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class Proxy:
    """One ``http://`` proxy: where it listens and the credentials it wants, if any."""

    host: str
    port: int
    authorization: str | None = None

    @classmethod
    def parse(cls, text: str) -> Proxy:
        """``host:port``, ``http://host:port`` or ``http://user:password@host:port``.

        Raises:
            ValueError: another scheme, no host, or a bad port.
        """
        text = text.strip()
        if "://" not in text:
            text = "http://" + text
        parts = urllib.parse.urlsplit(text)
        if parts.scheme.lower() != "http":
            raise ValueError(f"only http:// proxies are supported, not {text!r}")
        if not parts.hostname:
            raise ValueError(f"no host in the proxy {text!r}")
        try:
            port = parts.port or 80
        except ValueError as exc:
            raise ValueError(f"bad port in the proxy {text!r}") from exc
        authorization = None
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            authorization = BasicAuth(user, password).authorization()
        return cls(parts.hostname, port, authorization)

    @property
    def origin(self) -> Origin:
        """Where to open the TCP connection."""
        return "http", self.host, self.port

    def connect_request(self, origin: Origin) -> http1.Request:
        """The ``CONNECT host:port`` request that opens a tunnel to ``origin``."""
        _, host, port = origin
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        fields = [(b"Host", authority.encode("ascii"))]
        if self.authorization:
            fields.append((b"Proxy-Authorization", self.authorization.encode("ascii")))
        return http1.Request(b"CONNECT", authority.encode("ascii"), http1.Headers(fields))


@dataclass(frozen=True, slots=True)
class Proxies:
    """The proxy for each scheme, and the hosts that go direct."""

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def of(cls, proxy: Proxies | str | None, trust_env: bool) -> Proxies:
        """Proxies from what a Client is given: these, one proxy for all, or the environment.

        Raises:
            ValueError: a malformed proxy.
        """
        if isinstance(proxy, Proxies):
            return proxy
        if proxy is not None:
            one = Proxy.parse(proxy)
            return cls(one, one)
        return cls.from_env() if trust_env else cls()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Proxies:
        """Read ``http_proxy``, ``https_proxy`` and ``no_proxy`` (either case).

        Raises:
            ValueError: a variable names a malformed proxy.
        """
        env = os.environ if environ is None else environ

        def proxy(name: str, upper_ok: bool = True) -> Proxy | None:
            value = env.get(name) or (env.get(name.upper(), "") if upper_ok else "")
            try:
                return Proxy.parse(value) if value.strip() else None
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from exc

        no = (env.get("no_proxy") or env.get("NO_PROXY", "")).replace(",", " ").split()
        return cls(
            proxy("http_proxy", upper_ok="REQUEST_METHOD" not in env),
            proxy("https_proxy"),
            tuple(entry.lower() for entry in no),
        )

    def for_origin(self, origin: Origin) -> Proxy | None:
        """The proxy that serves ``origin``, or None to connect directly."""
        scheme, host, port = origin
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or any(_bypass(e, host.lower(), port) for e in self.no_proxy):
            return None
        return proxy


def _bypass(entry: str, host: str, port: int) -> bool:
    """Whether one ``NO_PROXY`` entry covers ``host:port``."""
    if entry == "*":
        return True
    name, want_port = entry, None
    if entry.count(":") == 1 or (entry.startswith("[") and "]:" in entry):
        name, _, port_text = entry.rpartition(":")
        if not port_text.isdigit():
            return False
        want_port = int(port_text)
    if want_port is not None and want_port != port:
        return False
    name = name.strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = name.lstrip(".")
        return host == name or host.endswith("." + name)
    try:
        return address in ipaddress.ip_network(name, strict=False)
    except ValueError:
        return False
