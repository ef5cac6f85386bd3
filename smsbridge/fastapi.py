"""FastAPI integration (``smsbridge[fastapi]``): one client per app, opened and closed by the
app's lifespan; a dependency that hands it to endpoints; and a router for Webcom's
delivery-report webhook.

::

    bridge = SmsBridge(lambda: Webcom())          # credentials from SMSBRIDGE_WEBCOM_*
    app = FastAPI(lifespan=bridge.lifespan)

    @app.post("/notify")
    async def notify(phone: str, sms: Webcom = Depends(bridge.client)) -> dict[str, int]:
        report = await sms.send("Your order shipped", to=[phone], sender="Shop")
        return {"accepted": report.accepted}

    app.include_router(webcom_report_router(store, secret=os.environ["REPORTS_SECRET"]))
"""

from __future__ import annotations

import hmac
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, Literal, TypeVar

from ._core.client import Client
from ._core.errors import ConfigurationError
from ._reports import ReportReceiver, Store
from ._webcom.reports import MAX_REPORT_BYTES

try:
    from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
    from starlette.requests import ClientDisconnect
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("smsbridge.fastapi needs: pip install 'smsbridge[fastapi]'") from e

__all__ = ["SmsBridge", "webcom_report_router"]

C = TypeVar("C", bound=Client[Any])


class SmsBridge(Generic[C]):
    """Owns one client for the app's life.

    Args:
        factory: builds the client (``lambda: SmsClub()``...); called once at start-up.
    """

    def __init__(self, factory: Callable[[], C]) -> None:
        self._factory = factory
        self._open: dict[Any, C] = {}  # by app: one bridge may serve several apps

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Open the app's client at start-up and close it at shutdown
        (``FastAPI(lifespan=...)``, or nest it in the app's own lifespan)."""
        client = self._factory()
        async with client:
            self._open[app] = client
            try:
                yield
            finally:
                del self._open[app]

    def client(self, request: Request) -> C:
        """The open client of the request's app, as a dependency: ``sms: SmsClub =
        Depends(bridge.client)`` (a sub-application mounted in the app, whose lifespan does
        not run, has the app's, when it is the only one open)."""
        client = self._open.get(request.app)
        if client is None and len(self._open) == 1:
            client = next(iter(self._open.values()))
        if client is None:
            raise ConfigurationError(
                "the smsbridge client is not open: pass lifespan=bridge.lifespan to FastAPI"
            )
        return client


_PATH_SAFE = re.compile(r"[A-Za-z0-9._~-]+")
_ROUTE = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+")  # segments of a path, none empty
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a header's name (RFC 9110)
_LENGTH = re.compile(r"[0-9]{1,15}")  # a Content-Length read as a number (ASCII digits)


def webcom_report_router(
    store: Store,
    *,
    secret: str,
    via: Literal["path", "header"] = "path",
    path: str = "/webcom/reports",
    header: str = "X-Reports-Secret",
    max_bytes: int = MAX_REPORT_BYTES,
    remember: int = 100_000,
) -> APIRouter:
    """A router receiving Webcom's delivery reports.

    Webcom signs nothing, so the URL registered with it carries a shared secret: as the last
    path segment (``via="path"``: register ``https://you/webcom/reports/<secret>``) or in a
    header your proxy adds (``via="header"``). A wrong secret gets 404. Bodies over
    ``max_bytes`` get 413, unreadable ones 400. ``store`` receives the reports not seen before
    (the last ``remember`` are kept in memory) and returns the ids it stored; those and the
    repeats are acknowledged, so the gateway stops re-sending them.

    Args:
        store: ``async (reports) -> stored ids``, or a plain function (a Django ORM write),
            run in a worker thread.
        secret: the shared secret (at least 16 characters).
        path: where reports are posted: ``/``-separated segments, none empty.
        header: the header that carries the secret with ``via="header"``.
    """
    if not isinstance(path, str) or not _ROUTE.fullmatch(path):
        raise ConfigurationError(
            f"path is where reports are posted, as /one/or/more/segments: got {path!r}"
        )
    if not isinstance(header, str) or not _TOKEN.fullmatch(header):
        raise ConfigurationError(f"header is an HTTP header's name: got {header!r}")
    if via not in ("path", "header"):
        raise ConfigurationError('via is "path" or "header"')  # not shown: a secret, swapped
    if not isinstance(secret, str) or len(secret) < 16:
        raise ConfigurationError("the report secret must be a str of at least 16 characters")
    if via == "path" and not _PATH_SAFE.fullmatch(secret):
        # a "/" would never match one segment, a "?" or "#" ends the path
        raise ConfigurationError(
            "a report secret in the path holds letters, digits and - . _ ~ only "
            "(secrets.token_urlsafe(32) makes one)"
        )
    if via == "header" and not (
        secret.isascii() and secret.isprintable() and secret == secret.strip()
    ):
        raise ConfigurationError(
            "a report secret in a header is printable ASCII without surrounding spaces"
        )
    router = APIRouter()
    receiver = ReportReceiver(store, max_bytes=max_bytes, remember=remember)

    async def receive(request: Request) -> Response:
        declared = request.headers.get("content-length")
        try:
            status, body = await receiver.receive(
                request.stream(),
                int(declared) if declared and _LENGTH.fullmatch(declared) else None,
            )
        except ClientDisconnect:  # gone before its body ended: nothing was stored
            return Response(status_code=400)
        if status != 200:
            raise HTTPException(status, body.decode())
        return Response(body, media_type="application/json")

    if via == "path":

        @router.post(path + "/{token}", include_in_schema=False)
        async def by_path(token: str, request: Request) -> Response:
            if not hmac.compare_digest(token.encode(), secret.encode()):
                raise HTTPException(404)
            return await receive(request)

    else:

        @router.post(path, include_in_schema=False)
        async def by_header(request: Request) -> Response:
            given = request.headers.get(header, "")
            if not hmac.compare_digest(given.encode(), secret.encode()):
                raise HTTPException(404)
            return await receive(request)

    return router
