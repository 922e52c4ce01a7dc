"""Real Flask and Django applications served by kakehashi, driven by ``requests`` and
``http.client``: forms, JSON, multipart uploads, chunked uploads, streaming responses, and a
whole Django project (CSRF, sessions, the admin) served by ``kakehashi serve``."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from kakehashi.server import Server
from tests.conftest import ServeProcess, StartServer, addr

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

flask = pytest.importorskip("flask")
django = pytest.importorskip("django")


# -- Flask -------------------------------------------------------------------------------------


def make_flask_app() -> Any:
    app = flask.Flask("kakehashi_test")

    @app.post("/form")
    def form() -> Any:
        return {"name": flask.request.form["name"], "tags": flask.request.form.getlist("tag")}

    @app.post("/json")
    def echo_json() -> Any:
        return {"got": flask.request.get_json(), "type": flask.request.content_type}

    @app.post("/upload")
    def upload() -> Any:
        f = flask.request.files["file"]
        data = f.read()
        return {"filename": f.filename, "size": len(data), "sha": hashlib.sha256(data).hexdigest()}

    @app.post("/raw")
    def raw() -> Any:
        data = flask.request.get_data()
        return {"size": len(data), "sha": hashlib.sha256(data).hexdigest()}

    @app.get("/stream")
    def stream() -> Any:
        def gen() -> Iterator[str]:
            for n in range(100):
                yield f"line {n}\n"

        return flask.Response(gen(), mimetype="text/plain")

    @app.get("/hello/<name>")
    def hello(name: str) -> str:
        return f"Hello, {name}!"

    return app


@pytest.fixture
def flask_url(start_server: StartServer) -> str:
    return f"http://{addr(start_server(make_flask_app()))}"


def test_flask_form_json_and_unicode_path(flask_url: str) -> None:
    with requests.Session() as s:
        resp = s.post(flask_url + "/form", data={"name": "太郎", "tag": ["a", "b"]})
        assert resp.json() == {"name": "太郎", "tags": ["a", "b"]}
        resp = s.post(flask_url + "/json", json={"x": [1, 2, {"y": None}]})
        assert resp.json()["got"] == {"x": [1, 2, {"y": None}]}
        assert s.get(flask_url + "/hello/太郎").text == "Hello, 太郎!"
        assert s.get(flask_url + "/missing").status_code == 404


def test_flask_multipart_upload(flask_url: str) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # larger than the pre-read buffer: streamed
    resp = requests.post(
        flask_url + "/upload", files={"file": ("blob.bin", data)}, data={"x": "1"}, timeout=10
    )
    assert resp.json() == {
        "filename": "blob.bin",
        "size": len(data),
        "sha": hashlib.sha256(data).hexdigest(),
    }


def test_flask_chunked_upload_with_requests_and_http_client(flask_url: str) -> None:
    pieces = [os.urandom(n) for n in (1, 1000, 70000, 5)]
    whole = b"".join(pieces)
    expected = {"size": len(whole), "sha": hashlib.sha256(whole).hexdigest()}
    resp = requests.post(flask_url + "/raw", data=iter(pieces), timeout=10)
    assert resp.json() == expected
    port = int(flask_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", "/raw", body=iter(pieces), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})  # fmt: skip
        assert json.loads(conn.getresponse().read()) == expected
        conn.request("GET", "/hello/again")  # and the connection is reusable
        assert conn.getresponse().read() == b"Hello, again!"
    finally:
        conn.close()


def test_flask_streaming_response(flask_url: str) -> None:
    with requests.get(flask_url + "/stream", stream=True, timeout=10) as resp:
        assert resp.headers["Transfer-Encoding"] == "chunked"
        lines = list(resp.iter_lines())
    assert lines == [f"line {n}".encode() for n in range(100)]


# -- Django ------------------------------------------------------------------------------------


def _django_views() -> list[Any]:
    from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
    from django.urls import path

    def form(request: Any) -> Any:
        return JsonResponse({"name": request.POST["name"], "tags": request.POST.getlist("tag")})

    def echo_json(request: Any) -> Any:
        return JsonResponse({"got": json.loads(request.body), "method": request.method})

    def upload(request: Any) -> Any:
        f = request.FILES["file"]
        data = f.read()
        return JsonResponse(
            {"name": f.name, "size": len(data), "sha": hashlib.sha256(data).hexdigest()}
        )

    def raw(request: Any) -> Any:
        body = request.body
        return JsonResponse({"size": len(body), "sha": hashlib.sha256(body).hexdigest()})

    def stream(request: Any) -> Any:
        return StreamingHttpResponse((f"row {n}\n" for n in range(50)), content_type="text/csv")

    def hello(request: Any, name: str) -> Any:
        return HttpResponse(f"Hello, {name}! path={request.path}", content_type="text/plain")

    return [
        path("form", form),
        path("json", echo_json),
        path("upload", upload),
        path("raw", raw),
        path("stream", stream),
        path("hello/<str:name>", hello),
    ]


urlpatterns: list[Any] = []


@pytest.fixture(scope="module")
def django_app() -> Any:
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="test-only",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=[],
            MIDDLEWARE=[],
            DATABASES={},
            USE_TZ=True,
            DATA_UPLOAD_MAX_MEMORY_SIZE=10 * 1024 * 1024,
        )
    urlpatterns[:] = _django_views()
    django.setup()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


@pytest.fixture
def django_server(start_server: StartServer, django_app: Any) -> Server:
    return start_server(django_app)


def test_django_form_json_and_path(django_server: Server) -> None:
    url = f"http://{addr(django_server)}"
    with requests.Session() as s:
        resp = s.post(url + "/form", data={"name": "太郎", "tag": ["x", "y"]})
        assert resp.json() == {"name": "太郎", "tags": ["x", "y"]}
        resp = s.put(url + "/json", json={"k": "v"})
        assert resp.json() == {"got": {"k": "v"}, "method": "PUT"}
        resp = s.get(url + "/hello/%E5%A4%AA%E9%83%8E")
        assert resp.content.decode() == "Hello, 太郎! path=/hello/太郎"
        assert s.get(url + "/nowhere").status_code == 404


def test_django_multipart_upload(django_server: Server) -> None:
    data = os.urandom(2 * 1024 * 1024 + 3)
    resp = requests.post(
        f"http://{addr(django_server)}/upload", files={"file": ("f.bin", data)}, timeout=10
    )
    assert resp.json() == {
        "name": "f.bin",
        "size": len(data),
        "sha": hashlib.sha256(data).hexdigest(),
    }


def test_django_streaming_response(django_server: Server) -> None:
    with requests.get(f"http://{addr(django_server)}/stream", stream=True, timeout=10) as resp:
        assert resp.headers["Transfer-Encoding"] == "chunked"
        assert resp.headers["Content-Type"] == "text/csv"
        assert resp.text == "".join(f"row {n}\n" for n in range(50))


@pytest.mark.parametrize("size", [10 * 1024, 3 * 1024 * 1024])
def test_django_reads_a_chunked_upload(
    start_server: StartServer, django_app: Any, size: int
) -> None:
    """Django reads only CONTENT_LENGTH: a chunked body is read whole (while parked; past
    --buffer-body-size into a file) and handed over with its decoded length."""
    server = start_server(django_app)
    data = os.urandom(size)
    pieces = [data[i : i + 65536] for i in range(0, size, 65536)]
    resp = requests.post(f"http://{addr(server)}/raw", data=iter(pieces), timeout=10)
    assert resp.json() == {"size": size, "sha": hashlib.sha256(data).hexdigest()}


def test_flask_reads_a_chunked_upload_past_the_buffer(flask_url: str) -> None:
    """Over --buffer-body-size (1 MiB by default) a chunked body is spooled to a file while
    parked: Flask gets all of it."""
    data = os.urandom(3 * 1024 * 1024)
    pieces = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    resp = requests.post(flask_url + "/raw", data=iter(pieces), timeout=10)
    assert resp.json() == {"size": len(data), "sha": hashlib.sha256(data).hexdigest()}


# -- A whole Django project: sessions, CSRF and the admin (tests/django_site.py) --------------


@pytest.fixture
def django_process(
    serve_process: Callable[..., ServeProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ServeProcess:
    """``kakehashi serve`` (default settings) running tests/django_site.py on a fresh SQLite
    database."""
    monkeypatch.setenv("KAKEHASHI_DJANGO_DIR", str(tmp_path))
    proc = serve_process("tests.django_site:application()", "-b", "127.0.0.1:0")
    proc.address(timeout=40)
    return proc


@pytest.fixture
def django_site(django_process: ServeProcess) -> str:
    return f"http://{django_process.address()}"


@pytest.mark.timeout(60)
def test_django_csrf_cookie_form_post_and_session(django_site: str) -> None:
    with requests.Session() as s:
        resp = s.get(django_site + "/token", timeout=10)
        assert resp.status_code == 200, resp.text
        token = resp.text
        # Django writes Set-Cookie as " csrftoken=...": it must arrive, trimmed.
        assert resp.raw.headers.getlist("Set-Cookie")[0].startswith("csrftoken=")
        assert s.cookies["csrftoken"]
        resp = s.post(django_site + "/submit", data={"name": "taro"}, timeout=10)
        assert resp.status_code == 403  # the CSRF middleware is really on
        form = {"name": "太郎", "csrfmiddlewaretoken": token}
        resp = s.post(django_site + "/submit", data=form, timeout=10)
        assert (resp.status_code, resp.content.decode()) == (200, "got 太郎")
        assert [s.get(django_site + "/count", timeout=10).text for _ in range(2)] == ["1", "2"]
        assert "sessionid" in s.cookies


@pytest.mark.timeout(60)
def test_django_admin_login(django_site: str) -> None:
    with requests.Session() as s:
        page = s.get(django_site + "/admin/login/?next=/admin/", timeout=10)
        assert page.status_code == 200 and 'name="csrfmiddlewaretoken"' in page.text
        token = page.text.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
        form = {"username": "admin", "password": "secret", "csrfmiddlewaretoken": token}
        resp = s.post(django_site + "/admin/login/?next=/admin/", data=form, timeout=10)
        assert resp.status_code == 200 and resp.url == django_site + "/admin/"
        assert "Site administration" in resp.text
        assert [r.status_code for r in resp.history] == [302]


def _peak_rss_mib(pid: int) -> float:
    """The process's peak resident set so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _chunked_upload(url: str, size: int) -> tuple[str, str]:
    """POST ``size`` bytes (distinct 1 MiB blocks, in 64 KiB chunks) with chunked coding;
    returns Django's answer and the body's SHA-256."""
    base, sha = os.urandom(1 << 20), hashlib.sha256()

    def pieces() -> Iterator[bytes]:
        for n in range(0, size, 1 << 20):
            block = (n.to_bytes(8, "big") + base[8:])[: size - n]
            sha.update(block)
            for i in range(0, len(block), 65536):
                yield block[i : i + 65536]

    resp = requests.post(url, data=pieces(), timeout=30)  # a generator: chunked
    assert resp.status_code == 200, resp.text
    return resp.text, sha.hexdigest()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
@pytest.mark.timeout(90)
def test_django_reads_chunked_uploads_whole_with_rss_bounded(
    django_process: ServeProcess,
) -> None:
    """Django reads only CONTENT_LENGTH: chunked uploads of 10 KiB, 3 MiB and 100 MiB reach
    its view whole at default settings (past --buffer-body-size the body is spooled to a
    file while the connection is parked), and the 100 MiB one is never held in memory."""
    url = f"http://{django_process.address()}/digest"
    pid = django_process.proc.pid
    for size in (10 * 1024, 3 * 1024 * 1024):
        answer, sha = _chunked_upload(url, size)
        assert answer == f"{size} {sha} {size}"
    before = _peak_rss_mib(pid)
    size = 100 * 1024 * 1024
    answer, sha = _chunked_upload(url, size)
    assert answer == f"{size} {sha} {size}"
    grown = _peak_rss_mib(pid) - before
    assert grown < 16, f"peak RSS grew by {grown:.1f} MiB for a 100 MiB upload"
