"""One signed POST of a batch to a destination, and what its receiver answered.

Signed per the Standard Webhooks specification with its reference library: ``webhook-id`` is
the batch id, ``webhook-timestamp`` the moment of this attempt, ``webhook-signature`` one
``v1,<base64 HMAC-SHA256>`` per valid secret (during a rotation's grace, the new one and the
previous one, space-separated). Redirects are not followed, the request has a timeout, and no
more than ``response_max_bytes`` of the answer are read.
"""

import asyncio
import base64
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

from profilegate.domain.destinations import refused_address
from profilegate.domain.errors import InvalidInput
from profilegate.service.destinations.rules import DeliveryRules

SECRET_BYTES = 32
USER_AGENT = "profilegate-destinations/1"


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes them: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signed_headers(batch_id: str, body: bytes, valid_secrets: list[str], at: datetime) -> dict[str, str]:
    signatures = " ".join(Webhook(secret).sign(batch_id, at, body) for secret in valid_secrets)
    return {
        "webhook-id": batch_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


async def check_egress(url: str, rules: DeliveryRules, field: str = "input.url") -> None:
    """Raise ``InvalidInput`` when the URL's host does not resolve, or resolves to an address the
    gateway does not send to (unless ``allow_private``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port)
    except OSError as error:
        raise InvalidInput(field, f"the host {host} does not resolve") from error
    if rules.allow_private:
        return
    for *_, address in found:
        refusal = refused_address(str(address[0]))
        if refusal is not None:
            raise InvalidInput(
                field,
                f"{refusal}; the gateway sends only to public addresses "
                "unless PROFILEGATE_DESTINATIONS_ALLOW_PRIVATE is set",
            )


@dataclass(frozen=True)
class Answer:
    """What came of one attempt: the receiver's status code (None: no answer), how long it took,
    what went wrong, and how long it asked to wait (``Retry-After``)."""

    status_code: int | None
    latency_ms: int
    error: str = ""
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


async def post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], rules: DeliveryRules
) -> Answer:
    started = time.monotonic()
    try:
        await check_egress(url, rules, field="url")
    except InvalidInput as refusal:
        return Answer(None, 0, f"refused: {refusal.reason}")
    try:
        async with client.stream(
            "POST", url, content=body, headers=headers, timeout=rules.timeout_seconds
        ) as response:
            await _read_capped(response, rules.response_max_bytes)
    except httpx.TimeoutException:
        return Answer(None, _since(started), f"no answer within {rules.timeout_seconds:g} s")
    except httpx.HTTPError as failure:
        return Answer(None, _since(started), f"{type(failure).__name__}: {failure}".strip(": "))
    problem = "" if 200 <= response.status_code < 300 else _status_error(response)
    retry_after = _retry_after(response.headers.get("retry-after"))
    return Answer(response.status_code, _since(started), problem, retry_after)


async def _read_capped(response: httpx.Response, cap: int) -> None:
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read >= cap:
            return


def _status_error(response: httpx.Response) -> str:
    if response.is_redirect:
        return f"answered {response.status_code} (a redirect, not followed)"
    return f"answered {response.status_code}"


def _retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds, or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def _since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
