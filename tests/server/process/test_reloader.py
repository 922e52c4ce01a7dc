"""What an application that fails to import shows (its traceback, from its own first frame)
and which files ``--reload`` then watches, with real modules written to a temporary path."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.cli.serve import load_app
from kakehashi.errors import AppImportError
from kakehashi.server.process.reloader import FileWatcher, files_of, format_import_error

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def _failure(reference: str) -> AppImportError:
    with pytest.raises(AppImportError) as info:
        load_app(reference)
    return info.value


def test_a_module_that_raises_shows_where(modules: Path) -> None:
    (modules / "needs_env.py").write_text("import os\n\nURL = os.environ['NOT_SET_HERE_EVER']\n")
    exc = _failure("needs_env:app")
    assert str(exc) == "importing 'needs_env' failed: KeyError('NOT_SET_HERE_EVER')"
    assert exc.__cause__ is not None
    text = format_import_error(exc.__cause__)
    assert text.startswith("Traceback (most recent call last):\n")
    assert f'File "{modules / "needs_env.py"}", line 3, in <module>' in text
    assert "URL = os.environ['NOT_SET_HERE_EVER']" in text
    assert "importlib" not in text and "serve.py" not in text
    assert text.rstrip().endswith("KeyError: 'NOT_SET_HERE_EVER'")
    assert str(modules / "needs_env.py") in files_of(exc)


def test_a_syntax_error_names_its_file(modules: Path) -> None:
    (modules / "imports_broken.py").write_text("import broken_syntax\napp = None\n")
    (modules / "broken_syntax.py").write_text("def app(:\n")
    exc = _failure("imports_broken:app")
    assert exc.__cause__ is not None
    assert "SyntaxError" in format_import_error(exc.__cause__)
    watched = files_of(exc)
    assert str(modules / "broken_syntax.py") in watched  # the file to fix
    assert str(modules / "imports_broken.py") in watched  # and the one importing it


def test_a_missing_dependency_is_the_modules_failure_a_missing_module_is_not(
    modules: Path,
) -> None:
    (modules / "uses_missing.py").write_text("import no_such_dependency_here\n")
    exc = _failure("uses_missing:app")
    assert "No module named 'no_such_dependency_here'" in str(exc)
    assert exc.__cause__ is not None  # its traceback says which line imports it
    assert "import no_such_dependency_here" in format_import_error(exc.__cause__)
    missing = _failure("no_such_app_module:app")
    assert str(missing).startswith("cannot import 'no_such_app_module'")
    assert missing.__cause__ is None  # nothing ran: one line says it all


def test_the_watcher_sees_a_changed_file(tmp_path: Path) -> None:
    watched = tmp_path / "settings.py"
    watched.write_text("x = 1\n")
    watcher = FileWatcher([str(watched)])
    assert watcher.changed() is None
    stamp = watched.stat().st_mtime + 5
    os.utime(watched, (stamp, stamp))
    assert watcher.changed() == str(watched)
    assert watcher.changed() is None  # reported once
