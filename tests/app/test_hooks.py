"""before_request, after_request and teardown_request: order, short-circuits, and teardown
running whatever happened."""

from __future__ import annotations

import logging

import pytest

from kakehashi.app import App, Client, Request, Response, abort


@pytest.fixture
def app(calls: list[str]) -> App:
    app = App()

    @app.get("/")
    def index(req: Request) -> str:
        calls.append("view")
        return "index"

    @app.get("/boom")
    def boom(req: Request) -> str:
        calls.append("view")
        raise RuntimeError("boom")

    @app.get("/teapot")
    def teapot(req: Request) -> str:
        abort(418)

    return app


def test_hooks_run_in_registration_order(app: App, client: Client, calls: list[str]) -> None:
    for name in ("one", "two"):

        def before(req: Request, name: str = name) -> None:
            calls.append(f"before {name}")

        def after(req: Request, response: Response, name: str = name) -> Response:
            calls.append(f"after {name}")
            response.headers.add("X-After", name)
            return response

        def teardown(req: Request, error: BaseException | None, name: str = name) -> None:
            calls.append(f"teardown {name} {error}")

        app.before_request(before)
        app.after_request(after)
        app.teardown_request(teardown)

    response = client.get("/")
    assert response.text == "index"
    assert response.headers.getall("X-After") == ["one", "two"]
    assert calls == [
        "before one",
        "before two",
        "view",
        "after one",
        "after two",
        "teardown one None",
        "teardown two None",
    ]


def test_before_request_can_answer_instead_of_the_view(
    app: App, client: Client, calls: list[str]
) -> None:
    @app.before_request
    def login_required(req: Request) -> tuple[str, int] | None:
        return None if req.headers.get("Authorization") else ("log in first", 401)

    @app.before_request
    def never(req: Request) -> None:
        calls.append("second hook")

    response = client.get("/")
    assert (response.status, response.text) == (401, "log in first")
    assert calls == []
    assert client.get("/", headers={"Authorization": "yes"}).text == "index"
    assert calls == ["second hook", "view"]


def test_hooks_see_routing_errors_and_error_pages(app: App, client: Client) -> None:
    seen: list[tuple[str, int]] = []

    @app.before_request
    def before(req: Request) -> None:
        seen.append(("before", 0))

    @app.after_request
    def after(req: Request, response: Response) -> None:  # None keeps the response
        seen.append(("after", response.status))
        response.headers.set("X-Seen", "yes")

    for target, status in (("/nope", 404), ("/teapot", 418), ("/boom", 500)):
        response = client.get(target)
        assert (response.status, response.headers.get("X-Seen")) == (status, "yes")
    assert seen == [pair for s in (404, 418, 500) for pair in (("before", 0), ("after", s))]


def test_after_request_can_replace_the_response(app: App, client: Client) -> None:
    @app.after_request
    def replace(req: Request, response: Response) -> tuple[str, int]:
        return "replaced", 202

    response = client.get("/")
    assert (response.status, response.text) == (202, "replaced")


@pytest.mark.parametrize("failing", ["view", "before", "after"])
def test_teardown_runs_after_an_exception(
    app: App, client: Client, failing: str, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[BaseException | None] = []

    def fail(*args: object) -> None:
        raise ValueError(f"{failing} failed")

    if failing == "before":
        app.before_request(fail)
    if failing == "after":
        app.after_request(fail)

    @app.teardown_request
    def teardown(req: Request, error: BaseException | None) -> None:
        errors.append(error)

    with caplog.at_level(logging.ERROR, logger="kakehashi.app"):
        response = client.get("/boom" if failing == "view" else "/")
    assert response.status == 500
    (error,) = errors
    assert isinstance(error, RuntimeError if failing == "view" else ValueError)


def test_a_failing_teardown_is_logged_and_the_others_still_run(
    app: App, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    @app.teardown_request
    def broken(req: Request, error: BaseException | None) -> None:
        raise OSError("cannot close")

    @app.teardown_request
    def fine(req: Request, error: BaseException | None) -> None:
        ran.append("fine")

    with caplog.at_level(logging.ERROR, logger="kakehashi.app"):
        response = client.get("/")
    assert (response.status, response.text) == (200, "index")
    assert ran == ["fine"]
    assert any("teardown hook" in r.getMessage() for r in caplog.records)


def test_handled_http_errors_give_teardown_no_error(app: App, client: Client) -> None:
    errors: list[BaseException | None] = []
    app.teardown_request(lambda req, error: errors.append(error))
    assert client.get("/teapot").status == 418
    assert client.get("/nope").status == 404
    assert errors == [None, None]
