"""Past one process, past one machine: HAProxy balancing three ``kakehashi serve`` instances
(docs/deploy.md, "Going past one machine"), each restarted in turn with SIGTERM while 50
keep-alive clients send requests through HAProxy: not one request fails at the client.

What makes that hold: kakehashi's graceful shutdown answers every request it accepted
(Connection: close on the last ones) and refuses new handshakes before closing its
listener, so a request is either answered or its connection never accepted; HAProxy's
health checks take a stopped instance out within a fraction of a second, and ``retries``,
``option redispatch`` and ``retry-on`` send a request whose connection failed, or whose
idle keep-alive connection was closed just as it was reused, to another instance.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.client.servers import free_port
from tests.conftest import ServeProcess
from tests.integration.daemons import running
from tests.integration.keepalive_load import KeepAliveLoad
from tests.wire import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HAPROXY = shutil.which("haproxy") or shutil.which("/usr/sbin/haproxy")
APP = "tests.integration.manager_apps:app"
Spawn = Callable[..., ServeProcess]

# The layout docs/deploy.md shows, with loopback ports.
HAPROXY_CONFIG = """
global
    maxconn 512
defaults
    mode http
    option http-keep-alive
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # a request whose connection failed, or got no answer, is tried again, elsewhere
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
frontend web
    bind 127.0.0.1:{port}
    default_backend app
backend app
    balance roundrobin
    option httpchk GET /pid
    http-check expect status 200
    default-server check inter 200ms fall 1 rise 2
{servers}
"""


def start_instance(serve_process: Spawn, port: int) -> ServeProcess:
    proc = serve_process(
        APP, "--bind", f"127.0.0.1:{port}", "--threads", "4", "--no-access-log",
        "--graceful-timeout", "10",
    )  # fmt: skip
    assert proc.wait_for(" on http://", 15), proc.stderr
    return proc


@pytest.fixture
def three_behind_haproxy(
    serve_process: Spawn, tmp_path: Path
) -> Iterator[tuple[int, list[int], list[ServeProcess]]]:
    """HAProxy's port, the instances' ports and their processes (replaced as they restart)."""
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (Debian: apt-get install haproxy)")
    ports = [free_port() for _ in range(3)]
    procs = [start_instance(serve_process, port) for port in ports]
    front = free_port()
    servers = "\n".join(f"    server k{n} 127.0.0.1:{port}" for n, port in enumerate(ports))
    config = tmp_path / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=front, servers=servers))
    with running([HAPROXY, "-db", "-f", str(config)], tmp_path / "haproxy.log", front):
        yield front, ports, procs


def test_each_instance_restarted_under_load_loses_nothing(
    serve_process: Spawn, three_behind_haproxy: tuple[int, list[int], list[ServeProcess]]
) -> None:
    front, ports, procs = three_behind_haproxy
    first_pids = {proc.proc.pid for proc in procs}
    with KeepAliveLoad(f"127.0.0.1:{front}", connections=50, limit=90) as load:
        assert wait_until(lambda: set(load.result.by_pid) == first_pids, 10)  # all three serve
        for n, port in enumerate(ports):
            old = procs[n]
            old.signal(signal.SIGTERM)
            assert old.wait(15) == 0, old.stderr[-2000:]
            procs[n] = start_instance(serve_process, port)
            new_pid = procs[n].proc.pid
            # back in HAProxy's rotation (two good health checks) before the next goes
            assert wait_until(lambda: load.result.by_pid[new_pid] > 20, 15)  # noqa: B023
        time.sleep(1)
    result = load.result
    assert result.failures == [], (len(result.failures), result.failures[:5])
    assert result.ok > 500, result.ok
    assert len(result.by_pid) == 6  # three first instances, three that replaced them
