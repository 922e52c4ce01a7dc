"""What a feature costs: peers side by side, timed in short alternating slices.

    python bench/overhead.py [--peers kakehashi,kakehashi-log,kakehashi-metrics]
                             [--scenario keepalive10] [--slices 30] [--slice 1]
                             [--app raw|fastapi]

``run_server.py`` starts one peer at a time and times it for several seconds; on this kind of
machine (a shared VM) the speed drifts by 10-20% within minutes, more than the few per cent
a feature like the access log or metrics costs.  Here every peer is started at once (each
pinned to the server core, idle while another is timed) and wrk runs against them in turn,
one slice each, the order reversed every round.  Each slice is compared with the first
peer's slice of the same round, so drift slower than a round cancels out: the median of those
ratios, with its quartiles, is what a feature costs.  Server CPU per request is reported
too, as in run_server.py.  Raw results go to ``bench/out/overhead-*.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import peers
from bench.run_server import (
    OUT,
    POST_LUA,
    SCENARIOS,
    Result,
    check_response,
    parse_wrk,
    run_wrk,
    wrk_argv,
)
from bench.serve_peer import raise_nofile_limit

DEFAULT_PEERS = "kakehashi,kakehashi-log,kakehashi-metrics"
MAX_SLICES = 100
MAX_SLICE_S = 10.0


@dataclass
class Slices:
    peer: str
    rps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(lower quartile, median, upper quartile)."""
    if len(values) < 2:
        value = values[0] if values else float("nan")
        return value, value, value
    low, mid, high = statistics.quantiles(values, n=4)
    return low, mid, high


def one_slice(server: peers.Server, argv: list[str], seconds: float, into: Slices) -> None:
    result = Result("", server.peer.name)
    cpu = peers.cpu_seconds(server.pid)
    parse_wrk(run_wrk(argv, seconds), result)
    cpu = peers.cpu_seconds(server.pid) - cpu
    if result.rps is None or not result.requests or result.error:
        into.errors.append(result.error or "no requests")
        return
    into.rps.append(result.rps)
    into.cpu_us.append(cpu / result.requests * 1e6)
    if result.p99_ms is not None:
        into.p99_ms.append(result.p99_ms)


def _ratios(num: list[float], den: list[float]) -> str:
    low, mid, high = quartiles([a / b for a, b in zip(num, den, strict=False)])
    return f"{mid:.3f} ({low:.3f}-{high:.3f})"


def table(slices: dict[str, Slices], names: list[str]) -> str:
    """Each peer against the first and against the one above it (the order of --peers:
    kakehashi, then with the access log, then with metrics too), slice by slice."""
    base = slices[names[0]]
    lines = [
        f"ratios slice by slice, median (quartiles): to {names[0]}, and to the peer above",
        "",
        f"| peer | req/s (median) | req/s to {names[0]} | req/s to above | CPU µs/req "
        f"(median) | CPU to {names[0]} | CPU to above | p99 ms (median) | slices |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    above = base
    for name in names:
        s = slices[name]
        failed = f" ({len(s.errors)} failed)" if s.errors else ""
        p99 = statistics.median(s.p99_ms) if s.p99_ms else float("nan")
        lines.append(
            f"| {name} | {statistics.median(s.rps):,.0f} | {_ratios(s.rps, base.rps)} | "
            f"{_ratios(s.rps, above.rps)} | {statistics.median(s.cpu_us):.1f} | "
            f"{_ratios(s.cpu_us, base.cpu_us)} | {_ratios(s.cpu_us, above.cpu_us)} | "
            f"{p99:.2f} | {len(s.rps)}{failed} |"
        )
        above = s
    return "\n".join(lines)


def report(path: Path) -> int:
    """Print the table of a run saved by this script."""
    raw = json.loads(path.read_text())
    slices = {r["peer"]: Slices(**r) for r in raw["results"]}
    print(table(slices, list(slices)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/overhead.py", description=__doc__)
    parser.add_argument(
        "--peers",
        default=DEFAULT_PEERS,
        help="the first is the reference; each is also compared with the one before it",
    )
    parser.add_argument("--scenario", default="keepalive10", choices=list(SCENARIOS))
    parser.add_argument("--slices", type=int, default=30, help=f"rounds (at most {MAX_SLICES})")
    parser.add_argument("--slice", type=float, default=1.0, help="seconds of wrk per slice")
    parser.add_argument(
        "--app", default="raw", choices=list(peers.ASGI_APPS), help="what ASGI peers serve"
    )
    parser.add_argument("--report", type=Path, help="only re-print the table of a raw JSON")
    args = parser.parse_args(argv)
    if args.report:
        return report(args.report)
    names = [n.strip() for n in args.peers.split(",") if n.strip()]
    unknown = [n for n in names if n not in peers.PEERS]
    if unknown or len(names) < 2:
        raise SystemExit(f"give two peers or more from: {', '.join(peers.PEERS)}")
    rounds = max(1, min(args.slices, MAX_SLICES))  # every load loop is bounded
    seconds = max(1.0, min(args.slice, MAX_SLICE_S))
    scenario = SCENARIOS[args.scenario]

    raise_nofile_limit()
    versions = peers.versions()
    slices = {name: Slices(name) for name in names}
    servers: list[peers.Server] = []
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "post1m.lua"
        lua.write_text(POST_LUA)
        try:
            for name in names:
                label = f"overhead-{scenario.name}"
                servers.append(peers.start(name, OUT / "logs", label=label, app=args.app))
            for server in servers:  # a correct answer first, then a warm-up slice
                check_response(scenario, server.port)
                run_wrk(wrk_argv(scenario, server.port, 1.0, lua), 1.0)
            for n in range(rounds):
                print(f"# slice {n + 1} of {rounds}", file=sys.stderr, flush=True)
                for server in servers if n % 2 == 0 else servers[::-1]:
                    command = wrk_argv(scenario, server.port, seconds, lua)
                    one_slice(server, command, seconds, slices[server.peer.name])
        finally:
            for server in servers:
                server.stop()

    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw = {
        "when": stamp,
        "scenario": scenario.name,
        "app": peers.ASGI_APPS[args.app],
        "slice_s": seconds,
        "slices": rounds,
        "versions": versions,
        "peers": {name: peers.PEERS[name].note for name in names},
        "results": [asdict(slices[name]) for name in names],
    }
    path = OUT / f"overhead-{stamp}.json"
    path.write_text(json.dumps(raw, indent=2) + "\n")
    print(table(slices, names))
    print(f"\nraw results: {path.relative_to(peers.ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
