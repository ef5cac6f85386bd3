"""OpenTelemetry for smsbridge (``pip install smsbridge[otel]``): spans and metrics from a
client's events, through the OpenTelemetry API (bring your own SDK and exporters).

```python
from smsbridge import SmsClub
from smsbridge.otel import OpenTelemetry

async with SmsClub(on_event=OpenTelemetry()) as sms: ...
```

Spans: ``smsbridge.send`` for each send, and ``smsbridge.request`` for each request try,
a child of its send's span (a status or balance call has no parent). Metrics:
``smsbridge.recipients`` (by gateway and outcome), ``smsbridge.requests`` (by gateway and
HTTP status, or ``error``), ``smsbridge.retries``, ``smsbridge.request.duration`` and
``smsbridge.limiter.wait`` (seconds). No number, text or credential is an attribute.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, Status, StatusCode

from . import __version__
from ._core.events import (
    Answered,
    Event,
    OutcomeBatch,
    RequestSent,
    RetryScheduled,
    SendFinished,
    SendStarted,
)

__all__ = ["OpenTelemetry"]

_OUTCOMES = ("accepted", "rejected", "suppressed", "failed", "uncertain")


class OpenTelemetry:
    """An ``on_event`` hook that turns a client's events into spans and metrics.

    Args:
        tracer_provider: where spans go; the global one by default.
        meter_provider: where metrics go; the global one by default.
    """

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self._tracer = trace.get_tracer("smsbridge", __version__, tracer_provider)
        meter = metrics.get_meter("smsbridge", __version__, meter_provider)
        self._recipients = meter.create_counter(
            "smsbridge.recipients", unit="{recipient}", description="Recipients by outcome"
        )
        self._requests = meter.create_counter(
            "smsbridge.requests", unit="{request}", description="Request tries by answer"
        )
        self._retries = meter.create_counter(
            "smsbridge.retries", unit="{retry}", description="Request tries repeated"
        )
        self._duration = meter.create_histogram(
            "smsbridge.request.duration", unit="s", description="From writing to the answer"
        )
        self._wait = meter.create_histogram(
            "smsbridge.limiter.wait", unit="s", description="Waiting for a rate slot"
        )
        self._sends: dict[int, Span] = {}

    def __call__(self, event: Event) -> None:
        """Record one event."""
        if isinstance(event, Answered):
            self._answered(event)
        elif isinstance(event, RequestSent):
            self._wait.record(event.waited, {"smsbridge.gateway": event.gateway})
        elif isinstance(event, OutcomeBatch):
            for name in _OUTCOMES:
                count = getattr(event.counts, name)
                if count:
                    self._recipients.add(
                        count, {"smsbridge.gateway": event.gateway, "smsbridge.outcome": name}
                    )
        elif isinstance(event, RetryScheduled):
            self._retries.add(1, {"smsbridge.gateway": event.gateway})
        elif isinstance(event, SendStarted):
            self._sends[event.send] = self._tracer.start_span(
                "smsbridge.send", attributes={"smsbridge.gateway": event.gateway}
            )
        elif isinstance(event, SendFinished):
            self._finished(event)

    def _answered(self, event: Answered) -> None:
        gateway = {"smsbridge.gateway": event.gateway}
        answer = str(event.status) if event.status is not None else "error"
        self._requests.add(1, {**gateway, "http.response.status_code": answer})
        self._duration.record(event.seconds, gateway)
        end = time.time_ns()
        parent = self._sends.get(event.send) if event.send is not None else None
        context = trace.set_span_in_context(parent) if parent is not None else None
        attributes: dict[str, Any] = {
            **gateway,
            "url.path": event.path,
            "smsbridge.recipients": event.recipients,
            "smsbridge.attempt": event.attempt,
        }
        if event.status is not None:
            attributes["http.response.status_code"] = event.status
        span = self._tracer.start_span(
            "smsbridge.request",
            context=context,
            kind=trace.SpanKind.CLIENT,
            attributes=attributes,
            start_time=end - int(event.seconds * 1e9),
        )
        if event.error is not None:
            span.set_status(Status(StatusCode.ERROR, event.error))
        span.end(end_time=end)

    def _finished(self, event: SendFinished) -> None:
        span = self._sends.pop(event.send, None)
        if span is None:
            return
        counts = event.counts
        for name in (*_OUTCOMES, "requests"):
            span.set_attribute(f"smsbridge.{name}", getattr(counts, name))
        span.set_attribute("smsbridge.dry_run", event.dry_run)
        span.set_attribute("smsbridge.stopped", event.stopped)
        if event.error is not None:
            span.set_status(Status(StatusCode.ERROR, event.error))
        span.end()
