"""docs/settings.md is generated from ServerConfig and must be in sync with it."""

from __future__ import annotations

from pathlib import Path

from kakehashi.server.config.page import settings_markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "settings.md"


def test_settings_doc_is_in_sync() -> None:
    assert DOC.read_text(encoding="utf-8") == settings_markdown(), (
        "regenerate: python -m kakehashi.server.config.page > docs/settings.md"
    )


def test_every_setting_is_documented_with_its_flag() -> None:
    text = settings_markdown()
    for flag in ("--bind", "--threads", "--header-timeout", "--max-body-size", "--access-log"):
        assert f"`{flag}" in text
