"""ServerConfig and parse_bind: values are checked before anything is bound."""

from __future__ import annotations

import pytest

from kakehashi.errors import ConfigError
from kakehashi.server import Address, ServerConfig, parse_bind
from kakehashi.server.net.bind import bind_sockets

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:8000", Address("127.0.0.1", 8000)),
        ("localhost:0", Address("localhost", 0)),
        (":9000", Address("0.0.0.0", 9000)),
        ("[::1]:8080", Address("::1", 8080)),
        ("[::]:1", Address("::", 1)),
        ("unix:/tmp/k.sock", Address(unix_path="/tmp/k.sock")),
    ],
)
def test_parse_bind(text: str, address: Address) -> None:
    assert parse_bind(text) == address
    assert str(address) == (text if not text.startswith(":") else "0.0.0.0" + text)


@pytest.mark.parametrize(
    "text", ["127.0.0.1", "host:99999", "::1:80", "[::1]", "unix:", "a:b", "", "h:-1"]
)
def test_bad_bind_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_bind(text)


@pytest.mark.parametrize(
    "changes",
    [
        {"threads": 0},
        {"workers": -1},
        {"keep_alive": 0},
        {"header_timeout": -1.0},
        {"max_body_size": 0},
        {"bind": ()},
        {"bind": ("nope",)},
        {"url_scheme": "ftp"},
    ],
)
def test_bad_settings_raise_config_error(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ServerConfig(**changes)  # type: ignore[arg-type]


def test_limits_follow_the_settings() -> None:
    config = ServerConfig(
        limit_request_line=100,
        limit_request_fields=7,
        limit_request_field_size=50,
        max_body_size=1234,
    )
    limits = config.limits
    assert limits.max_request_line_bytes == 100
    assert limits.max_fields == 7
    assert limits.max_field_bytes == 50
    assert limits.max_body_bytes == 1234
    assert config.replace(threads=9).threads == 9
    with pytest.raises(ConfigError):
        config.replace(threads=0)


def test_every_field_has_a_flag_and_help() -> None:
    import dataclasses

    for f in dataclasses.fields(ServerConfig):
        assert f.metadata["flag"].startswith("--")
        assert f.metadata["help"]


def test_bind_in_use_is_a_config_error() -> None:
    first = bind_sockets(ServerConfig(bind=("127.0.0.1:0",)).addresses)
    try:
        port = first[0].getsockname()[1]
        # a second listener on the same port fails (SO_REUSEADDR does not allow two listeners)
        with pytest.raises(ConfigError, match="cannot listen on"):
            bind_sockets(ServerConfig(bind=("127.0.0.1:0", f"127.0.0.1:{port}")).addresses)
    finally:
        for sock in first:
            sock.close()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"workers": 100000}, "--workers must be at most 256, not 100,000"),
        ({"threads": 5000}, "--threads must be at most 1,024, not 5,000"),
        ({"backlog": 1 << 20}, "--backlog must be at most 65,535"),
        ({"connection_limit": 10**7}, "--connection-limit must be at most"),
        ({"max_body_size": 1 << 50}, "--max-body-size must be at most"),
        ({"keep_alive": float("inf")}, "--keep-alive must be at most"),
        ({"graceful_timeout": float("nan")}, "--graceful-timeout must be positive"),
        ({"max_requests": -1}, "--max-requests must be 0 or more"),
        ({"timeout": 1e9}, "--timeout must be at most 86,400"),
        ({"poller": "kqueue"}, "--poller must be auto, epoll or portable"),
    ],
)
def test_every_count_has_an_upper_bound(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        ServerConfig(**changes)  # type: ignore[arg-type]


def test_every_number_declares_its_bound() -> None:
    import dataclasses

    for f in dataclasses.fields(ServerConfig):
        if f.type in ("int", "float", int, float):
            assert isinstance(f.metadata.get("most"), int | float), f.name
            assert f"(at most {f.metadata['most']:,})" in f.metadata["help"], f.name


def test_zero_means_off_where_allowed() -> None:
    config = ServerConfig(max_requests=0, timeout=0, shutdown_delay=0)
    assert (config.max_requests, config.timeout, config.shutdown_delay) == (0, 0, 0)
