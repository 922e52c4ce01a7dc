"""Unit tests of the ASGI side of trusted proxies (kakehashi.server.aio.proxies): what
edge/proxies.py says about the client, applied to the scope.  The parsing and trust rules
themselves are tested once, in tests/server/edge/test_proxies.py.

No sockets and no loop: requests are parsed from bytes and their scope built as the engine
builds it.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from kakehashi import http1
from kakehashi.errors import RemoteProtocolError
from kakehashi.server.aio.proxies import ProxiedScopeBuilder
from kakehashi.server.aio.server import EXTENSIONS
from kakehashi.server.edge.proxies import PROXY_FIELDS, TrustedPeers

pytestmark = pytest.mark.timeout(30)

LOCAL = "127.0.0.1"
PROXY_NAMES = {name.encode() for name in PROXY_FIELDS}


def scope(
    headers: str = "",
    peer: str | None = LOCAL,
    trust: str = "127.0.0.1,::1",
    root: str = "",
    target: str = "/x",
    scheme: str = "http",
) -> dict[str, Any]:
    raw = f"GET {target} HTTP/1.1\r\nHost: origin.test\r\n{headers}\r\n".encode("latin-1")
    parsed = http1.maybe_parse_request_head(raw, 0, http1.DEFAULT_LIMITS)
    assert parsed is not None
    builder = ProxiedScopeBuilder(("10.1.1.1", 8000), root, EXTENSIONS, TrustedPeers(trust))
    client = (peer, 40000) if peer is not None else None
    return builder.build(parsed[0], client, scheme, {})


def fields(**values: str) -> str:
    return "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in values.items())


def header(found: dict[str, Any], name: bytes) -> list[bytes]:
    return [value for key, value in found["headers"] if key == name]


ALL_PROXY_FIELDS = fields(
    Forwarded="for=6.6.6.6;proto=https;host=evil.test",
    X_Forwarded_For="6.6.6.6",
    X_Forwarded_Proto="https",
    X_Forwarded_Host="evil.test",
    X_Forwarded_Port="443",
    X_Forwarded_Prefix="/evil",
)


def test_a_request_without_proxy_fields_is_left_alone() -> None:
    found = scope("X-Real: kept\r\n")
    assert found["client"] == (LOCAL, 40000) and found["scheme"] == "http"
    assert found["server"] == ("10.1.1.1", 8000) and found["root_path"] == ""
    assert found["headers"] == [(b"host", b"origin.test"), (b"x-real", b"kept")]


def test_untrusted_peer_proxy_fields_are_removed(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, "kakehashi.error"):
        found = scope(ALL_PROXY_FIELDS + "X-Real: kept\r\n", peer="203.0.113.5")
    assert not PROXY_NAMES & {name for name, _ in found["headers"]}
    assert header(found, b"x-real") == [b"kept"] and header(found, b"host") == [b"origin.test"]
    assert (found["client"], found["scheme"]) == (("203.0.113.5", 40000), "http")
    assert (found["server"], found["root_path"], found["path"]) == (("10.1.1.1", 8000), "", "/x")
    assert "proxy headers from untrusted 203.0.113.5 removed" in caplog.text


def test_unix_peer_needs_unix() -> None:
    xff = fields(X_Forwarded_For="198.51.100.1")
    untrusted = scope(xff, peer=None)
    assert untrusted["client"] is None and not header(untrusted, b"x-forwarded-for")
    assert scope(xff, peer=None, trust="unix")["client"] == ("198.51.100.1", 0)


def test_x_forwarded_for_takes_the_right_most_untrusted_hop() -> None:
    found = scope(fields(X_Forwarded_For="6.6.6.6, 198.51.100.7"))
    assert found["client"] == ("198.51.100.7", 0)
    assert header(found, b"x-forwarded-for") == [b"6.6.6.6, 198.51.100.7"]  # left to see


def test_repeated_x_forwarded_for_fields_form_one_chain() -> None:
    found = scope("X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 198.51.100.7\r\n")
    assert found["client"] == ("198.51.100.7", 0)


@pytest.mark.parametrize(
    ("value", "scheme"),
    [("https", "https"), ("HTTP", "http"), ("ftp", "http"), ("https, http", "http")],
)
def test_x_forwarded_proto(value: str, scheme: str) -> None:
    assert scope(fields(X_Forwarded_Proto=value))["scheme"] == scheme


@pytest.mark.parametrize(
    ("headers", "host", "server"),
    [
        (fields(X_Forwarded_Host="example.com"), b"example.com", ("example.com", 80)),
        (fields(X_Forwarded_Host="example.com", X_Forwarded_Proto="https"),
         b"example.com", ("example.com", 443)),
        (fields(X_Forwarded_Host="example.com:8443"), b"example.com:8443", ("example.com", 8443)),
        (fields(X_Forwarded_Host="[2001:db8::1]:81"), b"[2001:db8::1]:81", ("2001:db8::1", 81)),
        (fields(X_Forwarded_Port="8443"), b"origin.test:8443", ("origin.test", 8443)),
        (fields(X_Forwarded_Host="a.com, b.com"), b"origin.test", ("10.1.1.1", 8000)),
        (fields(X_Forwarded_Port="0"), b"origin.test", ("10.1.1.1", 8000)),
    ],
)  # fmt: skip
def test_x_forwarded_host_and_port(headers: str, host: bytes, server: tuple[str, int]) -> None:
    found = scope(headers)
    assert header(found, b"host") == [host]
    assert found["server"] == server


@pytest.mark.parametrize(
    ("prefix", "root", "target", "root_path", "path"),
    [
        ("/app", "", "/x", "/app", "/app/x"),  # the proxy took its prefix off
        ("/app/", "", "/x", "/app", "/app/x"),
        ("/outer", "/inner", "/inner/x", "/outer/inner", "/outer/inner/x"),
        ("/outer", "/inner", "/x", "/outer/inner", "/outer/inner/x"),
        ("/app", "", "/app/x", "/app", "/app/x"),  # the proxy kept it: not put in twice
        ("/caf%C3%A9", "", "/x", "/café", "/café/x"),
        ("/%FF", "", "/x", "", "/x"),  # not UTF-8: ignored, as such a path would be a 400
        ("app", "", "/x", "", "/x"),  # not a path: ignored
    ],
)
def test_x_forwarded_prefix_goes_before_the_root_path(
    prefix: str, root: str, target: str, root_path: str, path: str
) -> None:
    found = scope(fields(X_Forwarded_Prefix=prefix), root=root, target=target)
    assert (found["root_path"], found["path"]) == (root_path, path)
    assert found["raw_path"] == target.encode()  # as received


def test_forwarded_sets_client_scheme_and_host() -> None:
    found = scope(fields(Forwarded='for="198.51.100.7:5150";proto=https;host=example.com'))
    assert (found["client"], found["scheme"]) == (("198.51.100.7", 5150), "https")
    assert found["server"] == ("example.com", 443)
    assert header(found, b"host") == [b"example.com"]


def test_a_forwarded_host_is_added_when_the_request_had_none() -> None:
    raw = b"GET /x HTTP/1.0\r\nX-Forwarded-Host: example.com\r\n\r\n"
    parsed = http1.maybe_parse_request_head(raw, 0, http1.DEFAULT_LIMITS)
    assert parsed is not None
    builder = ProxiedScopeBuilder(("10.1.1.1", 8000), "", EXTENSIONS, TrustedPeers(LOCAL))
    found = builder.build(parsed[0], (LOCAL, 1), "http", {})
    assert header(found, b"host") == [b"example.com"]


def test_the_scope_is_still_checked_first() -> None:
    with pytest.raises(RemoteProtocolError):
        scope(ALL_PROXY_FIELDS, target="/%FF")
