"""A Django project served through ``get_asgi_application()``: an async view, a sync view
(run in a thread by Django) and an upload read through ``request.body``.  Served by
``kakehashi serve 'tests.asgi_frameworks.django_asgi:application()'`` in a process of its
own, so its settings meet no other Django."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

urlpatterns: list[Any] = []


def application() -> Any:
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only-not-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATA_UPLOAD_MAX_MEMORY_SIZE=None,
    )
    import django
    from django.core.asgi import get_asgi_application
    from django.http import HttpRequest, HttpResponse, JsonResponse
    from django.urls import path

    django.setup()

    async def async_view(request: HttpRequest) -> JsonResponse:
        await asyncio.sleep(0.01)
        return JsonResponse({"kind": "async", "q": request.GET.get("q")})

    def sync_view(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"kind": "sync", "thread": threading.current_thread().name})

    def upload(request: HttpRequest) -> HttpResponse:
        return HttpResponse(str(len(request.body)))

    urlpatterns[:] = [
        path("async", async_view),
        path("sync", sync_view),
        path("upload", upload),
    ]
    return get_asgi_application()
