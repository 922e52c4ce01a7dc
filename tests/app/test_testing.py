"""The test client's response: kakehashi's names and Flask's."""

from __future__ import annotations

from kakehashi.app import App, Client, Request


def test_status_is_the_code_and_status_code_too(app: App, client: Client) -> None:
    @app.get("/made")
    def made(req: Request) -> tuple[str, int]:
        return "made", 201

    response = client.get("/made")
    assert response.status == response.status_code == 201
    assert isinstance(response.status, int)
    assert response.status_line == "201 Created"
    assert response.data == response.body == b"made"
    missing = client.get("/nothing")
    assert (missing.status_code, missing.status_line) == (404, "404 Not Found")


def test_the_response_headers_are_a_mutable_copy(app: App, client: Client) -> None:
    @app.get("/")
    def index(req: Request) -> str:
        return "x"

    response = client.get("/")
    response.headers["X-Checked"] = "yes"
    assert response.headers["x-checked"] == "yes"
    assert "X-Checked" not in client.get("/").headers
