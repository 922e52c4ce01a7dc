"""The request as the client sent it, when a proxy stands in between.

No sockets and no engine here: :func:`see_client` takes the address of the peer that sent
a request, a getter for the request's header fields and the trust configuration, and says
who the client is (a :class:`ClientView`).  Each engine applies that to what it hands the
application: the thread engine to the WSGI environ (threads/environ.py).

- From a *trusted* peer (``--forwarded-allow-ips``), ``Forwarded`` (RFC 7239) or else
  ``X-Forwarded-For``/``-Proto``/``-Host``/``-Port`` give the client's address and port,
  the scheme, the host and port it asked for, and ``X-Forwarded-Prefix`` a prefix to put in
  front of the mount point.  The client address is the
  right-most hop that is not itself a trusted proxy: everything to its left was written by
  the client and proves nothing.
- From any other peer the view says which of those fields to remove, so an application
  reading them directly cannot be fooled either (waitress's ``clear_untrusted_proxy_headers``).
- A malformed value (a bad address, a scheme other than http/https, a list where one value
  belongs) is ignored with a debug log; the request goes on as if it were absent.

``--root-path`` (``SCRIPT_NAME`` in the process environment) mounts the application under a
prefix; :func:`root_path_key` checks it, and each engine splits paths under it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from kakehashi.errors import ConfigError

__all__ = [
    "PROXY_FIELDS",
    "ClientView",
    "TrustedPeers",
    "parse_forwarded",
    "root_path_key",
    "see_client",
]

logger = logging.getLogger("kakehashi.error")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The header fields a proxy uses to speak about the client (lower case, as getters take them).
FORWARDED = "forwarded"
X_FOR = "x-forwarded-for"
X_PROTO = "x-forwarded-proto"
X_HOST = "x-forwarded-host"
X_PORT = "x-forwarded-port"
X_PREFIX = "x-forwarded-prefix"
PROXY_FIELDS = (FORWARDED, X_FOR, X_PROTO, X_HOST, X_PORT, X_PREFIX)

# A request's header fields by lower-case name (the last value of a repeated one), or None.
HeaderGetter = Callable[[str], "str | None"]

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
    """What trusted proxies said about the client; None where they said nothing usable.

    ``host`` is the host name the client asked for (with only a port forwarded, the name
    from the request's ``Host``), ``host_port`` its port; ``prefix`` goes in front of the
    mount point.  ``remove``: the proxy fields an untrusted peer sent, to be dropped.
    """

    addr: str | None = None
    port: str | None = None
    scheme: str | None = None
    host: str | None = None
    host_port: str | None = None
    prefix: str | None = None
    remove: tuple[str, ...] = ()


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


def _from_x_forwarded(get: HeaderGetter, trusted: TrustedPeers) -> ClientView:
    """The client seen through ``X-Forwarded-*``; each malformed header is ignored alone."""
    view = ClientView()
    for name, read in _X_READERS:
        value = get(name)
        if value is not None:
            try:
                read(view, value, trusted)
            except Malformed as exc:
                _ignored(name, value, exc)
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


# -- who the client is -----------------------------------------------------------------------


def see_client(trusted: TrustedPeers, peer_host: str, get: HeaderGetter) -> ClientView | None:
    """Who sent a request that came from ``peer_host`` (``""``: a Unix socket), as its proxy
    fields say: None when it has none (the caller may know that sooner, see the WSGI side).
    """
    present = tuple(name for name in PROXY_FIELDS if get(name) is not None)
    if not present:
        return None
    if not trusted.trusts(peer_host):
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("proxy headers from untrusted %s removed: %s", peer_host or "unix",
                         ", ".join(present))  # fmt: skip
        return ClientView(remove=present)
    forwarded = get(FORWARDED)
    if forwarded is None:
        view = _from_x_forwarded(get, trusted)
    else:  # the standard field wins; one malformed part discredits all of it
        try:
            view = _from_forwarded(forwarded, trusted)
        except Malformed as exc:
            _ignored(FORWARDED, forwarded, exc)
            view = ClientView()
    if view.host is None and view.host_port is not None:
        host = get("host")
        try:  # only the port was forwarded: keep the client's host name
            view.host = parse_host(host)[0] if host is not None else None
        except Malformed:
            view.host = None
    prefix = get(X_PREFIX)
    if prefix is not None:
        try:
            view.prefix = parse_prefix(prefix)
        except Malformed as exc:
            _ignored(X_PREFIX, prefix, exc)
    return view


def _ignored(name: str, value: str, exc: Malformed) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("proxy headers ignored (%s): %s=%r", exc, name, value[:_MAX_LOGGED_CHARS])


# -- the mount point ------------------------------------------------------------------------


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
