"""The request as the client sent it, when a proxy stands in between.

No sockets here: given the environ built from the request, the address of the peer that
sent it and the trust configuration, this module rewrites the environ in place.

- From a *trusted* peer (``--forwarded-allow-ips``), ``Forwarded`` (RFC 7239) or else
  ``X-Forwarded-For``/``-Proto``/``-Host``/``-Port`` set ``REMOTE_ADDR``/``REMOTE_PORT``,
  ``wsgi.url_scheme``, ``HTTP_HOST``/``SERVER_NAME``/``SERVER_PORT``, and
  ``X-Forwarded-Prefix`` is put in front of ``SCRIPT_NAME``.  The client address is the
  right-most hop that is not itself a trusted proxy: everything to its left was written by
  the client and proves nothing.
- From any other peer those headers are removed, so an application reading them directly
  cannot be fooled either (waitress's ``clear_untrusted_proxy_headers``).
- A malformed value (a bad address, a scheme other than http/https, a list where one value
  belongs) is ignored with a debug log; the request goes on as if it were absent.

``--root-path`` (``SCRIPT_NAME`` in the process environment) mounts the application under a
prefix: a path under it is split into ``SCRIPT_NAME`` and ``PATH_INFO``; any other path is
left whole in ``PATH_INFO`` (the proxy already took the prefix off), with ``SCRIPT_NAME``
still the prefix, as waitress's ``url_prefix`` does.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from kakehashi.errors import ConfigError
from kakehashi.http1 import Request
from kakehashi.wsgi import EnvironBuilder, InputStream

__all__ = [
    "ProxiedEnvironBuilder",
    "ProxyHeaders",
    "TrustedPeers",
    "parse_forwarded",
    "split_root_path",
]

logger = logging.getLogger("kakehashi.error")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The environ keys of the headers a proxy uses to speak about the client.
FORWARDED = "HTTP_FORWARDED"
X_FOR = "HTTP_X_FORWARDED_FOR"
X_PROTO = "HTTP_X_FORWARDED_PROTO"
X_HOST = "HTTP_X_FORWARDED_HOST"
X_PORT = "HTTP_X_FORWARDED_PORT"
X_PREFIX = "HTTP_X_FORWARDED_PREFIX"
PROXY_KEYS = (FORWARDED, X_FOR, X_PROTO, X_HOST, X_PORT, X_PREFIX)

# RFC 9110 §5.6.2 token and §5.6.4 quoted-string; RFC 7239 §4 pairs are token=value.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_PAIR_RE = re.compile(rf"[ \t]*({_TOKEN})=({_TOKEN}|{_QUOTED})[ \t]*")
_OWS_RE = re.compile(r"[ \t]*")
_ESCAPE_RE = re.compile(r"\\(.)")
# RFC 7239 §6: a node is an IPv4 address, a bracketed IPv6 address, "unknown" or an
# obfuscated "_name", each optionally followed by ":port" (digits or "_name").
_NODE_RE = re.compile(
    r"(?:(?P<v4>[0-9.]+)|\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<other>unknown|_[A-Za-z0-9._-]+))"
    r"(?::(?:(?P<port>[0-9]{1,5})|_[A-Za-z0-9._-]+))?"
)
# A host as a client writes it in Host (RFC 9110 §7.2): a name or an address, and a port.
# Commas are not allowed, so a list smuggled into one value is refused.
_HOST_RE = re.compile(r"(?P<name>[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")
_PREFIX_RE = re.compile(r"(?:/[A-Za-z0-9._~!$&'()*+;=:@%-]*)+")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
# Peers whose trust was looked up are remembered, up to this many.
_MAX_CACHED_PEERS = 1024
_MAX_LOGGED_CHARS = 120


class Malformed(ValueError):
    """A proxy header that cannot be believed; the caller ignores it."""


# -- trust ----------------------------------------------------------------------------------


class TrustedPeers:
    """Which peers may speak for the client: ``"127.0.0.1,::1"``, CIDRs, ``*``, ``unix``.

    Raises:
        ConfigError: an item is none of those.

    Thread-safety: shared by worker threads; the cache is only added to (atomic under the
    GIL) and a lost race only repeats a lookup.
    """

    __slots__ = ("_cache", "everyone", "networks", "spec", "unix")

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.everyone = False
        self.unix = False
        networks: list[Network] = []
        for raw in spec.split(","):
            item = raw.strip()
            if item == "*":
                self.everyone = self.unix = True
            elif item == "unix":
                self.unix = True
            elif item:
                networks.append(_network(item))
        self.networks = tuple(networks)
        self._cache: dict[str, bool] = {}

    def trusts(self, host: str) -> bool:
        """Whether the peer at ``host`` is trusted (``""`` is a Unix-socket peer)."""
        known = self._cache.get(host)
        if known is not None:
            return known
        if not host:
            trusted = self.unix
        else:
            try:
                trusted = self.trusts_ip(ipaddress.ip_address(host))
            except ValueError:
                trusted = False
        if len(self._cache) < _MAX_CACHED_PEERS:
            self._cache[host] = trusted
        return trusted

    def trusts_ip(self, ip: IPAddress) -> bool:
        if self.everyone:
            return True
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
        return any(ip in network for network in self.networks)


def _network(item: str) -> Network:
    try:
        return ipaddress.ip_network(item)
    except ValueError as exc:
        raise ConfigError(
            f"{item!r} is not an address, a network (10.0.0.0/8), '*' or 'unix': {exc}"
        ) from None


# -- parsing --------------------------------------------------------------------------------


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """The elements of a ``Forwarded`` field (RFC 7239 §4), each a dict of its parameters.

    Parameter names are lower-cased and quoted values unescaped; empty list elements are
    skipped (RFC 9110 §5.6.1.2).  Whitespace is allowed around ``,`` and ``;``.

    Raises:
        Malformed: anything else, including a parameter repeated within an element.
    """
    elements: list[dict[str, str]] = []
    element: dict[str, str] = {}
    pos, end = 0, len(value)
    while True:
        m = _PAIR_RE.match(value, pos)
        if m is not None:
            name = m[1].lower()
            if name in element:
                raise Malformed(f"{name} twice in one element")
            element[name] = _unquote(m[2])
            pos = m.end()
        else:
            pos = _OWS_RE.match(value, pos).end()  # type: ignore[union-attr]  # always matches
        if pos == end:
            break
        sep = value[pos]
        if sep == ",":
            if element:
                elements.append(element)
            element = {}
        elif sep != ";":
            raise Malformed(f"unexpected {sep!r} at {pos}")
        pos += 1
    if element:
        elements.append(element)
    return elements


def _unquote(value: str) -> str:
    if value[:1] != '"':
        return value
    return _ESCAPE_RE.sub(r"\1", value[1:-1])


def parse_node(text: str) -> tuple[IPAddress | None, str | None]:
    """The address and port of an RFC 7239 node; None for ``unknown`` or obfuscated parts.

    Raises:
        Malformed: not a node.
    """
    m = _NODE_RE.fullmatch(text)
    if m is None:
        raise Malformed(f"not a node: {text!r}")
    ip: IPAddress | None = None
    try:
        if m["v4"] is not None:
            ip = ipaddress.IPv4Address(m["v4"])
        elif m["v6"] is not None:
            ip = ipaddress.IPv6Address(m["v6"])
    except ValueError as exc:
        raise Malformed(str(exc)) from None
    return ip, _port(m["port"])


def _port(text: str | None) -> str | None:
    if text is None:
        return None
    if not 0 < int(text) < 65536:
        raise Malformed(f"port {text} out of range")
    return str(int(text))


def parse_host(text: str) -> tuple[str, str | None]:
    """The name (IPv6 without brackets) and port of a ``host[:port]`` value.

    Raises:
        Malformed: not a single host.
    """
    m = _HOST_RE.fullmatch(text)
    if m is None:
        raise Malformed(f"not a host: {text!r}")
    name = m["name"]
    if name[0] == "[":
        try:
            name = str(ipaddress.IPv6Address(name[1:-1]))
        except ValueError as exc:
            raise Malformed(str(exc)) from None
    return name, _port(m["port"])


def parse_scheme(text: str) -> str:
    scheme = text.strip().lower()
    if scheme not in _DEFAULT_PORTS:
        raise Malformed(f"scheme {text!r} is not http or https")
    return scheme


def parse_prefix(text: str) -> str:
    """A path prefix, percent-decoded to latin-1 as PATH_INFO is, without a trailing slash.

    Raises:
        Malformed: not a path.
    """
    text = text.strip()
    if _PREFIX_RE.fullmatch(text) is None:
        raise Malformed(f"not a path prefix: {text!r}")
    return unquote_to_bytes(text).decode("latin-1").rstrip("/")


# -- what the proxy said --------------------------------------------------------------------


@dataclass
class ClientView:
    """What trusted proxies said about the client; None where they said nothing usable."""

    addr: str | None = None
    port: str | None = None
    scheme: str | None = None
    host: str | None = None
    host_port: str | None = None


def _from_forwarded(value: str, trusted: TrustedPeers) -> ClientView:
    """The client seen through a ``Forwarded`` chain.

    The chosen element is the right-most whose ``for`` is not a trusted proxy; its ``proto``
    and ``host`` describe the request as that client made it.

    Raises:
        Malformed: the field, or a part of it that trusted proxies wrote, is malformed.
    """
    elements = parse_forwarded(value)
    view = ClientView()
    if not elements:
        return view
    index = len(elements) - 1
    while True:
        element = elements[index]
        ip, port = parse_node(element["for"]) if "for" in element else (None, None)
        if ip is None or index == 0 or not trusted.trusts_ip(ip):
            break
        index -= 1
    if ip is not None:
        view.addr, view.port = str(ip), port or "0"
    if "proto" in element:
        view.scheme = parse_scheme(element["proto"])
    if "host" in element:
        view.host, view.host_port = parse_host(element["host"])
    return view


def _from_x_forwarded(environ: dict[str, Any], trusted: TrustedPeers) -> ClientView:
    """The client seen through ``X-Forwarded-*``; each malformed header is ignored alone."""
    view = ClientView()
    for key, read in _X_READERS:
        if key in environ:
            try:
                read(view, environ[key], trusted)
            except Malformed as exc:
                _ignored(environ, [key], exc)
    return view


def _read_for(view: ClientView, chain: str, trusted: TrustedPeers) -> None:
    hops = chain.split(",")
    index = len(hops) - 1
    ip = _hop(hops[index])
    while index > 0 and trusted.trusts_ip(ip):
        index -= 1
        ip = _hop(hops[index])
    view.addr, view.port = str(ip), "0"


def _read_proto(view: ClientView, value: str, trusted: TrustedPeers) -> None:
    view.scheme = parse_scheme(value)


def _read_host(view: ClientView, value: str, trusted: TrustedPeers) -> None:
    view.host, port = parse_host(value.strip())
    if view.host_port is None:  # X-Forwarded-Port, read before, wins
        view.host_port = port


def _read_port(view: ClientView, value: str, trusted: TrustedPeers) -> None:
    view.host_port = _port(_digits(value))


_X_READERS: tuple[tuple[str, Callable[[ClientView, str, TrustedPeers], None]], ...] = (
    (X_FOR, _read_for),
    (X_PROTO, _read_proto),
    (X_PORT, _read_port),
    (X_HOST, _read_host),
)


def _hop(text: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError as exc:
        raise Malformed(str(exc)) from None


def _digits(text: str) -> str:
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 5:
        raise Malformed(f"not a port: {text!r}")
    return text


# -- rewriting the environ ------------------------------------------------------------------


class ProxyHeaders:
    """Applies the proxy headers of trusted peers to an environ and removes the others'."""

    __slots__ = ("trusted",)

    def __init__(self, trusted: TrustedPeers) -> None:
        self.trusted = trusted

    def apply(self, environ: dict[str, Any], peer_host: str) -> None:
        """Rewrite ``environ`` of a request that came from ``peer_host`` (``""``: Unix)."""
        if not (
            X_FOR in environ
            or X_PROTO in environ
            or FORWARDED in environ
            or X_HOST in environ
            or X_PORT in environ
            or X_PREFIX in environ
        ):
            return  # the common case, checked without building anything (~0.1 µs)
        present = [key for key in PROXY_KEYS if key in environ]
        if not self.trusted.trusts(peer_host):
            for key in present:
                del environ[key]
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("proxy headers from untrusted %s removed: %s", peer_host or "unix",
                             ", ".join(present))  # fmt: skip
            return
        if FORWARDED not in environ:
            view = _from_x_forwarded(environ, self.trusted)
        else:  # the standard field wins; one malformed part discredits all of it
            try:
                view = _from_forwarded(environ[FORWARDED], self.trusted)
            except Malformed as exc:
                _ignored(environ, [FORWARDED], exc)
                view = ClientView()
        _apply_view(environ, view)
        if X_PREFIX in environ:
            try:
                environ["SCRIPT_NAME"] = parse_prefix(environ[X_PREFIX]) + environ["SCRIPT_NAME"]
            except Malformed as exc:
                _ignored(environ, [X_PREFIX], exc)


def _ignored(environ: dict[str, Any], keys: list[str], exc: Malformed) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        values = "; ".join(f"{key}={environ[key][:_MAX_LOGGED_CHARS]!r}" for key in keys)
        logger.debug("proxy headers ignored (%s): %s", exc, values)


def _apply_view(environ: dict[str, Any], view: ClientView) -> None:
    if view.addr is not None:
        environ["REMOTE_ADDR"] = view.addr
        environ["REMOTE_PORT"] = view.port or "0"
    if view.scheme is not None:
        environ["wsgi.url_scheme"] = view.scheme
    scheme = environ["wsgi.url_scheme"]
    default_port = _DEFAULT_PORTS.get(scheme, "")
    name = view.host
    if name is None and view.host_port is not None and "HTTP_HOST" in environ:
        try:  # only the port was forwarded: keep the client's host name
            name = parse_host(environ["HTTP_HOST"])[0]
        except Malformed:
            name = None
    if name is not None:
        environ["SERVER_NAME"] = name
        port = view.host_port or default_port
        shown = f"[{name}]" if ":" in name else name
        environ["HTTP_HOST"] = shown if port == default_port else f"{shown}:{port}"
    if view.host_port is not None or name is not None:
        environ["SERVER_PORT"] = view.host_port or default_port


# -- the mount point ------------------------------------------------------------------------


def split_root_path(environ: dict[str, Any], root: str) -> None:
    """Mount the application at ``root`` (latin-1 as PATH_INFO, no trailing slash)."""
    path = environ["PATH_INFO"]
    if path == root:
        environ["PATH_INFO"] = ""
    elif path.startswith(root) and path[len(root)] == "/":
        environ["PATH_INFO"] = path[len(root) :]
    environ["SCRIPT_NAME"] = root


def root_path_key(text: str) -> str:
    """``--root-path`` as it is compared with PATH_INFO: percent-decoded UTF-8, as latin-1.

    Raises:
        ConfigError: not an absolute path.
    """
    if not text:
        return ""
    raw = text.encode("utf-8")
    if not text.startswith("/") or any(c in raw for c in b"?# \t\r\n\x00\x7f"):
        raise ConfigError(f"--root-path must be a path like /app, not {text!r}")
    return unquote_to_bytes(raw).decode("latin-1").rstrip("/")


_build = EnvironBuilder.build  # called directly: cheaper than super() on every request


class ProxiedEnvironBuilder(EnvironBuilder):
    """An EnvironBuilder that also applies ``--root-path`` and the proxy headers."""

    __slots__ = ("_proxies", "_root")

    def __init__(self, base: dict[str, Any], trusted: TrustedPeers, root_path: str = "") -> None:
        super().__init__(base)
        self._proxies = ProxyHeaders(trusted)
        self._root = root_path_key(root_path)

    def build(self, request: Request, body: InputStream, peer: tuple[str, int]) -> dict[str, Any]:
        environ = _build(self, request, body, peer)
        if self._root:
            split_root_path(environ, self._root)
        self._proxies.apply(environ, peer[0])
        return environ
