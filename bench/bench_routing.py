"""Route lookup time at 10 and at 1,000 routes: kakehashi's compiled router against a linear
list of regular expressions (the tutorial's ``if re.match(...)`` ladder, grown).

Run: ``PYTHONPATH=src python bench/bench_routing.py`` (prints a Markdown table).  A script,
not a test: timings depend on the machine; the point is how each column grows with N.
"""

from __future__ import annotations

import io
import platform
import re
import sys
import timeit
from collections.abc import Callable
from typing import Any

from kakehashi.app import App
from kakehashi.app.routing import Placeholder, Router

SIZES = (10, 100, 1000)


def rules(count: int) -> list[str]:
    """``count`` non-conflicting rules of four everyday shapes."""
    shapes = ("/g{i}", "/g{i}/items/<int:item_id>", "/g{i}/users/<name>", "/g{i}/files/<path:p>")
    return [shapes[n % 4].format(i=n // 4) for n in range(count)]


def sample_path(rule: str) -> str:
    return (
        rule.replace("<int:item_id>", "42").replace("<name>", "taro").replace("<path:p>", "a/b.txt")
    )


def linear_matcher(router: Router) -> Callable[[str], Any]:
    compiled = []
    for rule in router.rules:
        parts = [
            f"(?P<{s.name}>{s.converter.regex})" if isinstance(s, Placeholder) else re.escape(s)
            for s in rule.segments
        ]
        compiled.append((re.compile("/" + "/".join(parts)), rule))

    def match(path: str) -> Any:
        for pattern, rule in compiled:
            found = pattern.fullmatch(path)
            if found:
                return rule, found.groupdict()
        return None

    return match


def per_call_ns(call: Callable[[], object]) -> float:
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=7, number=number)) / number * 1e9


def wsgi_call(app: App, path: str) -> Callable[[], object]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "http",
    }

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        return None

    return lambda: b"".join(app(dict(environ), start_response))


def last_of_shape(router: Router, shape: str) -> str:
    """A path for the most recently registered rule containing ``shape`` ("" = static)."""
    return sample_path(
        next(
            r.text
            for r in reversed(router.rules)
            if (shape in r.text if shape else not r.arguments)
        )
    )


def measure(count: int) -> dict[str, float]:
    app = App()
    for index, rule in enumerate(rules(count)):
        app.add_route(rule, lambda req, **params: "ok", endpoint=f"e{index}")
    router = app.router
    linear = linear_matcher(router)
    paths = {
        "static": last_of_shape(router, ""),
        "<int>": last_of_shape(router, "/items/"),
        "<path>": last_of_shape(router, "/files/"),
        "404": "/nowhere/at/all",
    }
    timings: dict[str, float] = {}
    for label, path in paths.items():
        timings[f"router, last {label} rule" if label != "404" else "router, 404"] = per_call_ns(
            lambda path=path: _swallow(router.match, "GET", path)
        )
    for label, path in paths.items():
        key = f"linear regex, last {label} rule" if label != "404" else "linear regex, 404"
        timings[key] = per_call_ns(lambda path=path: linear(path))
    timings["whole app call (WSGI), last <int> rule"] = per_call_ns(wsgi_call(app, paths["<int>"]))
    return timings


def _swallow(function: Callable[..., object], *args: object) -> None:
    try:
        function(*args)
    except Exception:
        return


def main() -> int:
    results = {count: measure(count) for count in SIZES}
    print(f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    print()
    print("| lookup | " + " | ".join(f"{n:,} routes" for n in SIZES) + " |")
    print("|---|" + "---:|" * len(SIZES))
    for label in results[SIZES[0]]:
        cells = " | ".join(f"{results[n][label] / 1000:.2f} µs" for n in SIZES)
        print(f"| {label} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
