"""A bounded keep-alive load for the process-manager tests: N connections, each sending
``GET /pid`` one after another over ``http.client`` until a deadline.

Every request written is accounted for: it got a complete 200 (counted per worker pid) or it
failed (the exception is kept).  A connection that fails is replaced by a new one.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    ok: int = 0
    by_pid: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class KeepAliveLoad:
    """``with KeepAliveLoad(where, 50) as load: ...`` runs until the block ends (or ``limit``
    seconds pass), then joins every client thread."""

    def __init__(self, where: str, connections: int, limit: float = 30.0) -> None:
        host, _, port = where.rpartition(":")
        self.host, self.port = host, int(port)
        self.connections = connections
        self.deadline = time.monotonic() + limit
        self.stop = threading.Event()
        self.result = LoadResult()
        self.threads = [
            threading.Thread(target=self._client, name=f"test-load-{n}", daemon=True)
            for n in range(connections)
        ]

    def __enter__(self) -> KeepAliveLoad:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)

    def _client(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            try:
                conn.request("GET", "/pid")
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
            except Exception as exc:  # counted: the test asserts there are none
                with self.result.lock:
                    self.result.failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                continue
            with self.result.lock:
                self.result.ok += 1
                self.result.by_pid[int(body)] += 1
            if response.will_close:
                conn.close()
        conn.close()
