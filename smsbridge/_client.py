"""The gateway clients' common base, one floor above the core: the core client, plus the
shared state that ``redis_url`` (or ``SMSBRIDGE_REDIS_URL``) names."""

from __future__ import annotations

from typing import TypeVar

from ._core.client import Client, ClientOptions, check_options, env_or
from ._core.gateway import Job

__all__ = ["GatewayClient"]

J = TypeVar("J", bound=Job)


class GatewayClient(Client[J]):
    """A gateway client as users meet it (see :class:`~smsbridge._core.client.Client`)."""

    def __init__(self, credentials: dict[str, str | None], options: ClientOptions) -> None:
        check_options(self.spec.title, options)
        url = env_or(options.get("redis_url"), "SMSBRIDGE_REDIS_URL")
        if url and options.get("state") is None:
            from .redis import redis_state

            options = {
                **options,
                "state": redis_state(url, outage=options.get("redis_outage", 30.0)),
            }
        super().__init__(credentials, options)
