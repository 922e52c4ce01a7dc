"""A Flask application for the client's tests: it reports what a request really carried.

Served by kakehashi's own server (the ``start_server`` fixture), so the client and ``kakehashi
get`` are checked against a real framework's parsing: Flask's ``request.form``,
``request.files``, ``request.get_json()``, ``request.authorization`` and ``request.cookies``.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from typing import Any

from flask import Flask, Response, jsonify, redirect, request

BIG = bytes(range(256)) * (12 * 1024)  # 3 MiB
TEXT = ("kakehashi " * 10_000).encode()  # compresses well

app = Flask(__name__)


@app.post("/form")
def form() -> Any:
    return jsonify(form=request.form.to_dict(flat=False), content_type=request.content_type)


@app.post("/json")
def json_() -> Any:
    return jsonify(json=request.get_json(), accept=request.headers.get("Accept"))


@app.post("/upload")
def upload() -> Any:
    files = {
        name: {
            "filename": f.filename,
            "content_type": f.content_type,
            "sha256": hashlib.sha256(f.read()).hexdigest(),
        }
        for name, f in request.files.items()
    }
    return jsonify(form=request.form.to_dict(), files=files)


@app.get("/whoami")
def whoami() -> Any:
    auth = request.authorization
    if auth is None:
        return Response("who?", 401, {"WWW-Authenticate": 'Basic realm="test"'})
    return jsonify(type=auth.type, username=auth.username, password=auth.password, token=auth.token)


@app.get("/args")
def args() -> Any:
    return jsonify(request.args.to_dict(flat=False))


@app.get("/big")
def big() -> Any:
    return Response(BIG, mimetype="application/octet-stream")


@app.get("/compressed/<coding>")
def compressed(coding: str) -> Any:
    wanted = request.headers.get("Accept-Encoding", "")
    if coding not in wanted:
        return Response(TEXT, mimetype="text/plain")
    body = gzip.compress(TEXT) if coding == "gzip" else zlib.compress(TEXT)
    return Response(body, mimetype="text/plain", headers={"Content-Encoding": coding})


@app.get("/cookies")
def cookies() -> Any:
    return jsonify(request.cookies.to_dict())


@app.get("/cookies/set")
def set_cookies() -> Any:
    response = redirect(request.args.get("next", "/cookies"))
    response.set_cookie("session", "s1")
    response.set_cookie("admin", "a1", path="/cookies/admin")
    response.set_cookie("evil", "e1", domain="evil.example")
    return response


@app.get("/cookies/admin")
def admin_cookies() -> Any:
    return jsonify(request.cookies.to_dict())


@app.route("/inspect", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def inspect() -> Any:
    files = {
        name: [f.filename, f.content_type, f.read().decode()] for name, f in request.files.items()
    }
    return jsonify(
        method=request.method,
        args=request.args.to_dict(flat=False),
        form=request.form.to_dict(flat=False),
        json=request.get_json(silent=True),
        files=files,
        content_type=request.content_type,
        authorization=request.headers.get("Authorization"),
    )


@app.route("/redirect", methods=["GET", "POST"])
def redirect_to() -> Any:
    return redirect(request.args["to"], 307)


@app.get("/big-stream")
def big_stream() -> Any:
    pieces = (BIG[i : i + 65536] for i in range(0, len(BIG), 65536))
    return Response(pieces, mimetype="application/octet-stream")  # no length: chunked
