"""Throughput benchmark: wrk against every peer, ratios to a reference peer from the same run.

    python bench/run_server.py [--peers a,b] [--scenarios s1,s2] [--duration 10] [--quick]
                               [--app raw,fastapi] [--reference waitress[,other]]

For each scenario, application and peer: start the server pinned to core 0, check one
response by hand, warm up with a short wrk run, then ``taskset -c 1 wrk -t1 -cN -dDs
--latency``, read the server's RSS, stop the server. Prints markdown tables (req/s and ratio
to the first reference, a ratio table for each further one; latency, errors, RSS and CPU per
request) and writes the raw results as JSON under ``bench/out/``.

``--peers asgi`` is the ASGI comparison of issue 21 (bench/peers.py, GROUPS); ``--app`` is
what those peers serve (``raw``: bench/asgi_app.py, ``fastapi``: bench/fastapi_app.py), each
app a table of its own; WSGI peers serve bench.apps:app whatever it says.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import peers
from bench.apps import BIG_SIZE, HELLO_BODY
from bench.serve_peer import raise_nofile_limit

OUT = peers.ROOT / "bench" / "out"
BASELINE = "waitress"
POST_SIZE = 1024 * 1024
WRK_TIMEOUT = "5s"
POST_LUA = f"""-- written by bench/run_server.py: POST a {POST_SIZE}-byte body to /upload
wrk.method = "POST"
wrk.body = string.rep("a", {POST_SIZE})
wrk.headers["Content-Type"] = "application/octet-stream"
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    connections: int
    note: str
    headers: tuple[str, ...] = ()
    post: bool = False


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("keepalive10", "/", 10, "GET / hello, keep-alive, 10 connections"),
        Scenario("keepalive100", "/", 100, "GET / hello, keep-alive, 100 connections"),
        Scenario(
            "close",
            "/",
            10,
            "GET / hello, Connection: close, 10 connections",
            ("Connection: close",),
        ),
        Scenario("big64k", "/big", 10, "GET /big, 64 KiB responses, keep-alive, 10 connections"),
        Scenario("post1m", "/upload", 10, "POST /upload, 1 MiB bodies, 10 connections", post=True),
    )
}


@dataclass
class Result:
    scenario: str
    peer: str
    app: str = "raw"  # the ASGI app an ASGI peer served (peers.ASGI_APPS)
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int | None = None
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    ratio: float | None = None
    rss_mib: float | None = None
    # Server CPU (user + system, the process and its children) per request during the run:
    # steadier than req/s on a noisy machine, for what a feature costs.
    cpu_us: float | None = None
    rounds: list[float | None] = field(default_factory=list)  # req/s of every round
    round_ratios: list[float | None] = field(default_factory=list)  # each round vs reference's


# ---- wrk -------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str, result: Result) -> None:
    """Fill ``result`` from ``wrk --latency`` output."""
    if m := re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M):
        result.rps = float(m.group(1))
    if m := re.search(r"^\s+50%\s+(\S+)", output, re.M):
        result.p50_ms = _ms(m.group(1))
    if m := re.search(r"^\s+99%\s+(\S+)", output, re.M):
        result.p99_ms = _ms(m.group(1))
    if m := re.search(r"^\s+(\d+) requests in", output, re.M):
        result.requests = int(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        result.non_2xx = int(m.group(1))
    if m := re.search(r"Socket errors:(.*)$", output, re.M):
        result.socket_errors = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", m.group(1))}
    if result.rps is None:
        result.error = "could not parse wrk output: " + output[-500:]


def wrk_argv(scenario: Scenario, port: int, duration: float, lua: Path) -> list[str]:
    argv = ["taskset", "-c", peers.CLIENT_CPU, "wrk", "-t1", f"-c{scenario.connections}"]
    argv += [f"-d{duration:g}s", "--latency", "--timeout", WRK_TIMEOUT]
    for header in scenario.headers:
        argv += ["-H", header]
    if scenario.post:
        argv += ["-s", str(lua)]
    return [*argv, f"http://127.0.0.1:{port}{scenario.path}"]


def run_wrk(argv: list[str], duration: float) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode}: {proc.stderr[-500:]}")
    return proc.stdout


# ---- one measurement -------------------------------------------------------------------


def check_response(scenario: Scenario, port: int) -> None:
    """One request by hand: the peer must answer this scenario correctly before we time it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = b"a" * POST_SIZE if scenario.post else None
        headers = dict(h.split(": ", 1) for h in scenario.headers)
        conn.request("POST" if scenario.post else "GET", scenario.path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    expected = {"/": HELLO_BODY, "/big": b"x" * BIG_SIZE, "/upload": str(POST_SIZE).encode()}
    if response.status != 200 or data != expected[scenario.path]:
        raise RuntimeError(f"wrong answer: {response.status} {data[:80]!r}")


def measure(
    peer: str, scenario: Scenario, args: argparse.Namespace, lua: Path, app: str = "raw"
) -> Result:
    result = Result(scenario.name, peer, app)
    label = scenario.name if app == "raw" else f"{scenario.name}-{app}"
    try:
        server = peers.start(peer, OUT / "logs", label=label, app=app)
    except RuntimeError as exc:
        result.error = f"did not start: {str(exc).splitlines()[0]}"
        return result
    return timed(
        server,
        result,
        lambda: check_response(scenario, server.port),
        lambda seconds: wrk_argv(scenario, server.port, seconds, lua),
        args,
    )


def timed(
    server: peers.Server,
    result: Result,
    check: Callable[[], None],
    argv: Callable[[float], list[str]],
    args: argparse.Namespace,
) -> Result:
    """Check one answer by hand, warm up, time wrk (``argv(seconds)``), stop the server."""
    try:
        check()
        run_wrk(argv(args.warmup), args.warmup)
        cpu = peers.cpu_seconds(server.pid)
        output = run_wrk(argv(args.duration), args.duration)
        cpu = peers.cpu_seconds(server.pid) - cpu
        result.rss_mib = peers.rss_bytes(server.pid) / 2**20
        parse_wrk(output, result)
        if result.requests:
            result.cpu_us = cpu / result.requests * 1e6
        if server.proc.poll() is not None:
            result.error = f"server exited with {server.proc.returncode} during the run"
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        result.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    finally:
        server.stop()
    return result


def combine(runs: list[Result]) -> Result:
    """The round with the median req/s (lower median), carrying every round's req/s."""
    good = sorted((r for r in runs if r.rps is not None), key=lambda r: r.rps or 0.0)
    chosen = good[(len(good) - 1) // 2] if good else runs[-1]
    chosen.rounds = [r.rps for r in runs]
    if good and len(good) < len(runs):
        failed = next(r.error for r in runs if r.rps is None)
        chosen.error = f"{len(runs) - len(good)} of {len(runs)} rounds failed: {failed}"
    return chosen


# ---- report ----------------------------------------------------------------------------


def _of(results: list[Result], reference: str) -> dict[tuple[str, str], Result]:
    """The reference's results that have a req/s, by (app, scenario)."""
    return {(r.app, r.scenario): r for r in results if r.peer == reference and r.rps}


def add_ratios(results: list[Result], reference: str = BASELINE) -> None:
    """ratio: median req/s over the reference's median (same app, same scenario);
    round_ratios: round by round."""
    base = _of(results, reference)
    for r in results:
        b = base.get((r.app, r.scenario))
        if b is None or r.rps is None or not b.rps:
            continue
        r.ratio = r.rps / b.rps
        r.round_ratios = [
            x / y if x is not None and y else None for x, y in zip(r.rounds, b.rounds, strict=True)
        ]


def _cell(r: Result | None) -> str:
    if r is None:
        return ""
    if r.rps is None:
        return "failed" if r.peer != "kakehashi" else "pending"
    ratio = f" ({r.ratio:.2f}×)" if r.ratio is not None else ""
    return f"{r.rps:,.0f}{ratio}"


def _round_cell(r: Result | None) -> str:
    if r is None or not r.round_ratios:
        return "-"
    return " / ".join(f"{x:.2f}" if x is not None else "-" for x in r.round_ratios)


def _ratio_cell(r: Result | None, b: Result | None) -> str:
    if r is None or b is None or r.rps is None or not b.rps:
        return "-"
    return f"{r.rps / b.rps:.2f}×"


def markdown(
    results: list[Result],
    peer_names: list[str],
    scenario_names: list[str],
    references: Sequence[str] = (BASELINE,),
) -> str:
    """The tables, one set per app served (``--app``), each ratio to ``references[0]``, and
    a ratio table for each further reference."""
    apps = list(dict.fromkeys(r.app for r in results)) or ["raw"]
    if len(apps) == 1:
        return _markdown_one(results, peer_names, scenario_names, references)
    parts = []
    for app in apps:
        mine = [r for r in results if r.app == app]
        heading = f"### app: {app} ({peers.ASGI_APPS[app]}; WSGI peers: {peers.APP})"
        parts.append(heading + "\n\n" + _markdown_one(mine, peer_names, scenario_names, references))
    return "\n\n".join(parts)


def _markdown_one(
    results: list[Result],
    peer_names: list[str],
    scenario_names: list[str],
    references: Sequence[str],
) -> str:
    """The tables of one app's results."""
    by_key = {(r.peer, r.scenario): r for r in results}
    first = references[0]
    lines = [f"req/s (ratio to {first}, same run)", ""]
    lines.append("| peer | " + " | ".join(scenario_names) + " |")
    lines.append("|---" * (len(scenario_names) + 1) + "|")
    for p in peer_names:
        cells = [_cell(by_key.get((p, s))) for s in scenario_names]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    for reference in references[1:]:  # a bar's second reference (issue 21: uvicorn)
        lines += ["", f"ratio to {reference}, same run", ""]
        lines.append("| peer | " + " | ".join(scenario_names) + " |")
        lines.append("|---" * (len(scenario_names) + 1) + "|")
        for p in peer_names:
            cells = [
                _ratio_cell(by_key.get((p, s)), by_key.get((reference, s))) for s in scenario_names
            ]
            lines.append(f"| {p} | " + " | ".join(cells) + " |")
    if any(len(r.rounds) > 1 for r in results):
        lines += ["", f"ratio to {first}, round by round", ""]
        lines.append("| peer | " + " | ".join(scenario_names) + " |")
        lines.append("|---" * (len(scenario_names) + 1) + "|")
        for p in peer_names:
            cells = [_round_cell(by_key.get((p, s))) for s in scenario_names]
            lines.append(f"| {p} | " + " | ".join(cells) + " |")
    lines += ["", "latency p50 / p99 (ms), errors, memory and server CPU", ""]
    lines += [
        "RSS: the server's processes right after the timed run (post1m: after the 1 MiB POSTs)",
        "",
    ]
    lines.append(
        "| scenario | peer | p50 | p99 | non-2xx | socket errors | RSS MiB | CPU µs/req | note |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for s in scenario_names:
        for p in peer_names:
            r = by_key.get((p, s))
            if r is None:
                continue
            errs = ", ".join(f"{k} {v}" for k, v in r.socket_errors.items() if v) or "0"
            p50 = f"{r.p50_ms:.2f}" if r.p50_ms is not None else "-"
            p99 = f"{r.p99_ms:.2f}" if r.p99_ms is not None else "-"
            rss = f"{r.rss_mib:.0f}" if r.rss_mib is not None else "-"
            cpu = f"{r.cpu_us:.1f}" if r.cpu_us is not None else "-"
            row = [s, p, p50, p99, str(r.non_2xx), errs, rss, cpu, r.error or ""]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _split(text: str, known: Mapping[str, Any], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return names


def report(path: Path) -> int:
    """Print the tables of a run saved by this script (ratios recomputed)."""
    raw = json.loads(path.read_text())
    results = [Result(**r) for r in raw["results"]]
    references = raw.get("reference") or [BASELINE]
    add_ratios(results, references[0])
    print(markdown(results, list(raw["peers"]), list(raw["scenarios"]), references))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/run_server.py", description=__doc__)
    parser.add_argument(
        "--peers",
        default=",".join(peers.available()),
        help="comma-separated; 'asgi' stands for the ASGI comparison (peers.GROUPS)",
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument(
        "--app",
        default="raw",
        help="what the ASGI peers serve, comma-separated: raw (bench/asgi_app.py), "
        "fastapi (bench/fastapi_app.py); a table for each",
    )
    parser.add_argument(
        "--reference",
        default=BASELINE,
        help="the peer ratios are to; comma-separated, each after the first gets a ratio "
        "table of its own (e.g. gunicorn-asgi,uvicorn)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median is kept")
    parser.add_argument("--report", type=Path, help="only re-print the tables of a raw JSON")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 s warm-up (smoke)")
    args = parser.parse_args(argv)
    if args.report:
        return report(args.report)
    if args.quick:
        args.duration, args.warmup = 3.0, 1.0
    args.duration = max(1.0, min(args.duration, 120.0))  # every load loop is bounded
    args.warmup = max(1.0, min(args.warmup, 10.0))
    args.repeat = max(1, min(args.repeat, 9))
    peer_names = peers.expand(args.peers)
    scenario_names = _split(args.scenarios, SCENARIOS, "scenarios")
    apps = _split(args.app, peers.ASGI_APPS, "apps")
    references = _split(args.reference, peers.PEERS, "reference peers")
    if not apps or not references:
        raise SystemExit("give one app or more and one reference peer or more")
    absent = [r for r in references if r not in peer_names]
    if args.reference != BASELINE and absent:  # the default may be absent: no ratios then
        raise SystemExit(f"reference peers not among --peers: {', '.join(absent)}")

    raise_nofile_limit()
    before = peers.versions()
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "post1m.lua"
        lua.write_text(POST_LUA)
        for s in scenario_names:
            runs: dict[tuple[str, str], list[Result]] = {}
            for n in range(args.repeat):  # rounds interleave the peers: drift hits all alike
                for app in apps:
                    for p in peer_names:
                        what = f"{s} / {app} / {p}" if len(apps) > 1 else f"{s} / {p}"
                        print(f"# {what} (round {n + 1}) ...", file=sys.stderr, flush=True)
                        result = measure(p, SCENARIOS[s], args, lua, app)
                        runs.setdefault((app, p), []).append(result)
            results += [combine(runs[app, p]) for app in apps for p in peer_names]
    add_ratios(results, references[0])

    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    after = peers.versions()
    raw = {
        "when": stamp,
        "duration_s": args.duration,
        "repeat": args.repeat,
        "cpus": {"server": peers.SERVER_CPU, "wrk": peers.CLIENT_CPU},
        "versions": after,
        "versions_at_start": before,
        "warning": peers.moved(before, after),
        "peers": {p: peers.PEERS[p].note for p in peer_names},
        "apps": {app: peers.ASGI_APPS[app] for app in apps},
        "reference": references,
        "scenarios": {s: SCENARIOS[s].note for s in scenario_names},
        "results": [asdict(r) for r in results],
    }
    path = OUT / f"server-{stamp}.json"
    path.write_text(json.dumps(raw, indent=2) + "\n")
    print(markdown(results, peer_names, scenario_names, references))
    if raw["warning"]:
        print(f"\nWARNING: {raw['warning']}")
    print(f"\nraw results: {path.relative_to(peers.ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
