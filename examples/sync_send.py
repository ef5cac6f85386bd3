"""A Celery-style task sending through the blocking client, ``smsbridge.sync``.

``notify`` is a plain function: decorate it with ``@app.task`` in a Celery project, or call it
from a Django view. The client is made once, at import, and shared by every call and thread of
the worker process; it opens at its first call, so its token is read in the process that
sends (a prefork worker's child), and it is closed when the process exits.

With SMSBRIDGE_SMSCLUB_TOKEN (and optionally SMSBRIDGE_SMSCLUB_URL) set, it talks to that
gateway; without, it starts the bundled fake SMS Club on loopback.

    .venv/bin/python examples/sync_send.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from smsbridge import Counts
from smsbridge.sync import SmsClub
from smsbridge.testing import FakeSmsClub

sms = SmsClub()  # token and URL from SMSBRIDGE_SMSCLUB_TOKEN / _URL, read at the first call


def notify(phones: list[str], text: str) -> Counts:
    """The task: send ``text`` to ``phones`` and return what happened, as counts."""
    return sms.send(text, to=phones, sender="Shop").counts()


@contextlib.contextmanager
def gateway() -> Iterator[None]:
    """The real gateway when configured, else the fake one, served from a thread."""
    if os.environ.get("SMSBRIDGE_SMSCLUB_TOKEN"):
        yield
        return
    fake = FakeSmsClub(tokens=["example-token"])
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result()
    os.environ["SMSBRIDGE_SMSCLUB_TOKEN"] = "example-token"
    os.environ["SMSBRIDGE_SMSCLUB_URL"] = fake.url
    try:
        yield
    finally:
        asyncio.run_coroutine_threadsafe(fake.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def main() -> None:
    text = "Your order has shipped"
    with gateway():
        print(notify(["+380 50 123 45 67", "0501234568", "050-12"], text))
        print(notify(["0501234567"], text))  # the same text to the same number: suppressed
        batches = [[f"3806712345{i}{j}" for j in range(10)] for i in range(4)]
        with ThreadPoolExecutor(max_workers=4) as pool:  # as a threaded worker would call it
            done = list(pool.map(lambda phones: notify(phones, text), batches))
        print(f"4 threads at once: {sum(c.accepted for c in done)} accepted")


if __name__ == "__main__":
    main()
