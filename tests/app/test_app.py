from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from kakehashi.app import (
    App,
    Client,
    Converter,
    NotFound,
    Request,
    Response,
    RouteConflictError,
    abort,
    redirect,
)

GREETING = "/greeting/%E5%A4%AA%E9%83%8E"


@pytest.fixture
def app() -> App:
    app = App()

    @app.get("/")
    def index(req: Request) -> str:
        return "index"

    @app.get("/greeting/<name>")
    def greeting(req: Request, name: str) -> str:
        return f"Hello, {name}!"

    @app.route("/items/<int:item_id>", methods=["GET", "PUT"])
    def item(req: Request, item_id: int) -> dict[str, Any]:
        return {"id": item_id, "method": req.method}

    @app.post("/items")
    def create(req: Request) -> tuple[dict[str, Any], int]:
        return req.json, 201

    @app.get("/dir/")
    def directory(req: Request) -> str:
        return "dir"

    @app.get("/file")
    def file(req: Request) -> str:
        return "file"

    return app


# --- routing through the app -------------------------------------------------------------


def test_views_receive_the_request_and_params(client: Client) -> None:
    response = client.get("/items/42")
    assert response.status == 200
    assert response.json() == {"id": 42, "method": "GET"}
    assert response.headers["Content-Type"] == "application/json"
    assert client.put("/items/7").json() == {"id": 7, "method": "PUT"}


@pytest.mark.parametrize("target", [GREETING, "/greeting/太郎"])
def test_unicode_names(client: Client, target: str) -> None:
    response = client.get(target)
    assert response.status == 200
    assert response.body == "Hello, 太郎!".encode()
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("target", ["/greeting/Taro/anything", "/nope", "/items/x", "/items/-1"])
def test_automatic_404(client: Client, target: str) -> None:
    response = client.get(target)
    assert (response.status, response.text) == (404, "404 Not Found\n")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_405_has_an_exact_allow(client: Client) -> None:
    response = client.delete("/items/1")
    assert response.status == 405
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS, PUT"
    assert client.get("/items").headers["Allow"] == "OPTIONS, POST"


def test_head_is_the_get_view_without_body(app: App, client: Client) -> None:
    seen: list[str] = []

    @app.get("/big")
    def big(req: Request) -> str:
        seen.append(req.method)
        return "x" * 1234

    get, head = client.get("/big"), client.head("/big")
    assert head.status == 200
    assert head.body == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"] == "1234"
    assert seen == ["GET", "HEAD"]


def test_head_of_a_stream_closes_it(app: App, client: Client) -> None:
    closed: list[bool] = []

    @app.get("/stream")
    def stream(req: Request) -> Iterator[bytes]:
        try:
            yield b"chunk"
        finally:
            closed.append(True)

    assert client.get("/stream").body == b"chunk"
    assert client.head("/stream").body == b""
    assert closed == [True]


def test_options(app: App, client: Client) -> None:
    response = client.options("/items/3")
    assert (response.status, response.body) == (200, b"")
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS, PUT"
    assert client.options("/nope").status == 404
    # wsgiref's validator refuses PATH_INFO "*", though servers pass it on for "OPTIONS *".
    star = app.test_client().options("*")
    assert star.headers["Allow"] == "GET, HEAD, OPTIONS, POST, PUT"

    @app.route("/custom", methods=["OPTIONS"])
    def custom(req: Request) -> Response:
        return Response("", 204, {"Allow": "OPTIONS"})

    assert client.options("/custom").status == 204


def test_trailing_slash_redirect_only_for_slashed_rules(client: Client) -> None:
    response = client.get("/dir?x=1&y=%E5%A4%AA")
    assert response.status == 308
    assert response.headers["Location"] == "/dir/?x=1&y=%E5%A4%AA"
    assert client.get("/file/").status == 404
    assert client.get("/dir/").text == "dir"


def test_redirect_keeps_the_mount_point(app: App) -> None:
    app.add_route("/太/", lambda req: "ok", endpoint="mounted")
    response = app.test_client().get("/太", environ={"SCRIPT_NAME": "/app"})
    assert response.headers["Location"] == "/app/%E5%A4%AA/"


# --- bad inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/greeting/%FF", "/greeting/%C3%28", "/greeting/%zz", "/%"])
def test_bad_paths_are_400(client: Client, target: str) -> None:
    response = client.get(target)
    assert response.status == 400
    assert response.text.startswith("400 Bad Request: the path")


def test_bad_json_is_400(client: Client) -> None:
    response = client.post("/items", body=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert response.text == "400 Bad Request: the body is not valid JSON\n"
    assert client.post("/items", json={"a": 1}).json() == {"a": 1}


def test_body_too_large_is_413(validate: bool) -> None:
    app = App(max_body_size=10)

    @app.post("/")
    def echo(req: Request) -> bytes:
        return req.body

    client = app.test_client(validate=validate)
    assert client.post("/", body=b"x" * 10).body == b"x" * 10
    assert client.post("/", body=b"x" * 11).status == 413


def test_bad_query_is_400(app: App, client: Client) -> None:
    @app.get("/q")
    def q(req: Request) -> list[str]:
        return req.query.getall("a")

    assert client.get("/q?a=1&a=%E5%A4%AA").json() == ["1", "太"]
    assert client.get("/q?a=%FF").status == 400


# --- errors --------------------------------------------------------------------------------


def test_exception_is_logged_and_becomes_a_plain_500(
    app: App, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/boom")
    def boom(req: Request) -> str:
        raise RuntimeError("secret detail")

    with caplog.at_level(logging.ERROR, logger="kakehashi.app"):
        response = client.get("/boom")
    assert (response.status, response.text) == (500, "500 Internal Server Error\n")
    (record,) = [r for r in caplog.records if r.name == "kakehashi.app"]
    assert record.exc_info is not None
    assert "secret detail" in str(record.exc_info[1])


def test_debug_shows_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    app = App(debug=True)

    @app.get("/")
    def boom(req: Request) -> str:
        raise RuntimeError("visible detail")

    response = app.test_client().get("/")
    assert response.status == 500
    assert "Traceback" in response.text
    assert "RuntimeError: visible detail" in response.text


@pytest.mark.parametrize("result", [None, 3, ("x", "200")], ids=["none", "int", "string-status"])
def test_unusable_view_results_are_500(
    app: App, client: Client, result: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app.add_route("/bad", lambda req: result, endpoint="bad")
    assert client.get("/bad").status == 500


def test_header_injection_from_a_view_is_500(
    app: App, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    app.add_route("/inject", lambda req: ("x", 200, {"X-A": "1\r\nX-B: 2"}), endpoint="inject")
    response = client.get("/inject")
    assert response.status == 500
    assert "X-B" not in response.headers


def test_abort_and_redirect_from_views(app: App, client: Client) -> None:
    @app.get("/forbidden")
    def forbidden(req: Request) -> str:
        abort(403)

    @app.get("/go")
    def go(req: Request) -> Response:
        return redirect(req.url_for("greeting", name="太郎"))

    assert client.get("/forbidden").text == "403 Forbidden\n"
    response = client.get("/go")
    assert response.status == 302
    assert response.headers["Location"] == GREETING


def test_errorhandler_by_status_keeps_the_status(app: App, client: Client) -> None:
    @app.errorhandler(404)
    def not_found(req: Request, error: NotFound) -> str:
        return f"no page at {req.path}"

    response = client.get("/missing/太")
    assert (response.status, response.text) == (404, "no page at /missing/太")


def test_errorhandler_for_405_keeps_allow(app: App, client: Client) -> None:
    @app.errorhandler(405)
    def not_allowed(req: Request, error: Exception) -> tuple[dict[str, str], int]:
        return {"error": "method"}, 405

    response = client.delete("/items/1")
    assert response.json() == {"error": "method"}
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS, PUT"


def test_errorhandler_by_exception_class(
    app: App, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/lookup")
    def lookup(req: Request) -> str:
        return {"a": "b"}[req.query.get("k", "")]

    @app.errorhandler(LookupError)
    def missing_key(req: Request, error: LookupError) -> tuple[str, int]:
        return f"missing {error}", 422

    response = client.get("/lookup?k=zz")
    assert (response.status, response.text) == (422, "missing 'zz'")


def test_errorhandler_500_sees_the_exception(
    app: App, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/boom")
    def boom(req: Request) -> str:
        raise ValueError("bad")

    @app.errorhandler(500)
    def oops(req: Request, error: Exception) -> str:
        return f"sorry: {type(error).__name__}"

    response = client.get("/boom")
    assert (response.status, response.text) == (500, "sorry: ValueError")


def test_failing_errorhandler_falls_back_to_a_plain_500(
    app: App, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    @app.errorhandler(404)
    def broken(req: Request, error: Exception) -> str:
        raise RuntimeError("handler bug")

    with caplog.at_level(logging.ERROR, logger="kakehashi.app"):
        response = client.get("/missing")
    assert (response.status, response.text) == (500, "500 Internal Server Error\n")
    assert any("handler" in r.getMessage() for r in caplog.records)


# --- registration --------------------------------------------------------------------------


def test_conflicts_are_refused_at_registration(app: App) -> None:
    with pytest.raises(RouteConflictError):
        app.add_route("/greeting/<who>", lambda req, who: who, endpoint="other")
    with pytest.raises(RouteConflictError, match="endpoint"):
        app.add_route("/elsewhere", lambda req: "", endpoint="greeting")
    app.add_route("/greeting/<name>/again", app.views["greeting"], endpoint="greeting")
    assert app.url_for("greeting", name="x") == "/greeting/x"


def test_method_decorators(validate: bool) -> None:
    app = App()
    for name in ("get", "post", "put", "patch", "delete"):
        getattr(app, name)("/r", endpoint=name)(lambda req, name=name: name)
    client = app.test_client(validate=validate)
    for name in ("get", "post", "put", "patch", "delete"):
        assert client.open(name.upper(), "/r").text == name


class Hex(Converter):
    regex = r"[0-9a-f]+"
    weight = 50

    def to_python(self, value: str) -> int:
        return int(value, 16)

    def to_url(self, value: Any) -> str:
        return format(value, "x")


def test_custom_converters(validate: bool) -> None:
    app = App(converters={"hex": Hex})
    app.add_route("/h/<hex:n>", lambda req, n: str(n), endpoint="h")
    app.add_converter("hex2", Hex)
    app.add_route("/g/<hex2:n>", lambda req, n: str(n * 2), endpoint="g")
    client = app.test_client(validate=validate)
    assert client.get("/h/ff").text == "255"
    assert client.get("/g/10").text == "32"
    assert app.url_for("h", n=255) == "/h/ff"


def test_url_for_on_request_and_app(app: App, client: Client) -> None:
    @app.get("/links")
    def links(req: Request) -> dict[str, str]:
        return {
            "relative": req.url_for("item", item_id=3, tab="x"),
            "external": req.url_for("greeting", name="太郎", _external=True),
        }

    assert client.get("/links").json() == {
        "relative": "/items/3?tab=x",
        "external": f"http://localhost{GREETING}",
    }
    assert app.url_for("index") == "/"


# --- request features through the client ---------------------------------------------------


def test_headers_cookies_forms_files_and_client_address(app: App, client: Client) -> None:
    @app.post("/everything")
    def everything(req: Request) -> dict[str, Any]:
        upload = req.files["doc"]
        return {
            "agent": req.headers["user-agent"],
            "cookie": req.cookies.get("c"),
            "form": req.form.getall("tag"),
            "file": [upload.filename, upload.content_type, upload.data.decode()],
            "addr": req.remote_addr,
        }

    response = client.post(
        "/everything",
        headers={"User-Agent": "tests", "Cookie": "c=1"},
        form={"tag": "太"},
        files={"doc": ("a.txt", b"hello", "text/plain")},
    )
    assert response.json() == {
        "agent": "tests",
        "cookie": "1",
        "form": ["太"],
        "file": ["a.txt", "text/plain", "hello"],
        "addr": "127.0.0.1",
    }


def test_cookies_round_trip_through_the_client(app: App, client: Client) -> None:
    @app.get("/login")
    def login(req: Request) -> Response:
        response = Response("in")
        response.set_cookie("sid", "s3cret")
        return response

    @app.get("/me")
    def me(req: Request) -> str:
        return req.cookies.get("sid", "anonymous")

    @app.get("/logout")
    def logout(req: Request) -> Response:
        response = Response("out")
        response.delete_cookie("sid")
        return response

    assert client.get("/me").text == "anonymous"
    client.get("/login")
    assert client.cookies == {"sid": "s3cret"}
    assert client.get("/me").text == "s3cret"
    client.get("/logout")
    assert client.get("/me").text == "anonymous"


def test_urlencoded_form_through_the_client(app: App, client: Client) -> None:
    app.add_route("/f", lambda req: dict(req.form), methods=["POST"], endpoint="f")
    assert client.post("/f", form={"a": "1 2", "b": "太"}).json() == {"a": "1 2", "b": "太"}


def test_app_works_under_wsgiref_validator_with_write_callable() -> None:
    # The client supports legacy apps that use the write() callable too.
    def legacy(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"old ")
        return [b"style"]

    assert Client(legacy).get("/").body == b"old style"
