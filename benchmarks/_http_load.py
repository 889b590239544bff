"""A small HTTP/1.1 load generator on asyncio streams, for ``bench_service.py``.

Keep-alive connections, ``GET`` only, ``Content-Length`` bodies: just what the API's read
endpoints need, at a few tens of microseconds of client CPU per request, so on a 2-core
machine the client does not starve the server it measures (httpx costs ~1 ms a request).

- :func:`closed_loop`: N clients, each sends its next request when the last one answered.
- :func:`open_loop`: requests planned at a fixed rate; latency counts from the planned
  send time, so a stalled server is not hidden by a client that waits for it.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Callable, List, Tuple

__all__ = ["closed_loop", "open_loop"]


class _Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def closed_loop(host: str, port: int, make_path: Callable[[random.Random], str], clients: int,
                      seconds: float) -> List[float]:
    """Latencies (s) of ``clients`` concurrent closed-loop clients for ``seconds``."""
    latencies: List[float] = []
    deadline = time.perf_counter() + seconds

    async def client(seed: int) -> None:
        rng, connection = random.Random(seed), _Connection(host, port)
        try:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                status = await connection.get(make_path(rng))
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    raise AssertionError(f"HTTP {status}")
        finally:
            connection.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    return latencies


async def open_loop(host: str, port: int, make_path: Callable[[random.Random], str], rate: float,
                    seconds: float, connections: int = 32) -> Tuple[List[float], float]:
    """Latencies (s) of requests planned every ``1 / rate`` s for ``seconds``, each from its
    planned time, on a pool of keep-alive connections; and the rate achieved (req/s)."""
    latencies: List[float] = []
    idle = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(_Connection(host, port))
    rng = random.Random(3)

    async def one(planned: float, path: str) -> None:
        connection = await idle.get()
        try:
            status = await connection.get(path)
        finally:
            idle.put_nowait(connection)
        latencies.append(time.perf_counter() - planned)
        if status != 200:
            raise AssertionError(f"HTTP {status}")

    tasks = []
    start = time.perf_counter() + 0.1
    for n in range(int(rate * seconds)):
        planned = start + n / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(planned, make_path(rng))))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().close()
    return latencies, len(latencies) / elapsed
