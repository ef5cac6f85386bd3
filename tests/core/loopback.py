"""A raw HTTP/1.1 server on loopback whose answers a test writes byte by byte."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import zlib
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


def frame(
    body: bytes,
    framing: str = "length",
    *,
    status: str = "200 OK",
    sizes: list[int] | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> bytes:
    """An answer's bytes, its body framed one of the ways HTTP/1.1 frames one: ``length``,
    ``chunked`` (in chunks of ``sizes``, then the rest; with an extension and a trailer),
    ``close``, or coded ``gzip`` or ``deflate`` with a length."""
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in extra or []
    )
    if framing == "length":
        return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
    if framing == "close":
        return f"{head}Connection: close\r\n\r\n".encode() + body
    if framing in ("gzip", "deflate"):
        packed = gzip.compress(body) if framing == "gzip" else zlib.compress(body)
        coded = f"Content-Encoding: {framing}\r\ncontent-length: {len(packed)}\r\n\r\n"
        return (head + coded).encode() + packed
    assert framing == "chunked"
    chunks, at = [], 0
    for size in sizes or [7] * (len(body) // 7 + 1):
        if at >= len(body):
            break
        part = body[at : at + size]
        chunks.append(b"%X;ext=1\r\n%s\r\n" % (len(part), part))
        at += len(part)
    if at < len(body):
        chunks.append(b"%x\r\n%s\r\n" % (len(body) - at, body[at:]))
    trailer = b"0\r\nX-Trailer: yes\r\n\r\n"
    return f"{head}Transfer-Encoding: chunked\r\n\r\n".encode() + b"".join(chunks) + trailer


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
