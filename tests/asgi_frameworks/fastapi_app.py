"""A FastAPI application using what users use, served unchanged by ``kakehashi serve
tests.asgi_frameworks.fastapi_app:app``.  ``/seen`` tells which ASGI messages went out (a
plain ASGI middleware watches), so a test can see that FileResponse used pathsend."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, FastAPI, Header, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel

SENT: list[str] = []
DONE: list[str] = []
# Named by the process, so a test can see that the lifespan shutdown removed it.
FILE = Path(tempfile.gettempdir()) / f"kakehashi-fastapi-{os.getpid()}.bin"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    FILE.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    yield {"greeting": "hello from lifespan"}
    FILE.unlink(missing_ok=True)


class Watch:
    """Records the type of every message the application sends."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def watched(message: Any) -> None:
            SENT.append(message["type"])
            await send(message)

        await self.app(scope, receive, watched)


app = FastAPI(lifespan=lifespan)
app.add_middleware(Watch)


class Item(BaseModel):
    name: str
    price: float


class Teapot(Exception):
    pass


@app.exception_handler(Teapot)
async def teapot_handler(request: Request, exc: Teapot) -> JSONResponse:
    return JSONResponse({"error": "teapot"}, status_code=418)


async def token(x_token: Annotated[str | None, Header()] = None) -> str:
    if x_token != "secret":
        raise HTTPException(status_code=401, detail="bad token")
    return x_token


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None) -> dict[str, Any]:
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def create_item(item: Item) -> dict[str, Any]:
    return {"name": item.name, "price": item.price}


@app.post("/upload")
async def upload(file: UploadFile) -> dict[str, Any]:
    data = await file.read()
    return {"filename": file.filename, "size": len(data)}


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def pieces() -> AsyncIterator[bytes]:
        for n in range(3):
            yield b"piece %d\n" % n
            await asyncio.sleep(0.3)

    return StreamingResponse(pieces(), media_type="text/plain")


@app.get("/file")
async def file() -> FileResponse:
    return FileResponse(FILE)


@app.get("/seen")
async def seen() -> list[str]:
    return SENT


@app.post("/background")
async def background(tasks: BackgroundTasks) -> dict[str, str]:
    async def later() -> None:
        await asyncio.sleep(0.1)
        DONE.append("done")

    tasks.add_task(later)
    return {"scheduled": "yes"}


@app.get("/background")
async def background_done() -> list[str]:
    return DONE


@app.get("/state")
async def state(request: Request) -> dict[str, str]:
    return {"greeting": request.state.greeting}


@app.get("/private")
async def private(user: Annotated[str, Depends(token)]) -> dict[str, str]:
    return {"token": user}


@app.get("/teapot")
async def teapot() -> None:
    raise Teapot()
