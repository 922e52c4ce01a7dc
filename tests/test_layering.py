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
    "websocket": {"errors", "http1"},
    "wsgi": {"errors", "http1"},
    "app": {"errors", "http1", "wsgi"},
    "demo": {"errors", "http1", "wsgi", "app"},
    "server": {"errors", "http1", "wsgi"},
    "client": {"errors", "http1"},
    "cli": {"errors", "http1", "wsgi", "server", "client", "app", "demo", "cli"},
    "__main__": {"cli"},
    "__init__": {"errors", "http1", "wsgi", "server", "client", "app"},
}
# Imports allowed only inside a function, so that importing the layer never loads the target:
# App.run() starts kakehashi's server for development (docs/design.md, "The framework and the
# server").  A module-level import of these is still a violation.
DEFERRED: dict[str, set[str]] = {"app": {"server"}}
# The sans-I/O cores know nothing of sockets, event loops, threads, clocks or logging.
_IO = {"socket", "selectors", "threading", "time", "logging", "select", "asyncio"}
FORBIDDEN_STDLIB = {"http1": _IO, "websocket": _IO}


def layer_of(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def _imported(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def imports_of(path: Path) -> list[str]:
    return _imported(ast.parse(path.read_text(encoding="utf-8")))


def module_level_imports_of(path: Path) -> list[str]:
    """Imports that run when the module is imported: all but those inside functions."""

    def outside_functions(node: ast.AST) -> list[str]:
        names: list[str] = []
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                names.extend(_imported(child))
            elif not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                names.extend(outside_functions(child))
        return names

    return outside_functions(ast.parse(path.read_text(encoding="utf-8")))


MODULES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_downward(path: Path) -> None:
    layer = layer_of(path)
    assert layer in ALLOWED, f"{path.name}: unknown layer {layer!r}; add it to ALLOWED"
    module_level = module_level_imports_of(path)
    for name in imports_of(path):
        parts = name.split(".")
        if parts[0] == "kakehashi" and len(parts) > 1:
            target = parts[1]
            if target in DEFERRED.get(layer, set()) and name not in module_level:
                continue
            assert target == layer or target in ALLOWED[layer], f"{layer} imports {name}"
        else:
            assert parts[0] not in FORBIDDEN_STDLIB.get(layer, set()), f"{layer} imports {name}"


def test_rule_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import socket\nfrom kakehashi.server import x\n")
    assert imports_of(bad) == ["socket", "kakehashi.server"]


def test_deferred_imports_are_told_apart(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.py"
    mixed.write_text(
        "from kakehashi.server import a\n"
        "def run():\n    from kakehashi.server import Server\n"
        "class A:\n    def m(self):\n        def inner():\n            import kakehashi.client\n"
    )
    assert module_level_imports_of(mixed) == ["kakehashi.server"]
