"""``bench.apps:app`` as a FastAPI application, for the ASGI peers (``run_server.py --app
fastapi``): the same routes and bodies (``/``, ``/big``, ``/upload``; anything else is
FastAPI's own 404).

The raw ASGI app (``bench/asgi_app.py``) measures the server alone; this one measures it
under the framework most ASGI applications are written with, where the routing, the request
object and the response classes cost more than the server does.  ``/upload`` counts the body
as it streams in (``request.stream()``) rather than holding it whole, as the raw and WSGI apps
do, so the RSS after the 1 MiB POSTs is the server's and not the application's.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from bench.apps import _BIG_BODY, HELLO_BODY

__all__ = ["app"]

app = FastAPI()  # as its tutorial writes it: /docs and /openapi.json stay routed


@app.get("/")
async def hello() -> Response:
    """200 ``Hello, World!``."""
    return Response(HELLO_BODY, media_type="text/plain")


@app.get("/big")
async def big() -> Response:
    """200 with a 64 KiB body."""
    return Response(_BIG_BODY, media_type="text/plain")


@app.post("/upload")
async def upload(request: Request) -> Response:
    """Read the whole body as it arrives and answer with how many bytes there were."""
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
    return Response(str(total).encode("ascii"), media_type="text/plain")
