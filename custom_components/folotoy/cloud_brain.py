"""A FoloToy cloud toy answered by Home Assistant: each `chat_input` of its channel (cloud.py).

The answer is the toy's brain's (brain.py `toy_answer`, the same code that answers a
self-hosted toy through the chat endpoint): the agent, the toy's conversation, device and
area, the bridge's checks, the safe sentence and the apology. What differs is the channel: a
cloud toy speaks each `chat_output` as it comes, so the answer goes out a sentence at a time,
made speakable and cut when long enough (speech.py); and it has no error, only the final
empty `is_finished`, which it waits for. So whatever happens (the agent fails or is slow, the
bridge does not answer, Home Assistant stops, the answer is called off) the toy gets that
final message within FINISH_WITHIN seconds of the question, after a short apology when it had
heard nothing of an answer yet. An answer slow to start is preceded by a short
acknowledgment, so the child knows the toy heard. While the bridge says the toy is quiet
(its Quiet switch), the toy says nothing and the agent never hears the question.

The bridge learns what the toy heard and said from this integration, on Home Assistant's
broker (relay.py), as a self-hosted toy's server tells it (`<cloud_topic>/event`): its history,
watch words on the child's side, alerts and day are then a cloud toy's too.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections.abc import Callable
from contextlib import aclosing

from homeassistant.core import HomeAssistant

from . import brain, speech
from .cloud import Link, Question
from .const import CONF_ACKNOWLEDGE, CONF_INSTRUCTIONS
from .data import FoloToyConfigEntry, FoloToyData

_LOGGER = logging.getLogger(__name__)

# The toy hears the acknowledgment when nothing of the answer has come this long after the question.
ACK_AFTER = 1.0
# The toy gets its final message at the latest this long after the question. The agent
# has brain.AGENT_TIMEOUT (15 s) and, given up, brain.STOP_TIMEOUT (5 s) to stop before
# the apology; this catches the rest (the bridge's checks piling up, a stop that hangs).
FINISH_WITHIN = 20.0

# The answers running on each channel, ended (apology and final message) before it stops.
_answering: weakref.WeakKeyDictionary[Link, set[asyncio.Task[None]]] = weakref.WeakKeyDictionary()


async def async_end_answers(link: Link) -> None:
    """Ends the answers running on `link` (each toy hears the apology, unless it heard some of
    its answer, and the final message): to be awaited before the channel is stopped, which
    would leave them nothing to say it on."""
    tasks = _answering.pop(link, set())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def toy_node(data: FoloToyData, sn: str) -> str | None:
    """The node of cloud toy `sn` (its device's MQTT identifier, as the bridge makes it);
    None while no bridge has announced itself."""
    return next((bridge.node_of(sn) for bridge in data.discovery.bridges.values()), None)


class QuietScreen(brain.Screen):
    """The bridge's checks of a cloud toy's answer, which also say whether the toy is quiet:
    asked first with nothing to check, so that a quiet toy's agent never starts."""

    quiet: bool | None = None  # not known until the bridge answers

    async def start(self) -> None:
        await self("")

    async def __call__(self, text: str) -> list[str]:
        verdict = await brain.screen(self.data, self.node, text)
        self.quiet = verdict.quiet
        if verdict.line is not None:  # quiet by its daily limit or bedtime: it says the line
            raise brain.Resting(verdict.line)
        if verdict.quiet:
            raise brain.Quiet
        return verdict.phrases


class Voice:
    """What goes to the toy for one question: sentences numbered from 1 (each told to `said`
    with its order once sent), then the final empty message, once, whatever happened."""

    def __init__(self, link: Link, question: Question, said: Callable[[int, str], None]) -> None:
        self._link, self._question, self._said = link, question, said
        self.order = 0
        # Something of the answer was said (the acknowledgment is not): no apology after it.
        self.answered = False
        self.finished = False
        self._lost = False

    def say(self, text: str, answer: bool = True) -> None:
        if self.finished or not self._send(self.order + 1, text, finished=False):
            return
        self.order += 1
        self.answered = self.answered or answer
        self._said(self.order, text)

    def give_up(self, checks: QuietScreen, why: str) -> None:
        """The answer ends here: the apology, unless the toy heard some of it or is quiet."""
        if self.finished:
            return
        apologize = not self.answered and checks.quiet is not True
        _LOGGER.warning(
            "Cloud toy %s's answer ends (%s): %s",
            self._link.toy.sn,
            why,
            "it apologizes" if apologize else "it stops there",
        )
        if apologize:
            self.say(speech.APOLOGY[speech.language(self._question.text)])
        self.finish()

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            self._send(self.order + 1, "", finished=True)

    def _send(self, order: int, text: str, finished: bool) -> bool:
        if self._lost:
            return False
        try:
            self._link.answer(self._question, order, text, finished)
        except ConnectionError as err:
            # Its question is gone with the connection: FoloToy's cloud asks again, or not.
            self._lost = True
            _LOGGER.warning("Cloud toy %s's answer is lost: %s", self._link.toy.sn, err)
            return False
        return True


async def async_answer(hass: HomeAssistant, entry: FoloToyConfigEntry, sn: str, link: Link, question: Question) -> None:
    """Answers `question` of cloud toy `sn` on `link`, the final message within FINISH_WITHIN s."""
    finish_by = hass.loop.time() + FINISH_WITHIN
    data = entry.runtime_data
    node = toy_node(data, sn)
    if node is not None:
        data.toys.hearings.claim(node, question.text)
    # What the toy heard and said, to the bridge (relay.py) as a self-hosted toy's server tells it.
    recording = {"recordingId": question.recording_id} if question.recording_id is not None else {}
    data.relay.event(sn, "recording_transcribed", {**recording, "text": question.text})

    def said(order: int, text: str) -> None:
        data.relay.event(sn, "voice_generated", {**recording, "order": order, "voiceText": text})

    voice = Voice(link, question, said)
    if not question.text:
        _LOGGER.debug("Cloud toy %s asked nothing (msgId %s): only the end is sent", sn, question.msg_id)
        voice.finish()
        return
    # The options' agent (no `model` names one), told the options' instructions as a role's prompt.
    instructions = entry.options.get(CONF_INSTRUCTIONS) or None
    asked = brain.Question(text=question.text, instructions=instructions, model="", stream=True)
    checks = QuietScreen(data, node)
    lines: asyncio.Queue[brain.Said | None] = asyncio.Queue()
    # A background task: Home Assistant stopping cancels it first, while the channel is up.
    making = hass.async_create_background_task(
        _make(hass, entry, asked, node, checks, lines), f"folotoy cloud answer {sn} {question.msg_id}"
    )
    ack_at = hass.loop.time() + ACK_AFTER if entry.options.get(CONF_ACKNOWLEDGE, True) else math.inf
    running = _answering.setdefault(link, set())
    if (this := asyncio.current_task()) is not None:
        running.add(this)
    try:
        await deliver(lines, voice, checks, speech.language(question.text), ack_at, finish_by)
    finally:
        running.discard(this)
        # Given up, the agent stops on its own (brain._agent_text): nothing waits for it.
        making.cancel()


async def _make(
    hass: HomeAssistant,
    entry: FoloToyConfigEntry,
    question: brain.Question,
    node: str | None,
    checks: QuietScreen,
    lines: asyncio.Queue[brain.Said | None],
) -> None:
    """The toy's brain's answer, a line at a time into `lines`; None at its end, however it ends."""
    try:
        async with aclosing(
            brain.toy_answer(hass, entry, question, node, speech.Sentences(), checks, overall=True)
        ) as answer:
            async for line in answer:
                lines.put_nowait(line)
    except brain.Quiet:
        _LOGGER.debug("%s is quiet: it says nothing", node)
    finally:
        lines.put_nowait(None)


async def deliver(
    lines: asyncio.Queue[brain.Said | None],
    voice: Voice,
    checks: QuietScreen,
    language: str,
    ack_at: float,
    finish_by: float,
) -> None:
    """Sends each line as it comes; the acknowledgment at `ack_at` (the loop's time) if nothing
    came by then and the bridge said the toy is not quiet; the apology if the answer is not
    over at `finish_by` or is called off; and the final message, always."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            try:
                async with asyncio.timeout_at(min(ack_at, finish_by)):
                    line = await lines.get()
            except TimeoutError:
                if loop.time() >= finish_by:
                    voice.give_up(checks, f"not over within {FINISH_WITHIN:g} s")
                    return
                ack_at = math.inf
                if checks.quiet is False and voice.order == 0:
                    voice.say(speech.ACKNOWLEDGMENT[language], answer=False)
                continue
            if line is None:
                if not voice.answered and checks.quiet is not True:
                    voice.give_up(checks, "the brain said nothing")  # only a fault gets here
                return
            voice.say(line.text)
    except asyncio.CancelledError:
        voice.give_up(checks, "called off")
        raise
    finally:
        voice.finish()
