"""FoloToy's pairing service: a session, shown as a QR code, that FoloToy's app completes
with the toy's serial number and key.

The service (FoloToy's docs/pair-api-spec.yaml, summed up in the shared notes) hands out a
session that lives 5 minutes; the phone opens its `pair_url` and scans the toy's QR code;
the client polls the session until it is completed (with the toy's serial number and key,
and the broker to use) or expired. Whoever holds the session id can complete it: it is
never logged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from .cloud import PORT, PRODUCTION_HOST, CloudToy, Unreadable, parse_qr

# FoloToy's client polls every 3 s.
POLL_INTERVAL = 3.0
# A request to the service that has not answered by then has failed.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=15)
# A session still pending this long after its expiry (the service's clock may differ from
# Home Assistant's) is taken as expired.
EXPIRY_GRACE = timedelta(seconds=30)


class PairingError(Exception):
    """The pairing service could not be asked, or answered what is not a session."""


@dataclass(frozen=True)
class Session:
    session_id: str
    pair_url: str
    expires_at: datetime | None

    def __repr__(self) -> str:
        # Whoever has the session id can complete it with their own toy.
        return f"Session(expires_at={self.expires_at})"


async def async_new_session(http: aiohttp.ClientSession, service: str) -> Session:
    """A new pairing session (POST /api/pair)."""
    body = await _ask(http, "post", f"{service.rstrip('/')}/api/pair")
    session_id, pair_url = body.get("session_id"), body.get("pair_url")
    if not isinstance(session_id, str) or not session_id or "/" in session_id:
        raise PairingError("the pairing service gave no session id")
    if not isinstance(pair_url, str) or not pair_url.startswith(("https://", "http://")):
        raise PairingError("the pairing service gave no pairing address")
    expires = body.get("expires_at")
    try:
        expires_at = datetime.fromisoformat(expires) if isinstance(expires, str) else None
    except ValueError:
        expires_at = None
    return Session(session_id, pair_url, expires_at)


async def async_wait(http: aiohttp.ClientSession, service: str, session: Session) -> CloudToy | None:
    """Polls `session` until FoloToy's app completed it (the toy, logged in where the
    service says) or it expired (None)."""
    url = f"{service.rstrip('/')}/api/pair/{session.session_id}"
    while True:
        body = await _ask(http, "get", url, missing_ok=True)
        status = body.get("status")
        if status == "completed":
            return _toy(body)
        # Unknown to the service: expired and cleaned up.
        if status in ("expired", None):
            return None
        if status != "pending":
            raise PairingError(f"the pairing service says the session is {str(status)[:40]!r}")
        if (
            session.expires_at is not None
            and datetime.now(session.expires_at.tzinfo) > session.expires_at + EXPIRY_GRACE
        ):
            return None
        await asyncio.sleep(POLL_INTERVAL)


def _toy(body: dict[str, Any]) -> CloudToy:
    sn, key = body.get("toy_sn"), body.get("toy_key")
    if not isinstance(sn, str) or not isinstance(key, str):
        raise PairingError("the pairing service gave no serial number and key")
    try:
        sn, key = parse_qr(f"{sn}&{key}")
    except Unreadable as err:
        raise PairingError(f"the pairing service gave what is not a toy's code: {err}") from None
    host, port = body.get("mqtt_host") or PRODUCTION_HOST, body.get("mqtt_port") or PORT
    if not isinstance(host, str) or not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise PairingError("the pairing service named a broker that is not a host and port")
    return CloudToy(sn=sn, key=key, host=host, port=port)


async def _ask(http: aiohttp.ClientSession, method: str, url: str, missing_ok: bool = False) -> dict[str, Any]:
    try:
        async with http.request(method, url, timeout=REQUEST_TIMEOUT) as response:
            if missing_ok and response.status == 404:
                return {}
            if response.status >= 400:
                raise PairingError(f"the pairing service answered HTTP {response.status}")
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        raise PairingError(f"the pairing service could not be reached: {type(err).__name__}") from None
    if not isinstance(body, dict):
        raise PairingError("the pairing service answered what is not a JSON object")
    return body
