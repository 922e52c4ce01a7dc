"""The output buffer and pace settings are bounded and consistent."""

from __future__ import annotations

import pytest

from kakehashi.errors import ConfigError
from kakehashi.server import ServerConfig


def test_defaults() -> None:
    config = ServerConfig()
    assert (config.output_buffer_memory, config.output_buffer_limit) == (1 << 20, 64 << 20)
    assert (config.send_timeout, config.send_min_rate, config.send_rate_window) == (30, 1024, 60)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"output_buffer_memory": 2 << 30}, "--output-buffer-memory must be at most"),
        ({"output_buffer_limit": 2 << 40}, "--output-buffer-limit must be at most"),
        ({"send_min_rate": 2 << 30}, "--send-min-rate must be at most"),
        ({"send_rate_window": 3601}, "--send-rate-window must be at most"),
        ({"send_min_rate": 0}, "--send-min-rate must be positive"),
        (
            {"output_buffer_memory": 2 << 20, "output_buffer_limit": 1 << 20},
            "--output-buffer-memory must not exceed --output-buffer-limit",
        ),
    ],
)
def test_bad_values_are_refused(settings: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServerConfig(**settings)
