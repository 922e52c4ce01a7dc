"""WebSocket endpoints of real frameworks, unchanged, for ``kakehashi serve``: FastAPI,
Starlette, Quart and a Django Channels consumer (``channels_application()``, a factory: its
settings meet no other Django in the process)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from quart import Quart, websocket
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

fastapi_app = FastAPI()


@fastapi_app.websocket("/ws/{room}")
async def fastapi_room(ws: WebSocket, room: str) -> None:
    await ws.accept(subprotocol=ws.scope["subprotocols"][0] if ws.scope["subprotocols"] else None)
    try:
        while True:
            data = await ws.receive_json()
            await ws.send_json({"room": room, "got": data})
    except WebSocketDisconnect:
        return  # the client left: nothing to clean up here


async def starlette_echo(ws: Any) -> None:
    await ws.accept()
    async for text in ws.iter_text():
        if text == "bye":
            await ws.close(code=4000, reason="asked to")
            return
        await ws.send_text(text.upper())


starlette_app = Starlette(routes=[WebSocketRoute("/echo", starlette_echo)])

quart_app = Quart(__name__)


@quart_app.websocket("/ws")
async def quart_ws() -> None:
    while True:
        data = await websocket.receive()
        await websocket.send(f"quart: {data}")


def channels_application() -> Any:
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only-not-secret",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["channels"],
        MIDDLEWARE=[],
        ROOT_URLCONF=__name__,
    )
    import django

    django.setup()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.core.asgi import get_asgi_application
    from django.urls import path

    class Echo(AsyncWebsocketConsumer):  # type: ignore[misc]
        async def connect(self) -> None:
            await self.accept()

        async def receive(self, text_data: str | None = None, bytes_data: Any = None) -> None:
            if text_data is not None:
                await self.send(text_data=f"channels: {text_data}")
            else:
                await self.send(bytes_data=bytes_data)

    return ProtocolTypeRouter(
        {
            "http": get_asgi_application(),
            "websocket": URLRouter([path("ws/echo/", Echo.as_asgi())]),
        }
    )


urlpatterns: list[Any] = []
