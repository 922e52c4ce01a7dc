"""Unit tests of kakehashi.server.edge.proxies: trust, Forwarded / X-Forwarded-*, the root path.

No sockets: requests are parsed from bytes and their environ built as the server does.
"""

from __future__ import annotations

import argparse
import io
import ipaddress
import logging
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakehashi import http1
from kakehashi.cli.serve import add_arguments, config_from_args
from kakehashi.errors import ConfigError
from kakehashi.server import ServerConfig
from kakehashi.server.edge.proxies import (
    PROXY_FIELDS,
    Malformed,
    TrustedPeers,
    parse_forwarded,
    parse_host,
    parse_node,
    parse_prefix,
    root_path_key,
)
from kakehashi.server.threads.environ import ProxiedEnvironBuilder
from kakehashi.wsgi import base_environ

pytestmark = pytest.mark.timeout(30)

LOCAL = "127.0.0.1"

# The environ keys of the proxy fields.
PROXY_KEYS = tuple("HTTP_" + name.upper().replace("-", "_") for name in PROXY_FIELDS)


def environ(
    headers: str = "",
    peer: str = LOCAL,
    trust: str = "127.0.0.1,::1",
    root: str = "",
    target: str = "/",
) -> dict[str, object]:
    raw = f"GET {target} HTTP/1.1\r\nHost: origin.test\r\n{headers}\r\n".encode("latin-1")
    parsed = http1.maybe_parse_request_head(raw, 0, http1.DEFAULT_LIMITS)
    assert parsed is not None
    builder = ProxiedEnvironBuilder(base_environ("kakehashi", 8000), TrustedPeers(trust), root)
    return builder.build(parsed[0], io.BytesIO(), (peer, 40000))


def fields(**values: str) -> str:
    return "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in values.items())


# -- trust ----------------------------------------------------------------------------------


def test_default_trust_is_loopback_only() -> None:
    trusted = TrustedPeers(ServerConfig().forwarded_allow_ips)
    assert trusted.trusts("127.0.0.1") and trusted.trusts("::1")
    assert not trusted.trusts("127.0.0.2") and not trusted.trusts("10.0.0.1")
    assert not trusted.trusts("")  # a Unix-socket peer needs "unix"


def test_networks_star_unix_and_nobody() -> None:
    nets = TrustedPeers(" 10.0.0.0/8 , 2001:db8::/32,192.0.2.1 ")
    assert nets.trusts("10.200.3.4") and nets.trusts("2001:db8::5") and nets.trusts("192.0.2.1")
    assert not nets.trusts("11.0.0.1") and not nets.trusts("192.0.2.2") and not nets.trusts("")
    everyone = TrustedPeers("*")
    assert everyone.trusts("203.0.113.9") and everyone.trusts("::2") and everyone.trusts("")
    unix = TrustedPeers("unix")
    assert unix.trusts("") and not unix.trusts("127.0.0.1")
    nobody = TrustedPeers("")
    assert not nobody.trusts("127.0.0.1") and not nobody.trusts("")


def test_ipv4_mapped_peer_of_a_dual_stack_socket() -> None:
    assert TrustedPeers("127.0.0.1").trusts("::ffff:127.0.0.1")
    assert not TrustedPeers("127.0.0.1").trusts("::ffff:10.0.0.1")


def test_peer_that_is_not_an_address_is_not_trusted() -> None:
    assert not TrustedPeers("127.0.0.1").trusts("localhost")


def test_trust_cache_is_bounded() -> None:
    trusted = TrustedPeers("10.0.0.0/8")
    for n in range(3000):
        trusted.trusts(str(ipaddress.IPv4Address(0x0A000000 + n)))
    assert len(trusted._cache) <= 1024
    assert trusted.trusts("10.0.11.183") and not trusted.trusts("11.0.0.1")


@pytest.mark.parametrize("spec", ["localhost", "10.0.0.1/8", "300.1.1.1", "10.0.0.0/33", "unix:"])
def test_bad_trust_setting_is_a_config_error(spec: str) -> None:
    with pytest.raises(ConfigError, match="network"):
        TrustedPeers(spec)
    with pytest.raises(ConfigError):
        ServerConfig(forwarded_allow_ips=spec)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.1.0.0/16")
    monkeypatch.setenv("SCRIPT_NAME", "/mounted")
    config = ServerConfig()
    assert (config.forwarded_allow_ips, config.root_path) == ("10.1.0.0/16", "/mounted")
    explicit = ServerConfig(forwarded_allow_ips="*", root_path="")
    assert (explicit.forwarded_allow_ips, explicit.root_path) == ("*", "")


# -- parsing Forwarded ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "elements"),
    [
        # RFC 7239 §4 and §7.1 examples.
        ('for="_gazonk"', [{"for": "_gazonk"}]),
        ('For="[2001:db8:cafe::17]:4711"', [{"for": "[2001:db8:cafe::17]:4711"}]),
        (
            "for=192.0.2.60;proto=http;by=203.0.113.43",
            [{"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}],
        ),
        ("for=192.0.2.43, for=198.51.100.17", [{"for": "192.0.2.43"}, {"for": "198.51.100.17"}]),
        ('for="a\\"b\\\\c"', [{"for": 'a"b\\c'}]),
        ("for=a ; proto=https ,\tfor=b", [{"for": "a", "proto": "https"}, {"for": "b"}]),
        ("for=a,,  ,for=b", [{"for": "a"}, {"for": "b"}]),  # RFC 9110 empty list elements
        ("for=a;;proto=http", [{"for": "a", "proto": "http"}]),
        ("", []),
        (" , ", []),
        ("ext=1", [{"ext": "1"}]),
    ],
)
def test_parse_forwarded(value: str, elements: list[dict[str, str]]) -> None:
    assert parse_forwarded(value) == elements


@pytest.mark.parametrize(
    "value",
    [
        "for=",
        "for",
        "=x",
        "for=a b",
        'for="open',
        'for="a"b',
        "for=1;FOR=2",
        "for=a=b",
        "for=[::1]",  # brackets are not token characters: they need quotes
        "for=a:80",
        "for=a/b",
        'for="a\x01"',
        "for=a;proto=https\r\n",
        "for =a",
        "for= a",
    ],
)
def test_parse_forwarded_refuses(value: str) -> None:
    with pytest.raises(Malformed):
        parse_forwarded(value)


TOKEN = st.text(string.ascii_letters + string.digits + "!#$%&'*+.^_`|~-", min_size=1, max_size=8)
QDTEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=12,
)


def _serialize(value: str) -> str:
    if value and all(c in string.ascii_letters + string.digits + "!#$%&'*+.^_`|~-" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(st.lists(st.dictionaries(TOKEN.map(str.lower), QDTEXT, min_size=1, max_size=4), max_size=5))
@settings(max_examples=300, deadline=None)
def test_parse_forwarded_round_trip(elements: list[dict[str, str]]) -> None:
    text = ", ".join(";".join(f"{k}={_serialize(v)}" for k, v in e.items()) for e in elements)
    assert parse_forwarded(text) == elements


@given(st.text(max_size=60))
@settings(max_examples=500, deadline=None)
def test_parse_forwarded_never_fails_otherwise(value: str) -> None:
    try:
        parsed = parse_forwarded(value)
    except Malformed:
        return
    assert all(element for element in parsed)


@pytest.mark.parametrize(
    ("text", "ip", "port"),
    [
        ("192.0.2.43", "192.0.2.43", None),
        ("192.0.2.43:47011", "192.0.2.43", "47011"),
        ("[2001:db8:cafe::17]", "2001:db8:cafe::17", None),
        ("[2001:db8:cafe::17]:4711", "2001:db8:cafe::17", "4711"),
        ("unknown", None, None),
        ("_hidden", None, None),
        ("_hidden:_port", None, None),
        ("192.0.2.1:_port", "192.0.2.1", None),
    ],
)
def test_parse_node(text: str, ip: str | None, port: str | None) -> None:
    address, got_port = parse_node(text)
    assert (str(address) if address else None, got_port) == (ip, port)


@pytest.mark.parametrize(
    "text",
    ["1.2.3.4.5", "300.1.1.1", "[1.2.3.4]", "::1", "[::1", "1.2.3.4:0", "1.2.3.4:70000", "x", ""],
)
def test_parse_node_refuses(text: str) -> None:
    with pytest.raises(Malformed):
        parse_node(text)


@pytest.mark.parametrize(
    ("text", "name", "port"),
    [
        ("example.com", "example.com", None),
        ("example.com:8443", "example.com", "8443"),
        ("[2001:db8::1]:8080", "2001:db8::1", "8080"),
        ("192.0.2.1", "192.0.2.1", None),
    ],
)
def test_parse_host(text: str, name: str, port: str | None) -> None:
    assert parse_host(text) == (name, port)


@pytest.mark.parametrize(
    "text", ["a.com, b.com", "a.com,b.com", "a b", "a.com:", "a.com:99999", "[zz::1]", "", "@x"]
)
def test_parse_host_refuses(text: str) -> None:
    with pytest.raises(Malformed):
        parse_host(text)


def test_parse_prefix() -> None:
    assert parse_prefix("/app/") == "/app"
    assert parse_prefix(" /a%20b ") == "/a b"
    assert parse_prefix("/") == ""
    for bad in ["app", "/a,/b", "/a b", "/a?x", ""]:
        with pytest.raises(Malformed):
            parse_prefix(bad)


# -- untrusted peers ------------------------------------------------------------------------

ALL_PROXY_FIELDS = fields(
    Forwarded="for=6.6.6.6;proto=https;host=evil.test",
    X_Forwarded_For="6.6.6.6",
    X_Forwarded_Proto="https",
    X_Forwarded_Host="evil.test",
    X_Forwarded_Port="443",
    X_Forwarded_Prefix="/evil",
)


def test_untrusted_peer_headers_are_removed(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, "kakehashi.error"):
        env = environ(ALL_PROXY_FIELDS + "X-Real: kept\r\n", peer="203.0.113.5")
    assert not set(PROXY_KEYS) & set(env)
    assert env["HTTP_X_REAL"] == "kept"
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("203.0.113.5", "40000")
    assert (env["wsgi.url_scheme"], env["HTTP_HOST"], env["SCRIPT_NAME"]) == (
        "http",
        "origin.test",
        "",
    )
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("kakehashi", "8000")
    assert "proxy headers from untrusted 203.0.113.5 removed" in caplog.text


def test_loopback_not_trusted_when_excluded() -> None:
    env = environ(ALL_PROXY_FIELDS, trust="10.0.0.0/8")
    assert not set(PROXY_KEYS) & set(env) and env["REMOTE_ADDR"] == LOCAL


def test_unix_peer_needs_unix() -> None:
    header = fields(X_Forwarded_For="198.51.100.1")
    assert "HTTP_X_FORWARDED_FOR" not in environ(header, peer="")
    env = environ(header, peer="", trust="unix")
    assert env["REMOTE_ADDR"] == "198.51.100.1"


# -- X-Forwarded-* from a trusted peer ------------------------------------------------------


@pytest.mark.parametrize(
    ("chain", "trust", "client"),
    [
        ("198.51.100.7", "127.0.0.1", "198.51.100.7"),
        ("6.6.6.6, 198.51.100.7", "127.0.0.1", "198.51.100.7"),  # the left one is a claim
        ("6.6.6.6,198.51.100.7, 10.0.0.2 ,10.0.0.3", "127.0.0.1,10.0.0.0/8", "198.51.100.7"),
        ("10.0.0.1, 10.0.0.2", "127.0.0.1,10.0.0.0/8", "10.0.0.1"),  # all trusted: left-most
        ("6.6.6.6, 198.51.100.7", "*", "6.6.6.6"),
        ("garbage, 198.51.100.7", "127.0.0.1", "198.51.100.7"),  # the client's part is unread
        ("2001:DB8::0:1", "127.0.0.1", "2001:db8::1"),
    ],
)
def test_x_forwarded_for_right_most_untrusted_hop(chain: str, trust: str, client: str) -> None:
    env = environ(fields(X_Forwarded_For=chain), trust=trust)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == (client, "0")
    assert env["HTTP_X_FORWARDED_FOR"] == chain.strip()  # left for the application to see


def test_repeated_x_forwarded_for_fields_form_one_chain() -> None:
    env = environ("X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 198.51.100.7\r\n")
    assert env["REMOTE_ADDR"] == "198.51.100.7"


@pytest.mark.parametrize(
    "chain", ["1.2.3.4, bogus", "1.2.3.4:80", "[::1]", "1.2.3.4,", "unknown", "10.0.0.1 10.0.0.2"]
)
def test_malformed_x_forwarded_for_is_ignored(chain: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, "kakehashi.error"):
        env = environ(fields(X_Forwarded_For=chain, X_Forwarded_Proto="https"))
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == (LOCAL, "40000")
    assert env["wsgi.url_scheme"] == "https"  # a good header next to a bad one still counts
    assert "proxy headers ignored" in caplog.text


@pytest.mark.parametrize(("value", "scheme"), [("https", "https"), ("HTTPS", "https"),
                                               (" http ", "http")])  # fmt: skip
def test_x_forwarded_proto(value: str, scheme: str) -> None:
    assert environ(fields(X_Forwarded_Proto=value))["wsgi.url_scheme"] == scheme


@pytest.mark.parametrize("value", ["ftp", "https, http", "https,https", "javascript", ""])
def test_bad_x_forwarded_proto_is_ignored(value: str) -> None:
    assert environ(fields(X_Forwarded_Proto=value))["wsgi.url_scheme"] == "http"


def test_two_proto_fields_are_a_list_and_ignored() -> None:
    env = environ("X-Forwarded-Proto: https\r\nX-Forwarded-Proto: http\r\n")
    assert env["wsgi.url_scheme"] == "http"


@pytest.mark.parametrize(
    ("headers", "host", "name", "port"),
    [
        (fields(X_Forwarded_Host="example.com"), "example.com", "example.com", "80"),
        (fields(X_Forwarded_Host="example.com", X_Forwarded_Proto="https"),
         "example.com", "example.com", "443"),
        (fields(X_Forwarded_Host="example.com:8443"), "example.com:8443", "example.com", "8443"),
        (fields(X_Forwarded_Host="[2001:db8::1]:81"), "[2001:db8::1]:81", "2001:db8::1", "81"),
        (fields(X_Forwarded_Port="8443"), "origin.test:8443", "origin.test", "8443"),
        (fields(X_Forwarded_Port="443", X_Forwarded_Proto="https"),
         "origin.test", "origin.test", "443"),
        (fields(X_Forwarded_Host="example.com:1", X_Forwarded_Port="2"),
         "example.com:2", "example.com", "2"),
        (fields(X_Forwarded_Host="a.com, b.com"), "origin.test", "kakehashi", "8000"),
        (fields(X_Forwarded_Host="a.com,b.com"), "origin.test", "kakehashi", "8000"),
        (fields(X_Forwarded_Port="http"), "origin.test", "kakehashi", "8000"),
        (fields(X_Forwarded_Port="0"), "origin.test", "kakehashi", "8000"),
        (fields(X_Forwarded_Port="443,80"), "origin.test", "kakehashi", "8000"),
    ],
)  # fmt: skip
def test_x_forwarded_host_and_port(headers: str, host: str, name: str, port: str) -> None:
    env = environ(headers)
    assert (env["HTTP_HOST"], env["SERVER_NAME"], env["SERVER_PORT"]) == (host, name, port)


@pytest.mark.parametrize(
    ("prefix", "root", "script_name"),
    [
        ("/app", "", "/app"),
        ("/app/", "", "/app"),
        ("/outer", "/inner", "/outer/inner"),
        ("/a%20b", "", "/a b"),
        ("app", "", ""),
        ("/a,/b", "", ""),
    ],
)
def test_x_forwarded_prefix(prefix: str, root: str, script_name: str) -> None:
    env = environ(fields(X_Forwarded_Prefix=prefix), root=root, target=root + "/x")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == (script_name, "/x")


# -- Forwarded from a trusted peer ----------------------------------------------------------


def test_forwarded_sets_everything() -> None:
    env = environ(fields(Forwarded='for="198.51.100.7:5150";proto=https;host=example.com'))
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("198.51.100.7", "5150")
    assert (env["wsgi.url_scheme"], env["HTTP_HOST"]) == ("https", "example.com")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example.com", "443")


def test_forwarded_wins_over_x_forwarded() -> None:
    env = environ(fields(Forwarded="for=198.51.100.7", X_Forwarded_For="6.6.6.6",
                         X_Forwarded_Proto="https"))  # fmt: skip
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("198.51.100.7", "http")


def test_forwarded_chain_uses_the_element_of_the_chosen_hop() -> None:
    value = (
        "for=6.6.6.6;proto=http;host=spoof.test, "
        "for=198.51.100.7;proto=https;host=example.com, "
        'for="[2001:db8::2]";proto=http;host=inner.test'
    )
    env = environ(fields(Forwarded=value), trust="127.0.0.1,2001:db8::/32")
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("198.51.100.7", "0")
    assert (env["wsgi.url_scheme"], env["HTTP_HOST"]) == ("https", "example.com")


def test_forwarded_unknown_hop_keeps_the_peer_address() -> None:
    env = environ(fields(Forwarded="for=unknown;proto=https"))
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == (LOCAL, "40000")
    assert env["wsgi.url_scheme"] == "https"
    env = environ(fields(Forwarded="proto=https"))  # no "for" at all
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == (LOCAL, "https")


@pytest.mark.parametrize(
    "value",
    [
        "for=198.51.100.7;proto=ftp",
        "for=198.51.100.7;host=a.com,b.com",  # the list splits the host into a new element
        'for=198.51.100.7;host="a.com, b.com"',
        "for=300.1.1.1",
        "for=198.51.100.7 proto=https",
        "for=198.51.100.7;for=6.6.6.6",
        'for="[::1]:99999"',
    ],
)
def test_malformed_forwarded_is_ignored_whole(value: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, "kakehashi.error"):
        env = environ(fields(Forwarded=value, X_Forwarded_For="6.6.6.6"))
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"], env["HTTP_HOST"]) == (
        LOCAL,
        "http",
        "origin.test",
    )
    assert "proxy headers ignored" in caplog.text


def test_forwarded_left_of_the_chosen_hop_is_not_read() -> None:
    env = environ(fields(Forwarded="for=bogus!, for=198.51.100.7"))
    assert env["REMOTE_ADDR"] == "198.51.100.7"


HEADER_VALUE = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=40,
).map(str.strip)


@given(st.dictionaries(st.sampled_from(PROXY_KEYS), HEADER_VALUE, min_size=1), st.booleans())
@settings(max_examples=400, deadline=None)
def test_any_proxy_header_values_never_break_the_request(
    values: dict[str, str], trusted: bool
) -> None:
    headers = "".join(f"{key[5:].replace('_', '-')}: {value}\r\n" for key, value in values.items())
    env = environ(headers, trust="*" if trusted else "")
    assert env["wsgi.url_scheme"] in ("http", "https")
    ipaddress.ip_address(env["REMOTE_ADDR"])
    assert 0 <= int(env["REMOTE_PORT"]) < 65536 and 0 < int(env["SERVER_PORT"]) < 65536
    assert env["SCRIPT_NAME"] == "" or env["SCRIPT_NAME"].startswith("/")
    assert "," not in env["HTTP_HOST"]
    if not trusted:
        assert not set(PROXY_KEYS) & set(env)


# -- the root path --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "script_name", "path_info"),
    [
        ("/app/x/y?q=1", "/app", "/x/y"),
        ("/app/", "/app", "/"),
        ("/app", "/app", ""),
        ("/app%2Fx", "/app", "/x"),  # PATH_INFO is decoded before it is split, as waitress
        ("/application", "/app", "/application"),  # not under /app: the path stays whole
        ("/x", "/app", "/x"),  # the proxy took the prefix off already (uvicorn's root_path)
    ],
)
def test_root_path(target: str, script_name: str, path_info: str) -> None:
    env = environ(root="/app/", target=target)
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == (script_name, path_info)


def test_root_path_non_ascii() -> None:
    env = environ(root="/café", target="/caf%C3%A9/menu")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/caf\xc3\xa9", "/menu")
    assert env["SCRIPT_NAME"].encode("latin-1").decode("utf-8") == "/café"


def test_root_path_slash_or_empty_mounts_nothing() -> None:
    assert root_path_key("/") == root_path_key("") == ""
    env = environ(root="/", target="/x")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("", "/x")


@pytest.mark.parametrize("root", ["app", "/a b", "/a?b", "/a#b", "/a\x00"])
def test_bad_root_path_is_a_config_error(root: str) -> None:
    with pytest.raises(ConfigError, match="root-path"):
        ServerConfig(root_path=root)


def test_cli_flags_and_their_help() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--forwarded-allow-ips", "10.0.0.0/8,unix", "--root-path", "/app"])
    config = config_from_args(args)
    assert (config.forwarded_allow_ips, config.root_path) == ("10.0.0.0/8,unix", "/app")
    assert "(or $FORWARDED_ALLOW_IPS)" in " ".join(parser.format_help().split())
    with pytest.raises(ConfigError):
        config_from_args(parser.parse_args(["--forwarded-allow-ips", "10.0.0.1/8"]))


def test_cli_without_flags_takes_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "unix")
    monkeypatch.setenv("SCRIPT_NAME", "/from-env")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = config_from_args(parser.parse_args([]))
    assert (config.forwarded_allow_ips, config.root_path) == ("unix", "/from-env")
    flagged = config_from_args(parser.parse_args(["--root-path", "/flag"]))
    assert flagged.root_path == "/flag"  # a flag beats the environment
