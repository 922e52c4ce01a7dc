"""The Python blocks of the README and of docs/framework.md run as written.

Each document's blocks run in order in one namespace, as a reader would paste them.  The
README's ``serve(app, ...)`` would serve forever, so ``kakehashi.server.serve`` is replaced by
one that checks the same settings with ``ServerConfig``, serves the app for real on
127.0.0.1:0, fetches ``/`` once and stops.  The namespace starts with ``app`` (the demo) for
blocks that serve "your" app, and ``__name__`` is not ``"__main__"``, so ``app.run()`` under
the usual guard does not block.
"""

from __future__ import annotations

import http.client
import re
from pathlib import Path
from typing import Any

import pytest

import kakehashi.server
from kakehashi.demo import app as demo_app
from tests.conftest import StartServer, addr

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "framework.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def test_blocks_are_found() -> None:
    assert len(python_blocks(ROOT / "docs" / "framework.md")) >= 7
    assert any("serve(app" in block for block in python_blocks(ROOT / "README.md"))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_python_blocks_run(
    doc: Path, start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[tuple[int, bytes]] = []

    def serve_once(app: Any, **settings: Any) -> None:
        settings["bind"] = ("127.0.0.1:0",)
        host, port = addr(start_server(app, **settings)).rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            served.append((response.status, response.read()))
        finally:
            connection.close()

    monkeypatch.setattr(kakehashi.server, "serve", serve_once)
    namespace: dict[str, Any] = {"__name__": "docs_example", "app": demo_app}
    for number, code in enumerate(python_blocks(doc), 1):
        exec(compile(code, f"{doc.name}, python block {number}", "exec"), namespace)
    if doc.name == "README.md":
        assert served == [(200, b"Hello, World")]
