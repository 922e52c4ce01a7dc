"""A small but complete Django project (sessions, CSRF, auth, the admin) on SQLite, served by
``kakehashi serve 'tests.django_site:application()'`` in a subprocess of its own, so that its
settings do not meet the in-process Django of tests/integration/test_frameworks.py.

The database lives in the directory named by ``KAKEHASHI_DJANGO_DIR``; the factory migrates
it and creates the user ``admin`` (password ``secret``) before the server starts.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

urlpatterns: list[Any] = []

_APPS = ["admin", "auth", "contenttypes", "sessions", "messages"]
_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
_CONTEXT = [
    "django.template.context_processors.request",
    "django.contrib.auth.context_processors.auth",
    "django.contrib.messages.context_processors.messages",
]


def _configure(directory: Path) -> None:
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only-not-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[f"django.contrib.{name}" for name in _APPS],
        MIDDLEWARE=_MIDDLEWARE,
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {"context_processors": _CONTEXT},
            }
        ],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": directory / "db.sqlite3"}
        },
        # The default hasher takes most of a second per password: far too slow for a test.
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        STATIC_URL="/static/",
        USE_TZ=True,
    )


def _views() -> list[Any]:
    from django.contrib import admin
    from django.http import HttpResponse
    from django.middleware.csrf import get_token
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    def token(request: Any) -> Any:
        return HttpResponse(get_token(request), content_type="text/plain")

    def submit(request: Any) -> Any:  # CSRF-protected by the middleware
        return HttpResponse(f"got {request.POST['name']}", content_type="text/plain")

    def count(request: Any) -> Any:
        request.session["n"] = request.session.get("n", 0) + 1
        return HttpResponse(str(request.session["n"]), content_type="text/plain")

    @csrf_exempt
    def digest(request: Any) -> Any:
        """The upload's size and SHA-256, read in pieces as a view handling a large file
        would (``request.body`` refuses more than 2.5 MiB by default); Django reads as many
        bytes as ``CONTENT_LENGTH`` says, and no more."""
        sha, size = hashlib.sha256(), 0
        while piece := request.read(65536):
            sha.update(piece)
            size += len(piece)
        length = request.META.get("CONTENT_LENGTH")
        return HttpResponse(f"{size} {sha.hexdigest()} {length}", content_type="text/plain")

    return [
        path("digest", digest),
        path("token", token),
        path("submit", submit),
        path("count", count),
        path("admin/", admin.site.urls),
    ]


def application() -> Any:
    """The WSGI application, after migrating the database (a factory for ``module:attr()``)."""
    import django
    from django.core.management import call_command

    _configure(Path(os.environ["KAKEHASHI_DJANGO_DIR"]))
    django.setup()
    urlpatterns[:] = _views()
    call_command("migrate", interactive=False, verbosity=0)
    from django.contrib.auth.models import User

    if not User.objects.filter(username="admin").exists():
        User.objects.create_superuser("admin", "admin@example.com", "secret")
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()
