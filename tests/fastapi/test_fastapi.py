"""FastAPI: one client per app through the lifespan, the dependency, the Webcom report router
(secret, size limit, garbage, repeats), with FastAPI's test client and once under uvicorn."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections.abc import AsyncIterator, MutableMapping, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import anyio
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from smsbridge import ConfigurationError, DeliveryReport, SmsClub
from smsbridge.fastapi import SmsBridge, webcom_report_router
from smsbridge.testing import FakeProcess, FakeWebcom

from ..conftest import free_port
from ..helpers import TOKEN, clean_env

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_app.py"
SECRET = "reports-secret-0123456789"


def load_example() -> ModuleType:
    """A fresh import of examples/fastapi_app.py (it reads the environment at import)."""
    spec = importlib.util.spec_from_file_location("fastapi_app_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def webcom() -> AsyncIterator[FakeProcess]:
    """A fake Webcom in its own process."""
    async with FakeProcess("webcom", "--token", TOKEN, "--rate-limit", "none") as fake:
        yield fake


@pytest.fixture
def example_env(webcom: FakeProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example app pointed at the fake, with a report secret."""
    monkeypatch.setenv("SMSBRIDGE_WEBCOM_TOKEN", TOKEN)
    monkeypatch.setenv("SMSBRIDGE_WEBCOM_URL", webcom.url)
    monkeypatch.setenv("REPORTS_SECRET", SECRET)


async def test_example_app_sends_and_receives_reports(
    example_env: None, webcom: FakeProcess
) -> None:
    """/notify sends through the app's one client; reports come back through the router."""
    app = load_example()

    def exercise() -> None:
        with TestClient(app.app) as client:
            sent = client.post(
                "/notify", json={"text": "Your order shipped", "phones": ["79161234567", "x"]}
            )
            assert sent.status_code == 200
            body = sent.json()
            assert (body["accepted"], body["rejected"]) == (1, 1)
            message_id = body["message_ids"][0]
            report = [
                {"id_sms": int(message_id), "time": "2026-11-22 12:00:00", "state": "deliver"}
            ]
            ack = client.post("/webcom/reports", json=report, headers={"X-Reports-Secret": SECRET})
            assert ack.json() == [{"id_sms": int(message_id)}]
            assert client.get(f"/delivery/{message_id}").json()["state"] == "DELIVRD"
            wrong = {"X-Reports-Secret": "wrong-secret-0000000"}
            assert client.post("/webcom/reports", json=report, headers=wrong).status_code == 404
            assert client.post("/webcom/reports", json=report).status_code == 404
            assert client.post(f"/webcom/reports/{SECRET}", json=report).status_code == 404

    await anyio.to_thread.run_sync(exercise)
    record = await webcom.record()
    assert [m.phone for m in record.sent] == ["79161234567"]


def test_router_limits_garbage_and_repeats() -> None:
    """413 over the size limit, 400 for garbage and for deeply nested JSON, repeats
    acknowledged without storing twice, and what the store did not keep is not
    acknowledged."""
    calls: list[list[str]] = []

    async def store(reports: Sequence[DeliveryReport]) -> list[str]:
        calls.append([r.message_id for r in reports])
        return [r.message_id for r in reports if r.message_id != "13"]

    app = FastAPI()
    app.include_router(webcom_report_router(store, secret=SECRET, max_bytes=300))
    app.include_router(webcom_report_router(store, secret=SECRET, via="header", path="/by-header"))
    report = [
        {"id_sms": 11, "time": "", "state": "deliver"},
        {"id_sms": 12, "time": "", "state": "expired"},
        {"id_sms": 13, "time": "", "state": "deliver"},
    ]
    with TestClient(app) as client:
        url = f"/webcom/reports/{SECRET}"
        assert client.post(url, content=b"[" + b'{"id_sms":1},' * 40 + b"{}]").status_code == 413
        assert client.post(url, content=b"<html>").status_code == 400
        first = client.post(url, json=report).json()
        assert first == [{"id_sms": 11}, {"id_sms": 12}]  # 13 was not stored: not acknowledged
        again = client.post(url, json=report).json()
        assert sorted(a["id_sms"] for a in again) == [11, 12]  # 13 failed again
        assert calls == [["11", "12", "13"], ["13"]]  # the repeats did not reach the store
        by_header = client.post("/by-header", json=report[:1], headers={"X-Reports-Secret": SECRET})
        assert by_header.json() == [{"id_sms": 11}]
        assert client.post("/by-header", json=report[:1]).status_code == 404
        nested = b"[" * 100_000 + b"]" * 100_000  # deeper than any decoder goes
        headers = {"X-Reports-Secret": SECRET}
        assert client.post("/by-header", content=nested, headers=headers).status_code == 400
    with pytest.raises(ConfigurationError):
        webcom_report_router(store, secret="short")


def test_router_settings_and_what_store_returns_are_checked() -> None:
    """Settings a router could not work with are refused when it is made; a store that
    returns numbers has them acknowledged as their digits, one that returns no ids (None)
    gets a typed error and nothing acknowledged (the gateway sends again). A Content-Length
    that is no ASCII number is read as none, not a 500."""

    async def store(reports: Sequence[DeliveryReport]) -> Any:
        return answers.pop(0)

    for bad, says in (
        ({"remember": -1}, "remember"),
        ({"max_bytes": "x"}, "max_bytes"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"max_bytes": True}, "max_bytes"),
        ({"path": "webcom/reports"}, "path"),  # each a router that answered every report 404
        ({"path": "/webcom/reports/"}, "path"),
        ({"path": "/webcom//reports"}, "path"),
        ({"path": "/webcom/{id}"}, "path"),
        ({"header": ""}, "header"),
        ({"via": "header", "header": "X Reports Secret"}, "header"),
    ):
        with pytest.raises(ConfigurationError, match=says):
            webcom_report_router(store, secret=SECRET, **bad)
    answers: list[Any] = [[11], None, ["11"]]
    app = FastAPI()
    app.include_router(webcom_report_router(store, secret=SECRET))
    report = [{"id_sms": 11, "time": "", "state": "deliver"}]
    with TestClient(app, raise_server_exceptions=False) as client:
        url = f"/webcom/reports/{SECRET}"
        assert client.post(url, json=report).json() == [{"id_sms": 11}]
        other = [{"id_sms": 12, "time": "", "state": "deliver"}]
        assert client.post(url, json=other).status_code == 500  # None: nothing acknowledged
    body = json.dumps(report).encode()
    answers[:] = [["11"], ["11"]]
    for length in ("²".encode(), b"9" * 5000):  # servers other than uvicorn may pass them
        assert anyio.run(_raw_post, app, f"/webcom/reports/{SECRET}", length, body) == 200


async def _raw_post(
    app: FastAPI, path: str, length: bytes, body: bytes, *, cut: bool = False
) -> int:
    """A POST handed to the app as an ASGI server would, its Content-Length as given;
    ``cut``: the body's sender gone after this much of it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", length), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": cut}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


@pytest.mark.parametrize(
    ("secret", "via", "says"),
    [
        ("reports/secret-0123456789", "path", "letters, digits"),  # never one path segment
        ("reports-secret-01234567?8", "path", "letters, digits"),
        ("reports-secret-0123456789", "paht", 'via is "path" or "header"'),
        ("header-mode-please-0", "SUPERSECRETVALUE_123456", r'or "header"$'),  # not shown
        ("reports-secret-Ж123456789", "header", "printable ASCII"),
        (" reports-secret-0123456789", "header", "printable ASCII"),
        (12345678901234567890, "path", "a str"),
    ],
)
def test_a_report_secret_no_request_could_match_is_refused(
    secret: Any, via: Any, says: str
) -> None:
    """A secret that would never match what the gateway sends (a "/" in a path segment, a
    letter no header carries as given) or a misspelt ``via``, once silently a router that
    answered every report 404, is refused when the router is made."""

    async def store(reports: Any) -> list[Any]:
        return []

    with pytest.raises(ConfigurationError, match=says):
        webcom_report_router(store, secret=secret, via=via)


def test_a_plain_store_runs_in_a_worker_thread_and_stores_each_report_once() -> None:
    """A store that is no async function (a Django ORM write) is run in a worker thread,
    not on the event loop; its reports are acknowledged, and the gateway's repeat is not
    stored again (it was called, then its result awaited: a 500 after each store, and the
    same report stored on every retry)."""
    stored: list[tuple[str, str]] = []

    def store(reports: Sequence[DeliveryReport]) -> list[str]:
        stored.extend((r.message_id, threading.current_thread().name) for r in reports)
        return [r.message_id for r in reports]

    app = FastAPI()
    app.include_router(webcom_report_router(store, secret=SECRET))
    report = [{"id_sms": 11, "time": "", "state": "deliver"}]
    with TestClient(app) as client:
        answers = [client.post(f"/webcom/reports/{SECRET}", json=report) for _ in range(3)]
    assert [(a.status_code, a.json()) for a in answers] == [(200, [{"id_sms": 11}])] * 3
    assert [message_id for message_id, _ in stored] == ["11"]
    assert stored[0][1] != threading.main_thread().name


def test_a_sender_gone_before_its_body_ends_stores_nothing_and_raises_nothing() -> None:
    """The gateway's connection dropped mid-body: nothing stored, nothing raised out of the
    app (it was an ASGI error with a ClientDisconnect traceback in the server's log)."""
    calls: list[Any] = []

    async def store(reports: Sequence[DeliveryReport]) -> list[str]:
        calls.append(reports)
        return []

    app = FastAPI()
    app.include_router(webcom_report_router(store, secret=SECRET))
    path, body = f"/webcom/reports/{SECRET}", b'[{"id_sms": 11, "st'
    assert anyio.run(partial(_raw_post, app, path, b"500", body, cut=True)) == 400
    assert calls == []


def test_one_bridge_serving_two_apps_gives_each_app_its_own_client() -> None:
    """Two apps with one bridge's lifespan, the second stopped first: each request of an app
    has that app's client, open while the app runs (the first app's endpoints failed, the
    one slot emptied by the other's shutdown; then were given the other app's client, closed
    under them as that app stopped)."""
    bridge: SmsBridge[SmsClub] = SmsBridge(lambda: SmsClub("t"))
    apps = [FastAPI(lifespan=bridge.lifespan), FastAPI(lifespan=bridge.lifespan)]
    given: dict[int, list[SmsClub]] = {0: [], 1: []}
    for n, app in enumerate(apps):

        @app.get("/")
        async def index(
            sms: SmsClub = Depends(bridge.client),  # noqa: B008
            n: int = n,
        ) -> bool:
            given[n].append(sms)
            return sms.is_open

    with TestClient(apps[0]) as first:
        assert first.get("/").json() is True
        with TestClient(apps[1]) as second:
            assert second.get("/").json() is True
            assert first.get("/").json() is True
        assert first.get("/").json() is True
    assert len(set(map(id, given[0]))) == 1 and given[0][0] is not given[1][0]


def test_dependency_needs_the_lifespan() -> None:
    """Using the client without the lifespan says what is missing."""
    bridge: SmsBridge[SmsClub] = SmsBridge(lambda: SmsClub("t"))
    app = FastAPI()

    @app.get("/")
    async def index(sms: SmsClub = Depends(bridge.client)) -> str:  # noqa: B008
        return repr(sms)

    with (
        pytest.raises(ConfigurationError, match=r"lifespan=bridge\.lifespan"),
        TestClient(app) as client,
    ):
        client.get("/")


async def test_under_uvicorn_on_loopback(webcom: FakeProcess) -> None:
    """The example app served by uvicorn: a send, then the fake gateway's webhook delivers
    reports until acknowledged."""
    port = free_port()
    env = clean_env(
        SMSBRIDGE_WEBCOM_TOKEN=TOKEN, SMSBRIDGE_WEBCOM_URL=webcom.url, REPORTS_SECRET=SECRET
    )
    server = await anyio.open_process(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(EXAMPLE.parent),
            "fastapi_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"{base}/delivery/0") as probe:
                        if probe.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await anyio.sleep(0.1)
            async with session.post(
                f"{base}/notify", json={"text": "Hi", "phones": ["79161234567", "79161234568"]}
            ) as response:
                sent = await response.json()
            assert sent["accepted"] == 2
            async with FakeWebcom(tokens=[TOKEN]) as emitter:
                posts = await emitter.post_reports(
                    f"{base}/webcom/reports",
                    {int(i): "deliver" for i in sent["message_ids"]},
                    headers={"X-Reports-Secret": SECRET},
                )
            assert [len(p) for p in posts] == [2]
            async with session.get(f"{base}/delivery/{sent['message_ids'][0]}") as response:
                assert json.loads(await response.text())["state"] == "DELIVRD"
    finally:
        server.terminate()
        await server.wait()
        await server.aclose()


def test_the_example_does_not_start_without_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """No known default secret to fall back on: without REPORTS_SECRET the import fails and
    says what to set."""
    monkeypatch.delenv("REPORTS_SECRET", raising=False)
    monkeypatch.setenv("SMSBRIDGE_WEBCOM_TOKEN", TOKEN)
    with pytest.raises(RuntimeError, match="set REPORTS_SECRET"):
        load_example()
