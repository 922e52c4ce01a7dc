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
    "asgi": {"errors", "http1", "websocket"},
    "app": {"errors", "http1", "wsgi"},
    "demo": {"errors", "http1", "wsgi", "app"},
    "server": {"errors", "http1", "websocket", "wsgi", "asgi"},
    "client": {"errors", "http1", "websocket"},
    "cli": {
        "errors",
        "http1",
        "websocket",
        "wsgi",
        "asgi",
        "server",
        "client",
        "app",
        "demo",
        "cli",
    },
    "__main__": {"cli"},
    "__init__": {"errors", "http1", "wsgi", "server", "client", "app"},
}
# Imports allowed only inside a function, so that importing the layer never loads the target:
# App.run() starts kakehashi's server for development (docs/design.md, "The framework and the
# server").  A module-level import of these is still a violation.
DEFERRED: dict[str, set[str]] = {"app": {"server"}}
# The sans-I/O cores know nothing of sockets, event loops, threads, clocks or logging.
_IO = {"socket", "selectors", "threading", "time", "logging", "select", "asyncio"}
FORBIDDEN_STDLIB = {"http1": _IO, "websocket": _IO, "asgi": _IO}


def layer_of(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


# The rooms of kakehashi.server (docs/design.md, "The house") and the rooms each may import.
# Rooms import downward; the engines (threads, later aio) and the process manager never import
# one another; the shared rooms import no engine and not kakehashi.wsgi.  The package's face
# (server/__init__.py) and its wiring may import any room.
ROOMS: dict[str, set[str]] = {
    "net": set(),
    "observe": {"net"},
    "edge": {"net"},
    "config": {"net", "observe", "edge"},
    "engine": {"net", "observe", "edge", "config"},
    "threads": {"net", "observe", "edge", "config", "engine"},
    "aio": {"net", "observe", "edge", "config", "engine"},
    "process": {"net", "observe", "edge", "config", "engine"},
    "__init__": {"net", "observe", "edge", "config", "engine", "threads", "aio", "process"},
}
ENGINES = {"threads", "aio"}
SHARED = {"net", "observe", "edge", "config", "engine"}
# What a room may import from the rest of kakehashi (errors and http1 always).
ROOM_LAYERS: dict[str, set[str]] = {room: {"errors", "http1"} for room in ROOMS}
ROOM_LAYERS["threads"] |= {"wsgi"}
ROOM_LAYERS["aio"] |= {"asgi", "websocket"}
ROOM_LAYERS["__init__"] |= {"wsgi", "asgi"}


def room_of(path: Path) -> str:
    parts = path.relative_to(SRC / "server").parts
    return parts[0].removesuffix(".py") if len(parts) > 1 else "__init__"


def room_violations(path: Path, names: list[str]) -> list[str]:
    """What the module at ``path`` (under server/) imports against the room rules."""
    room = room_of(path)
    bad: list[str] = []
    for name in names:
        parts = name.split(".")
        if parts[0] != "kakehashi" or len(parts) < 2:
            continue
        if parts[1] != "server":
            if parts[1] not in ROOM_LAYERS.get(room, set()):
                bad.append(f"server/{room} imports {name}")
            continue
        target = parts[2] if len(parts) > 2 else "__init__"
        if (SRC / "server" / f"{target}.py").exists():  # the face's own wiring (serving.py)
            target = "__init__"
        if target != room and target not in ROOMS.get(room, set()):
            bad.append(f"server/{room} imports {name}")
    return bad


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


SERVER_MODULES = sorted((SRC / "server").rglob("*.py"))


@pytest.mark.parametrize("path", SERVER_MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_server_rooms_import_downward(path: Path) -> None:
    assert room_of(path) in ROOMS, f"{path}: not in a room; add it to ROOMS"
    assert room_violations(path, imports_of(path)) == []


def test_every_room_has_its_rules() -> None:
    folders = {p.name for p in (SRC / "server").iterdir() if p.is_dir() and p.name[0] != "_"}
    assert folders <= set(ROOMS), f"rooms without rules: {folders - set(ROOMS)}"


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("threads/x.py", "kakehashi.server.process.worker"),  # an engine imports the manager
        ("process/x.py", "kakehashi.server.threads.server"),  # the manager imports an engine
        ("observe/x.py", "kakehashi.server.threads.context"),  # a shared room, an engine
        ("edge/x.py", "kakehashi.wsgi"),  # a shared room, the WSGI glue
        ("net/x.py", "kakehashi.server.config.settings"),  # upward
        ("config/x.py", "kakehashi.server.engine.context"),  # upward
        ("engine/x.py", "kakehashi.server.threads.server"),  # the shared contract, an engine
        ("aio/x.py", "kakehashi.server.threads.server"),  # an engine, the other engine
        ("threads/x.py", "kakehashi.server.aio.server"),
        ("aio/x.py", "kakehashi.wsgi"),  # the ASGI engine, the WSGI glue
        ("threads/x.py", "kakehashi.asgi"),
    ],
)
def test_room_rule_catches_each_violation(module: str, imported: str) -> None:
    assert room_violations(SRC / "server" / module, [imported]) != []


def test_room_rule_allows_downward() -> None:
    assert room_violations(SRC / "server/threads/x.py", ["kakehashi.server.observe.metrics"]) == []
    assert room_violations(SRC / "server/process/x.py", ["kakehashi.server.engine.contract"]) == []


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
