"""Head-parse benchmark: kakehashi.http1 against h11 (pure Python) and httptools (C).

Run from the project root:  python bench/bench_parse.py [--number N] [--repeat R]

Each parser gets the same complete, already-buffered request and parses its head (and, for
the POST, its small body) to the end, including all validation.  The best of R runs of N
iterations is reported per request, with ratios to h11 from the same run.  h11 and httptools
come from the `bench` extra (pip install -e '.[bench]').
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kakehashi import http1

BROWSER_GET = (
    b"GET /articles/2026/11/kakehashi?page=2&sort=new HTTP/1.1\r\n"
    b"Host: www.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Referer: https://www.example.com/articles/2026/11/\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: sessionid=3b1f9a2c7d8e4f60a1b2c3d4e5f60718; csrftoken=Zx9Yw8Vu7Ts6Rq5; theme=dark\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"Sec-Fetch-Site: same-origin\r\n"
    b"\r\n"
)
SMALL_POST = (
    b"POST /api/items HTTP/1.1\r\n"
    b"Host: api.example.com\r\n"
    b"User-Agent: python-requests/2.32.3\r\n"
    b"Accept: application/json\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 27\r\n"
    b"\r\n"
    b'{"name": "bridge", "n": 42}'
)


def kakehashi_parse(raw: bytes) -> Callable[[], object]:
    limits = http1.DEFAULT_LIMITS

    def run() -> object:
        request, end = http1.maybe_parse_request_head(raw, 0, limits)  # type: ignore[misc]
        if request.content_length:
            return raw[end : end + request.content_length]
        return request

    return run


def kakehashi_connection(raw: bytes) -> Callable[[], object]:
    def run() -> object:
        conn = http1.Connection(http1.Role.SERVER)
        conn.receive_data(raw)
        event = conn.next_event()
        while not isinstance(event, http1.EndOfMessage):
            event = conn.next_event()
        return event

    return run


def h11_parse(raw: bytes) -> Callable[[], object]:
    import h11

    def run() -> object:
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(raw)
        event = conn.next_event()
        while type(event) is not h11.EndOfMessage:
            event = conn.next_event()
        return event

    return run


def httptools_parse(raw: bytes) -> Callable[[], object]:
    import httptools

    class Sink:
        def on_header(self, name: bytes, value: bytes) -> None:
            pass

        def on_body(self, body: bytes) -> None:
            pass

    def run() -> object:
        parser = httptools.HttpRequestParser(Sink())
        parser.feed_data(raw)
        return parser

    return run


PARSERS = {
    "kakehashi (maybe_parse_request_head)": kakehashi_parse,
    "kakehashi (Connection events)": kakehashi_connection,
    "h11": h11_parse,
    "httptools (C)": httptools_parse,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for label, raw in (
        ("browser GET (12 fields, cookie)", BROWSER_GET),
        ("small POST", SMALL_POST),
    ):
        print(f"\n{label}: {len(raw)} bytes")
        results: dict[str, float] = {}
        for name, make in PARSERS.items():
            best = min(timeit.repeat(make(raw), number=args.number, repeat=args.repeat))
            results[name] = best / args.number * 1e6
        base = results["h11"]
        print(f"  {'parser':40s} {'µs/request':>11s} {'h11 / this':>11s}")
        for name, us in results.items():
            print(f"  {name:40s} {us:11.2f} {base / us:10.1f}x")


if __name__ == "__main__":
    main()
