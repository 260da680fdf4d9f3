"""What the toys heard lately, each hearing for one question: how the chat endpoint tells
which toy asks.

FoloToy's server asks with the child's words only, and the bridge's event saying which toy
heard them may reach Home Assistant a moment before the question or a moment after. Two toys
may hear the same words within a minute ("turn on the light" in the bedroom, then in the
kitchen): were a hearing free to answer any number of questions, the kitchen's question,
come before the kitchen's event, would take the bedroom's hearing. So a hearing answers one
question at most: a question takes the newest hearing of its words that no question has
taken, or waits for one; a hearing that comes while questions wait for its words goes to
the one that has waited longest.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from contextlib import suppress
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)

# A question is matched with what a toy heard this recently.
HEARD_WITHIN = 60
# Hearings kept at most (the oldest go first): toys hear a few sentences a minute, and a
# flood of events on the broker must not grow this.
MAX_KEPT = 1000
_NOT_WORDS = re.compile(r"\W+")


def words(text: str) -> str:
    """Words only, without case: how a question's text is compared with what a toy heard."""
    return _NOT_WORDS.sub(" ", text.casefold()).strip()


@dataclass
class Hearing:
    node: str
    words: str
    at: float  # the loop's clock
    taken: bool = False


def _no_hearing(waiter: asyncio.Future[Hearing | None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Hearings:
    """The toys' hearings of the last minute, and the questions waiting for one."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._recent: deque[Hearing] = deque(maxlen=MAX_KEPT)
        self._waiting: deque[tuple[str, asyncio.Future[Hearing | None]]] = deque()
        # Hearings answered already when they come: a cloud toy's (its question came with them).
        self._claimed: deque[Hearing] = deque(maxlen=MAX_KEPT)

    def claim(self, node: str, text: str) -> None:
        """Toy `node`'s coming hearing of `text` is taken: a cloud toy's question is answered
        without one (cloud_brain.py), and the bridge's event of it is no other question's."""
        self._claimed.append(Hearing(node, words(text), self._loop.time(), taken=True))

    def heard(self, node: str, text: str) -> None:
        """Toy `node` heard `text` (on the event loop)."""
        now = self._loop.time()
        while self._recent and now - self._recent[0].at > HEARD_WITHIN:
            self._recent.popleft()
        hearing = Hearing(node, words(text), now)
        self._recent.append(hearing)
        for claim in self._claimed:
            if (claim.node, claim.words) == (node, hearing.words) and now - claim.at <= HEARD_WITHIN:
                self._claimed.remove(claim)
                hearing.taken = True
                return
        for wanted, waiter in self._waiting:
            if wanted == hearing.words and not waiter.done():
                hearing.taken = True
                waiter.set_result(hearing)
                return

    async def take(self, text: str, wait: float) -> str | None:
        """The node of the toy whose hearing of `text` this question takes, waiting up to
        `wait` seconds for one; None when no toy heard it."""
        wanted = words(text)
        now = self._loop.time()
        for hearing in reversed(self._recent):
            if now - hearing.at > HEARD_WITHIN:
                break
            if not hearing.taken and hearing.words == wanted:
                hearing.taken = True
                return hearing.node
        _LOGGER.debug("No toy has heard a question's words yet: it waits up to %s s", wait)
        waiter: asyncio.Future[Hearing | None] = self._loop.create_future()
        waiting = (wanted, waiter)
        self._waiting.append(waiting)
        # The waiter itself says "none" at the deadline: a timeout cancelling the wait could
        # land just after a hearing was handed over, which would then be lost.
        timer = self._loop.call_later(wait, _no_hearing, waiter)
        try:
            hearing = await waiter
        except asyncio.CancelledError:
            # The question was called off as its hearing came: the hearing is left for another.
            if waiter.done() and not waiter.cancelled() and (handed := waiter.result()) is not None:
                handed.taken = False
            raise
        finally:
            timer.cancel()
            with suppress(ValueError):
                self._waiting.remove(waiting)
        return hearing.node if hearing is not None else None
