"""The import-direction rule of docs/design.md, checked by parsing every module with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "kakehashi"

# What each layer may import from kakehashi (itself always allowed).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "http1": {"errors"},
    "wsgi": {"errors", "http1"},
    "app": {"errors", "http1", "wsgi"},
    "demo": {"errors", "http1", "wsgi", "app"},
    "server": {"errors", "http1", "wsgi"},
    "client": {"errors", "http1"},
    "cli": {"errors", "http1", "wsgi", "server", "client", "app", "demo", "cli"},
    "__main__": {"cli"},
    "__init__": {"errors", "http1", "wsgi", "server", "client", "app"},
}
# The sans-I/O core knows nothing of sockets, threads, clocks or logging.
FORBIDDEN_STDLIB = {"http1": {"socket", "selectors", "threading", "time", "logging", "select"}}


def layer_of(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


MODULES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_downward(path: Path) -> None:
    layer = layer_of(path)
    assert layer in ALLOWED, f"{path.name}: unknown layer {layer!r}; add it to ALLOWED"
    for name in imports_of(path):
        parts = name.split(".")
        if parts[0] == "kakehashi" and len(parts) > 1:
            target = parts[1]
            assert target == layer or target in ALLOWED[layer], f"{layer} imports {name}"
        else:
            assert parts[0] not in FORBIDDEN_STDLIB.get(layer, set()), f"{layer} imports {name}"


def test_rule_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import socket\nfrom kakehashi.server import x\n")
    assert imports_of(bad) == ["socket", "kakehashi.server"]
