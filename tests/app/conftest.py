"""Shared fixtures: every app-level test runs both bare and under wsgiref's validator."""

from __future__ import annotations

import pytest

from kakehashi.app import App, Client


@pytest.fixture(params=[False, True], ids=["bare", "validated"])
def validate(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture
def client(app: App, validate: bool) -> Client:
    return app.test_client(validate=validate)


@pytest.fixture
def calls() -> list[str]:
    """A log that views and hooks append to, to check what ran in which order."""
    return []
