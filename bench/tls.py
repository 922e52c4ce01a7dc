"""TLS throughput: kakehashi against gunicorn (gthread), same certificate, ratios in one run.

    python bench/tls.py [--duration 10] [--repeat 1] [--key ec|rsa]

Two scenarios, each with wrk over https (``GET /``, the hello application, 10 connections):

- ``tls-keepalive``: requests on kept-alive TLS connections (encryption cost only);
- ``tls-new-conn``: ``Connection: close``, so every request pays a full TLS handshake.

Both servers are started as bench/peers.py starts them (pinned to core 0, access log off,
4 threads), plus ``--certfile``/``--keyfile`` of one self-signed certificate made with
``openssl`` for this run (EC P-256 by default; ``--key rsa`` for RSA 2048). wrk runs on
core 1. Prints a markdown table (req/s and kakehashi/gunicorn) and writes the raw results
as JSON under ``bench/out/``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import peers
from bench.apps import HELLO_BODY
from bench.run_server import OUT, WRK_TIMEOUT, Result, combine, timed
from bench.serve_peer import raise_nofile_limit

PEERS = ("kakehashi", "gunicorn-gthread")
BASELINE = "gunicorn-gthread"
SCENARIOS = {
    "tls-keepalive": ((), "GET / over TLS, keep-alive, 10 connections"),
    "tls-new-conn": (("Connection: close",), "GET / over TLS, a new connection (and handshake) "
                     "per request, 10 connections"),
}  # fmt: skip
CONNECTIONS = 10
_KEYS = {
    "ec": ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
    "rsa": ("-newkey", "rsa:2048"),
}


def make_certificate(directory: Path, key: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    cert, private = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", *_KEYS[key], "-nodes", "-days", "1",
         "-keyout", str(private), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, private


def check_response(port: int, client: ssl.SSLContext) -> None:
    """One request by hand over TLS, checked, before the server is timed."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=client)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if response.status != 200 or data != HELLO_BODY:
        raise RuntimeError(f"wrong answer: {response.status} {data[:80]!r}")


def wrk_argv(headers: tuple[str, ...], port: int, duration: float) -> list[str]:
    argv = ["taskset", "-c", peers.CLIENT_CPU, "wrk", "-t1", f"-c{CONNECTIONS}"]
    argv += [f"-d{duration:g}s", "--latency", "--timeout", WRK_TIMEOUT]
    for header in headers:
        argv += ["-H", header]
    return [*argv, f"https://127.0.0.1:{port}/"]


def measure(peer: str, scenario: str, cert: tuple[Path, Path], args: argparse.Namespace) -> Result:
    result = Result(scenario, peer)
    client = ssl.create_default_context(cafile=str(cert[0]))
    client.check_hostname = False  # the certificate names 127.0.0.1 too; wrk checks nothing
    tls_args = ("--certfile", str(cert[0]), "--keyfile", str(cert[1]))
    try:
        server = peers.start(peer, OUT / "logs", label=scenario, extra_args=tls_args, tls=client)
    except RuntimeError as exc:
        result.error = f"did not start: {str(exc).splitlines()[0]}"
        return result
    headers = SCENARIOS[scenario][0]
    return timed(
        server,
        result,
        lambda: check_response(server.port, client),
        lambda seconds: wrk_argv(headers, server.port, seconds),
        args,
    )


def table(results: list[Result]) -> str:
    by_key = {(r.peer, r.scenario): r for r in results}
    lines = [
        "| scenario | kakehashi req/s | gunicorn gthread req/s | kakehashi / gunicorn "
        "| p99 ms (k / g) | errors (k / g) |",
        "|---|---|---|---|---|---|",
    ]
    for scenario in SCENARIOS:
        mine, theirs = by_key.get(("kakehashi", scenario)), by_key.get((BASELINE, scenario))
        if mine is None or theirs is None:
            continue
        ratio = f"{mine.rps / theirs.rps:.2f}×" if mine.rps and theirs.rps else "-"
        cells = [
            scenario,
            f"{mine.rps:,.0f}" if mine.rps else mine.error or "-",
            f"{theirs.rps:,.0f}" if theirs.rps else theirs.error or "-",
            ratio,
            " / ".join(f"{r.p99_ms:.1f}" if r.p99_ms is not None else "-" for r in (mine, theirs)),
            " / ".join(str(sum(r.socket_errors.values()) + r.non_2xx) for r in (mine, theirs)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/tls.py", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median is kept")
    parser.add_argument("--key", choices=sorted(_KEYS), default="ec", help="certificate key")
    args = parser.parse_args(argv)
    args.duration = max(1.0, min(args.duration, 120.0))  # every load loop is bounded
    args.warmup = max(1.0, min(args.warmup, 10.0))
    args.repeat = max(1, min(args.repeat, 9))
    raise_nofile_limit()
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        cert = make_certificate(Path(tmp), args.key)
        for scenario in SCENARIOS:
            runs: dict[str, list[Result]] = {p: [] for p in PEERS}
            for n in range(args.repeat):  # rounds interleave the peers: drift hits both alike
                for peer in PEERS:
                    print(f"# {scenario} / {peer} (round {n + 1}) ...", file=sys.stderr, flush=True)
                    runs[peer].append(measure(peer, scenario, cert, args))
            results += [combine(runs[p]) for p in PEERS]
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw = {
        "when": stamp,
        "duration_s": args.duration,
        "repeat": args.repeat,
        "key": args.key,
        "cpus": {"server": peers.SERVER_CPU, "wrk": peers.CLIENT_CPU},
        "versions": peers.versions(),
        "scenarios": {name: note for name, (_, note) in SCENARIOS.items()},
        "results": [asdict(r) for r in results],
    }
    path = OUT / f"tls-{stamp}.json"
    path.write_text(json.dumps(raw, indent=2) + "\n")
    print(table(results))
    print(f"\nraw results: {path.relative_to(peers.ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
