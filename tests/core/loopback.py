"""A raw HTTP/1.1 server on loopback whose answers a test writes byte by byte."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class Served:
    """What the server saw: each request's head and body, and how many connections."""

    url: str = ""
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)
    connections: int = 0
    open: int = 0
    most_open: int = 0


Answer = Callable[[Served, asyncio.StreamWriter], Awaitable[bool]]
"""Writes the answer to the request last recorded; returns whether to keep the connection."""


@contextlib.asynccontextmanager
async def raw_server(answer: Answer) -> AsyncIterator[Served]:
    """Serve on 127.0.0.1 until the block ends; each request is read whole (its
    ``Content-Length`` body too) and recorded before ``answer`` is called."""
    served = Served()
    tasks: set[asyncio.Task[None]] = set()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        served.connections += 1
        served.open += 1
        served.most_open = max(served.most_open, served.open)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                served.requests.append((head, await reader.readexactly(length)))
                keep = await answer(served, writer)
                await writer.drain()
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # a client gone, or the server closing: nothing to report
        finally:
            served.open -= 1
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    served.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield served
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
