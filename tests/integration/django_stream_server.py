"""A Django project with a StreamingHttpResponse whose generator queries SQLite, served by
kakehashi in its own process (Django's settings are once per process, so not in pytest's).

``python -m tests.integration.django_stream_server DB_PATH SNDBUF``: prints ``listening on
HOST:PORT``, then one ``generator done ...`` line per finished response; stops when stdin
closes.  The listener's SO_SNDBUF is set small (accepted sockets inherit it) so that a short
response outgrows the kernel's buffers, as a long one does on a real network.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

ROWS = 40
PAYLOAD = 1000


def rows_view(request: Any) -> Any:
    from django.db import connection
    from django.http import StreamingHttpResponse

    connection.ensure_connection()
    view_thread, view_conn = threading.get_ident(), connection.connection

    def rows() -> Iterator[bytes]:
        same = True
        for n in range(ROWS):
            # Django's connections are per thread: a generator moved to another thread would
            # open another connection here.
            same = same and threading.get_ident() == view_thread
            same = same and connection.connection is view_conn
            with connection.cursor() as cursor:
                cursor.execute("SELECT payload FROM rows WHERE id = %s", [n])
                (payload,) = cursor.fetchone()
            yield f"{n:04d} {payload}\n".encode()
        print(f"generator done same_thread_and_connection={same}", flush=True)

    return StreamingHttpResponse(rows(), content_type="text/plain")


def urlpatterns_() -> list[Any]:
    from django.urls import path

    return [path("rows", rows_view)]


urlpatterns: list[Any] = []


def main() -> None:
    import django
    from django.conf import settings

    db_path, sndbuf = sys.argv[1], int(sys.argv[2])
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db_path}},
    )
    urlpatterns[:] = urlpatterns_()
    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, payload TEXT)")
        for n in range(ROWS):
            cursor.execute("INSERT INTO rows VALUES (%s, %s)", [n, chr(97 + n % 26) * PAYLOAD])
    connection.close()

    from kakehashi.server import Server, ServerConfig

    server = Server(get_wsgi_application(), ServerConfig(bind=("127.0.0.1:0",)))
    server.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    server.start()
    print(f"listening on {server.addresses[0]}", flush=True)
    sys.stdin.read()
    server.shutdown(2)


if __name__ == "__main__":
    main()
