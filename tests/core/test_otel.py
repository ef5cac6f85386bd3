"""smsbridge.otel: spans and metrics from a send against a fake gateway over loopback, read
from OpenTelemetry's in-memory exporters."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from smsbridge import SmsClub
from smsbridge.otel import OpenTelemetry
from smsbridge.testing import FakeClock, FakeSmsClub

from ..helpers import TOKEN, ua_numbers


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """Each metric's data points as (attributes, value or count)."""
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = point.count  # type: ignore[union-attr]
                    found.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
    return found


async def test_a_send_is_a_span_with_a_child_per_request_and_its_metrics(
    clock: FakeClock,
) -> None:
    """150 numbers, one 429 on the way: a send span with the counts, three request spans
    under it (the 429 one an error), recipients, requests and retries counted."""
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    hook = OpenTelemetry(tracing, MeterProvider(metric_readers=[reader]))
    async with FakeSmsClub(tokens=[TOKEN], rate_limit=None) as fake:
        fake.script(["rate_limited"])
        async with SmsClub(TOKEN, base_url=fake.url, clock=clock, on_event=hook) as sms:
            report = await sms.send("Sale", to=ua_numbers(150), sender="Shop")
    assert (report.accepted, report.requests) == (150, 3)
    finished = spans.get_finished_spans()
    sends = [s for s in finished if s.name == "smsbridge.send"]
    requests = [s for s in finished if s.name == "smsbridge.request"]
    assert len(sends) == 1 and len(requests) == 3
    send = sends[0]
    assert send.attributes is not None
    assert send.attributes["smsbridge.accepted"] == 150
    assert send.attributes["smsbridge.requests"] == 3
    for span in requests:
        assert span.parent is not None and span.parent.span_id == send.context.span_id
        assert span.attributes is not None and span.attributes["url.path"] == "/sms/send"
    statuses = sorted(int(str((s.attributes or {})["http.response.status_code"])) for s in requests)
    assert statuses == [200, 200, 429]
    errors = [s for s in requests if s.status.status_code is StatusCode.ERROR]
    assert len(errors) == 1 and errors[0].attributes["http.response.status_code"] == 429  # type: ignore[index]
    texts = str([dict(s.attributes or {}) for s in finished])
    assert "38050" not in texts and TOKEN not in texts
    points = _points(reader)
    assert points["smsbridge.recipients"] == [
        ({"smsbridge.gateway": "smsclub", "smsbridge.outcome": "accepted"}, 150)
    ]
    by_status = {a["http.response.status_code"]: v for a, v in points["smsbridge.requests"]}
    assert by_status == {"200": 2, "429": 1}
    assert [v for _, v in points["smsbridge.retries"]] == [1]
    assert [v for _, v in points["smsbridge.request.duration"]] == [3]
    assert [v for _, v in points["smsbridge.limiter.wait"]] == [3]
