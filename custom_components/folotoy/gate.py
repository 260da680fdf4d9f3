"""What the toy's brain lets in: its own key, requests of a bounded size, a few at once.

The key is the integration's, not a Home Assistant access token: it sits in FoloToy's
roles.json (often sent over plain HTTP), so whoever reads it may ask the toy's brain, and
nothing else (the rest of Home Assistant's API refuses it). The bounds are checked before
any agent sees a question: Assist's sentence matcher runs in a thread nothing can stop, and a
question of megabytes keeps a core busy for minutes.
"""

from __future__ import annotations

import hmac
import secrets
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import hdrs, web
from homeassistant.config_entries import ConfigEntry

from .const import CONF_BRAIN_KEY

# A request's body: a role's prompt and a long conversation fit many times over.
MAX_BODY = 256 * 1024
MAX_MESSAGES = 200
# The question (the last user message): more than any child says in one go.
MAX_QUESTION = 4000
# Answers running at once for one toy (questions no toy heard count as one toy), and overall.
EACH_TOY = 2
OVERALL = 4


def new_key() -> str:
    """A fresh key for the toy's brain (256 bits, URL-safe: it goes in a JSON file)."""
    return secrets.token_urlsafe(32)


def holds_key(request: web.Request, entry: ConfigEntry | None) -> bool:
    """Whether the request carries the brain's key as its bearer token (compared in
    constant time, so the time taken tells nothing about how much of it was right)."""
    key = entry.data.get(CONF_BRAIN_KEY) if entry is not None else None
    scheme, _, given = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if not key or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), key.encode())


class Refused(Exception):
    """A request the brain does not take, with the HTTP status and why."""

    def __init__(self, status: int, reason: str, code: str) -> None:
        super().__init__(reason)
        self.status, self.code = status, code


async def read_body(request: web.Request) -> bytes:
    """The body, refused (413) as soon as it is larger than MAX_BODY: by its announced
    length before a byte is read, else while it comes."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Refused(413, f"the body ({request.content_length} bytes) is over {MAX_BODY} bytes", "body_too_large")
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if len(body) > MAX_BODY:
            raise Refused(413, f"the body is over {MAX_BODY} bytes", "body_too_large")
    return bytes(body)


class Busy(Exception):
    """No slot is free: the answer is not started."""


class Slots:
    """How many answers run, for each toy and overall. Never waits: a request beyond
    the bounds is refused at once rather than queued behind answers that may take 15 s."""

    def __init__(self, each: int = EACH_TOY, overall: int = OVERALL) -> None:
        self.each, self.overall = each, overall
        self.running: Counter[str | None] = Counter()
        self.total = 0

    @contextmanager
    def overall_slot(self) -> Iterator[None]:
        if self.total >= self.overall:
            raise Busy(f"{self.total} answers are running already (at most {self.overall})")
        self.total += 1
        try:
            yield
        finally:
            self.total -= 1

    @contextmanager
    def toy_slot(self, node: str | None) -> Iterator[None]:
        if self.running[node] >= self.each:
            raise Busy(f"{self.running[node]} answers for this toy are running already (at most {self.each})")
        self.running[node] += 1
        try:
            yield
        finally:
            self.running[node] -= 1
