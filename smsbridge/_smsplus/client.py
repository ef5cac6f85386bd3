"""The SMSPlus client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Iterable, Sequence
from typing import Unpack

from .._client import GatewayClient
from .._core.client import ClientOptions, SendOptions
from .._core.errors import InvalidInputError, SmsBridgeError
from .._core.gateway import Message, check_sender
from .._core.models import Report
from .._core.phones import PhoneRules
from .._core.recipients import Unpacker, phone_param_pairs
from .adapter import DEFAULT_BATCH, SmsPlusGateway, SmsPlusJob, Template
from .spec import SPEC

__all__ = ["SmsPlus"]

log = logging.getLogger("smsbridge")

Params = Sequence[str | int] | str
Recipients = Iterable[tuple[str | int, Params]] | AsyncIterable[tuple[str | int, Params]]


class SmsPlus(GatewayClient[SmsPlusJob]):
    """Client for SMSPlus (Azerbaijan), ``https://smsplus.az``: approved templates only.

    ::

        async with SmsPlus(token=...) as sms:
            report = await sms.send_template(
                template_id=3, sender="Shop", to=[("994501234567", ("Aysel", "A-1001")), ...]
            )

    SMSPlus documents no rate limit; the default 9 requests/s of the other gateways applies
    (``rate=`` to change it). It returns no message ids and has no status call.

    Args:
        token: the bearer token; default ``SMSBRIDGE_SMSPLUS_TOKEN``.
        batch_size: numbers per request (the gateway documents no limit; default 100).
        phones: number rules (default: Azerbaijani numbers only, ``994XXXXXXXXX``).
        **options: see :class:`ClientOptions`.
    """

    spec = SPEC

    def __init__(
        self,
        token: str | None = None,
        *,
        batch_size: int = DEFAULT_BATCH,
        phones: PhoneRules | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        self._batch_size = batch_size
        self._phones = phones
        self._templates: dict[int, Template] = {}
        super().__init__({"token": token}, options)
        self.gateway: SmsPlusGateway = self._gateway  # type: ignore[assignment]

    def _adapter(self, credentials: dict[str, str]) -> SmsPlusGateway:
        return SmsPlusGateway(
            credentials["token"], batch_size=self._batch_size, phones=self._phones
        )

    async def _prepare(self, message: Message, options: SendOptions) -> tuple[SmsPlusJob, Unpacker]:
        if message.template is None:
            raise InvalidInputError("SMSPlus sends approved templates: give a template id")
        return await self._job(message.template, message.sender, None), phone_param_pairs

    async def _job(self, template_id: int, sender: str, template: Template | None) -> SmsPlusJob:
        if not isinstance(template_id, int) or isinstance(template_id, bool) or template_id < 1:
            raise InvalidInputError("template_id must be a positive integer")
        sender = check_sender(sender)
        if template is None:
            template = await self._template(template_id)
        return SmsPlusJob(sender=sender, template_id=template_id, template=template)

    async def templates(self, ids: Iterable[int] | None = None) -> list[Template]:
        """Approved templates: all of them, or those with these ids."""
        wanted = None if ids is None else list(ids)
        found = await self._call(self.gateway.build_templates(wanted), self.gateway.parse_templates)
        self._templates.update((t.id, t) for t in found)
        return found

    async def _template(self, template_id: int) -> Template | None:
        """The template, from this client's cache or the gateway; ``None`` if it cannot say."""
        if template_id not in self._templates:
            try:
                await self.templates([template_id])
            except SmsBridgeError as e:
                log.warning("smsplus: template %d not checked: %s", template_id, e)
                return None
            if template_id not in self._templates:
                raise InvalidInputError(
                    f"template {template_id} is not among the account's approved templates"
                )
        return self._templates[template_id]

    async def send_template(
        self,
        template_id: int,
        *,
        sender: str,
        to: Recipients,
        template: Template | None = None,
        **options: Unpack[SendOptions],
    ) -> Report:
        """Send an approved template to ``(phone, parameters)`` pairs.

        Parameters are up to three strings per recipient. The template is looked up once per
        client (or pass ``template=``) so that recipients with the wrong number of parameters
        or a rendered text over 160 characters are rejected before any request; when the
        gateway cannot list it, the send goes ahead unchecked.

        Args:
            template_id: the approved template.
            sender: an approved sender name.
            to: ``(phone, params)`` pairs, any iterable or async iterable; ``params`` is a
                sequence of up to three strings, or one string.
            template: the template, to skip the lookup.
            **options: see :class:`SendOptions`.
        """
        job = await self._job(template_id, sender, template)
        return await self._run_send(job, to, phone_param_pairs, options)
