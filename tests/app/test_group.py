"""Groups mounted under a prefix: routes, endpoints, url_for (with SCRIPT_NAME), and hooks and
error handlers that apply only to the group's requests."""

from __future__ import annotations

from typing import Any

import pytest

from kakehashi.app import App, BuildError, Client, Group, NotFound, Request, Response
from kakehashi.errors import ConfigError, RouteConflictError


@pytest.fixture
def app(calls: list[str]) -> App:
    app = App()
    api = Group("api")

    @app.get("/")
    def index(req: Request) -> str:
        return req.url_for("api.user", id=7)

    @api.get("/")
    def root(req: Request) -> str:
        return "api root"

    @api.get("/users/<int:id>")
    def user(req: Request, id: int) -> dict[str, Any]:
        return {"id": id, "group": req.group, "self": req.url_for(".user", id=id)}

    @api.get("/missing")
    def missing(req: Request) -> str:
        raise NotFound("no such thing")

    @api.errorhandler(404)
    def api_404(req: Request, error: Exception) -> dict[str, str]:
        return {"error": str(error)}

    @api.before_request
    def api_before(req: Request) -> None:
        calls.append("api before")

    @api.after_request
    def api_after(req: Request, response: Response) -> Response:
        calls.append("api after")
        response.headers.set("X-Api", "1")
        return response

    @api.teardown_request
    def api_teardown(req: Request, error: BaseException | None) -> None:
        calls.append("api teardown")

    app.before_request(lambda req: calls.append("app before"))
    app.after_request(lambda req, response: calls.append("app after"))
    app.teardown_request(lambda req, error: calls.append("app teardown"))
    app.mount("/api", api)
    return app


def test_group_routes_answer_under_the_prefix(client: Client) -> None:
    response = client.get("/api/users/3")
    assert response.json() == {"id": 3, "group": "api", "self": "/api/users/3"}
    assert client.get("/api/").text == "api root"
    assert client.get("/api").status == 308  # the slash rule, as for any rule ending in "/"
    assert client.get("/users/3").status == 404


def test_group_hooks_nest_inside_the_apps(client: Client, calls: list[str]) -> None:
    assert client.get("/api/users/1").headers["X-Api"] == "1"
    assert calls == [
        "app before",
        "api before",
        "api after",
        "app after",
        "api teardown",
        "app teardown",
    ]
    calls.clear()
    response = client.get("/")
    assert "X-Api" not in response.headers
    assert calls == ["app before", "app after", "app teardown"]


def test_group_error_handlers_cover_its_prefix_only(client: Client) -> None:
    assert client.get("/api/missing").json() == {"error": "no such thing"}
    assert client.get("/api/nope").json() == {"error": "Not Found"}  # no route: by prefix
    assert client.get("/apiary").text == "404 Not Found\n"
    assert client.get("/nope").text == "404 Not Found\n"


def test_url_for_builds_group_endpoints_under_script_name(app: App, client: Client) -> None:
    assert app.url_for("api.user", id=5) == "/api/users/5"
    assert client.get("/").text == "/api/users/7"
    mounted = client.get("/", environ={"SCRIPT_NAME": "/shop"})
    assert mounted.text == "/shop/api/users/7"
    inner = client.get("/api/users/2", environ={"SCRIPT_NAME": "/shop"}).json()
    assert inner["self"] == "/shop/api/users/2"
    with pytest.raises(BuildError):
        app.url_for("user", id=1)  # the group's endpoints carry its name


def test_a_group_mounts_once_and_takes_no_routes_after(app: App) -> None:
    api = app.groups["api"]
    with pytest.raises(ConfigError):
        app.mount("/other", api)
    with pytest.raises(ConfigError):
        api.add_route("/late", lambda req: "late")
    with pytest.raises(ConfigError):
        app.mount("/x", Group("api"))  # another group of the same name


@pytest.mark.parametrize("name", ["", "a.b", "1st", "with space"])
def test_group_names_must_be_identifiers(name: str) -> None:
    with pytest.raises(ConfigError):
        Group(name)


def test_bad_prefix_and_conflicts_are_refused() -> None:
    app = App()
    with pytest.raises(ConfigError):
        app.mount("api", Group("api"))
    app.get("/v1/x")(lambda req: "x")
    clash = Group("v1")
    clash.get("/x")(lambda req: "y")
    with pytest.raises(RouteConflictError):
        app.mount("/v1", clash)


def test_two_groups_and_a_root_mount() -> None:
    app = App()
    site, admin = Group("site"), Group("admin")
    site.get("/", endpoint="home")(lambda req: "home")
    admin.get("/", endpoint="home")(lambda req: "admin")
    site.errorhandler(404)(lambda req, error: "site 404")
    admin.errorhandler(404)(lambda req, error: "admin 404")
    app.mount("/", site)
    app.mount("/admin", admin)
    client = app.test_client()
    assert (client.get("/").text, client.get("/admin/").text) == ("home", "admin")
    # With no route, the deepest mount point owns the path.
    assert client.get("/admin/nope").text == "admin 404"
    assert client.get("/nope").text == "site 404"
    assert (app.url_for("site.home"), app.url_for("admin.home")) == ("/", "/admin/")


def test_a_group_serves_static_files_under_its_prefix(tmp_path: Any) -> None:
    (tmp_path / "app.js").write_text("run()\n")
    app, assets = App(), Group("assets")
    assets.static("/files", tmp_path)
    app.mount("/ui", assets)
    client = app.test_client()
    response = client.get("/ui/files/app.js")
    assert (response.status, response.body) == (200, b"run()\n")
    assert response.headers["Content-Type"].split(";")[0] in (
        "text/javascript",
        "application/javascript",
    )
    assert app.url_for("assets.static", filename="app.js") == "/ui/files/app.js"
