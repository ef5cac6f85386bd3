"""What watching a send costs: client CPU per request with nothing listening (the default,
logging at WARNING), with an ``on_event`` hook that does nothing, with the DEBUG request log
going to a null handler, and with ``smsbridge.otel`` on the OpenTelemetry API alone (no SDK:
no-op providers) and on the SDK (spans and metrics recorded in memory). The gateway is an
in-process ``MockTransport`` answering at once, so the figure is the client's own work; the
variants run interleaved, each taking each place in the order in turn, after a warm-up send,
and the median of the rounds is reported.

    .venv/bin/python benchmarks/observability.py [--recipients 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from smsbridge import Event, HttpRequest, HttpResponse, MockTransport, SmsClub

from _common import TOKEN, median, numbers


def accept(request: HttpRequest) -> HttpResponse:
    phones = json.loads(request.body)["phone"]
    info = {f"id-{p}": p for p in phones}
    return HttpResponse(200, json.dumps({"success_request": {"info": info}}).encode())


def _nothing(event: Event) -> None:
    pass


def _otel_api() -> Any:
    from smsbridge.otel import OpenTelemetry

    return OpenTelemetry()  # the global providers: no SDK installed as global, so no-ops


def _otel_sdk() -> Any:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from smsbridge.otel import OpenTelemetry

    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    return OpenTelemetry(tracing, MeterProvider(metric_readers=[InMemoryMetricReader()]))


VARIANTS: dict[str, tuple[Callable[[], Any], int]] = {
    "nothing listens (WARNING)": (lambda: None, logging.WARNING),
    "on_event hook, empty": (lambda: _nothing, logging.WARNING),
    "DEBUG log to a null handler": (lambda: None, logging.DEBUG),
    "OpenTelemetry API, no SDK": (_otel_api, logging.WARNING),
    "OpenTelemetry SDK, in memory": (_otel_sdk, logging.WARNING),
}


async def once(recipients: int, hook: Any) -> float:
    """CPU µs per request of one send."""
    options: dict[str, Any] = {"rate": 1_000_000, "window_ttl": 0}
    if hook is not None:
        options["on_event"] = hook
    async with SmsClub(TOKEN, transport=MockTransport(accept), **options) as sms:
        started = time.process_time()
        report = await sms.send("Sale today", to=numbers(recipients), sender="Shop", keep="none")
        spent = time.process_time() - started
    assert report.accepted == recipients
    return spent / report.requests * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logger = logging.getLogger("smsbridge")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    figures: dict[str, list[float]] = {name: [] for name in VARIANTS}
    await once(args.recipients, None)  # warm-up: imports, caches, the allocator
    names = list(VARIANTS)
    for round_ in range(args.rounds):
        shift = round_ % len(names)  # each variant takes each place in the order in turn
        for name in names[shift:] + names[:shift]:
            make, level = VARIANTS[name]
            logger.setLevel(level)
            figures[name].append(await once(args.recipients, make()))
    base = median(figures["nothing listens (WARNING)"])
    print(f"{args.recipients:,} recipients, 100 per request, median of {args.rounds} rounds\n")
    print("| listening | CPU µs / request | vs nothing |")
    print("| --- | ---: | ---: |")
    for name, values in figures.items():
        value = median(values)
        print(f"| {name} | {value:.0f} | {value / base:.2f}× |")


if __name__ == "__main__":
    asyncio.run(main())
