"""Rolling replacement of workers under a keep-alive load: SIGHUP and ``--max-requests``
replace every worker, one at a time, and no request is lost (the bars of issue 10)."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable

import pytest

from tests.conftest import ServeProcess
from tests.integration.keepalive_load import KeepAliveLoad
from tests.integration.processes import alive, ready_workers
from tests.wire import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Spawn = Callable[..., ServeProcess]
APP = "tests.integration.manager_apps:app"


def test_sighup_twice_under_load_replaces_every_worker_and_loses_nothing(
    serve_process: Spawn,
) -> None:
    proc = serve_process(APP, "--port", "0", "--workers", "2", "--threads", "4", "--no-access-log")
    where = proc.address()
    first = ready_workers(proc, 2)
    with KeepAliveLoad(where, connections=50, limit=20) as load:
        time.sleep(2)
        proc.signal(signal.SIGHUP)
        assert proc.wait_for("reload done", 10), proc.stderr
        time.sleep(3)
        proc.signal(signal.SIGHUP)
        assert wait_until(lambda: proc.stderr.count("reload done") == 2, 10), proc.stderr
        time.sleep(5)  # ten seconds of load in all
    result = load.result
    workers = ready_workers(proc, 6)
    assert len(workers) == 6  # 2 at start, 2 per reload
    assert not any(alive(pid) for pid in first)  # every first worker was replaced
    assert set(result.by_pid) - set(first)  # the new workers served
    assert result.ok > 500, result.ok
    assert result.failures == [], (len(result.failures), result.failures[:5])
    proc.signal(signal.SIGTERM)
    assert proc.wait(15) == 0


def test_max_requests_recycles_workers_under_load_and_loses_nothing(
    serve_process: Spawn,
) -> None:
    proc = serve_process(
        APP, "--port", "0", "--workers", "2", "--threads", "4", "--no-access-log",
        "--max-requests", "200", "--max-requests-jitter", "50",
    )  # fmt: skip
    where = proc.address()
    ready_workers(proc, 2)
    with KeepAliveLoad(where, connections=50, limit=25) as load:
        recycled = wait_until(lambda: proc.stderr.count("(--max-requests)") >= 10, 20)
    assert recycled, proc.stderr[-2000:]
    served = [int(n) for n in re.findall(r"served (\d+) requests \(--max-requests\)", proc.stderr)]
    assert all(n >= 200 for n in served)
    assert len(set(load.result.by_pid)) >= 10
    assert load.result.failures == [], (len(load.result.failures), load.result.failures[:5])
    proc.signal(signal.SIGTERM)
    assert proc.wait(15) == 0
