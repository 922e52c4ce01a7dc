"""docs/client.md's Python examples run as written (doctest), against kakehashi's server."""

from __future__ import annotations

import doctest
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"


def test_the_client_docs_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    text = DOC.read_text(encoding="utf-8")
    test = doctest.DocTestParser().get_doctest(text, {}, "client.md", str(DOC), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    try:
        result = runner.run(test, clear_globs=False)
    finally:
        server: Any = test.globs.get("server")
        if server is not None:
            server.shutdown(timeout=2)
        test.globs.clear()
    assert result.attempted > 30
    assert result.failed == 0, "see the doctest report above"
