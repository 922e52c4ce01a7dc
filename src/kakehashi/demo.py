"""The demo: the tutorial's routes, written with kakehashi.app.

``kakehashi serve`` serves this ``app`` when no application is named.  It is the first code a
newcomer reads, so it stays as small as the tutorial's raw WSGI version: no helpers, no state.
Anything other than these two routes is the framework's automatic 404 page.

Invariant: ``/`` answers ``Hello, World`` and ``/greeting/<name>`` answers ``Hello, <name>!``
for any Unicode name, as text/plain in UTF-8; tests/app/test_demo.py holds it to that.
"""

from kakehashi.app import App, Request

app = App()


@app.get("/")
def hello(req: Request) -> str:
    return "Hello, World"


@app.get("/greeting/<name>")
def greeting(req: Request, name: str) -> str:
    return f"Hello, {name}!"
