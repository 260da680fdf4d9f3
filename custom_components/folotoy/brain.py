"""Home Assistant as the toy's brain: an OpenAI-compatible Chat Completions endpoint.

FoloToy's server asks any OpenAI-compatible LLM for a role's answers (`llm_type: openai`,
with `api_base`, `key` and `model` in roles.json) and reads them streamed. Pointed at
`http://<home assistant>:8123/api/folotoy/v1` with the brain's own key (gate.py), a role is
answered by the conversation agent chosen in this integration's options (or the one its
`model` names), with the role's system prompt as extra instructions.

It lives here, on Home Assistant's own HTTP server, because here the agent is called
directly: the toy's device goes with the question (so "turn on the light" means the light in
the toy's room), and each turn shows in Home Assistant's conversation debug view. Which toy
asks is found by its words: the bridge publishes what each toy heard (its Conversation
events) about when FoloToy's server asks for the answer, and each hearing answers one
question (hearings.py).
Before the toy gets an answer, the bridge checks it against the parents' watch words (one
list, one matcher, the same that fire the alerts); an answer holding one is replaced by the
parents' safe sentence. What goes wrong on Home Assistant's side is answered with a short
spoken apology: the toy reads an HTTP error as silence. An answer given up (too slow, cut by a
watch word, its client gone) stops its agent before the toy hears otherwise, so nothing the
child asked for happens after the toy said it would not.

A FoloToy cloud toy's questions are answered by the same code (`toy_answer`, used by
cloud_brain.py): the agent, the toy's conversation, its device, the bridge's checks, the safe
sentence and the apology are one path; only how the answer is cut into what the toy says and
how it reaches the toy differ.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing, nullcontext
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus
from typing import Any, Protocol

from aiohttp import web
from homeassistant.components import conversation
from homeassistant.components.http import KEY_HASS, HomeAssistantView
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import chat_session, intent

from . import gate, payloads, speech
from .const import CONF_AGENT, CONF_BRAIN_KEY, CONF_SAFE_SENTENCE, DEFAULT_AGENT, DOMAIN
from .conversation import Toys
from .data import FoloToyConfigEntry, FoloToyData, loaded_entry
from .devices import toy_device

_LOGGER = logging.getLogger(__name__)

BASE = "/api/folotoy/v1"
# How long the agent may take for a whole answer: FoloToy's server gives up on a silent LLM
# not much later, and a child waits no longer than that either.
AGENT_TIMEOUT = 15
# How long the bridge may take to say whether an answer may be said (it answers in ms).
SCREEN_TIMEOUT = 3
# How long an agent whose answer was given up may take to stop, once told to.
STOP_TIMEOUT = 5
# A request waits this long for a toy to hear its words: FoloToy's server may ask before
# the bridge's event is here.
WAIT_FOR_HEARD = 1.5
# A toy's conversation goes on across turns until it has been quiet this long.
QUIET_GAP = 5 * 60

# Where an answer may be cut into sentences that are checked as they come.
_SENTENCE_END = re.compile(r"[.!?](?=\s)|[。！？\n]")  # noqa: RUF001


class BadRequest(ValueError):
    """A request this endpoint cannot answer, with why."""


@dataclass
class Question:
    """What FoloToy's server asked: the child's words and the role's prompt."""

    text: str
    instructions: str | None
    model: str
    stream: bool
    # Home Assistant's conversation, once the agent has it: the completion's id carries it,
    # so a toy's turns can be told apart (and found in the conversation debug view).
    conversation_id: str | None = None


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


class TooLong(BadRequest):
    """A request over the bounds that keep Home Assistant's work per question small."""


def parse_question(body: Any) -> Question:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        raise BadRequest("messages must be a list of chat messages")
    if len(body["messages"]) > gate.MAX_MESSAGES:
        raise TooLong(f"{len(body['messages'])} messages are over {gate.MAX_MESSAGES}")
    messages = [m for m in body["messages"] if isinstance(m, dict)]
    users = [_content(m) for m in messages if m.get("role") == "user"]
    text = users[-1].strip() if users else ""
    if not text:
        raise BadRequest("there is no user message to answer")
    if len(text) > gate.MAX_QUESTION:
        raise TooLong(f"the question ({len(text)} characters) is over {gate.MAX_QUESTION}")
    system = "\n\n".join(_content(m) for m in messages if m.get("role") in ("system", "developer") and _content(m))
    model = body.get("model")
    return Question(
        text=text,
        instructions=system or None,
        model=model if isinstance(model, str) else "",
        stream=body.get("stream") is True,
    )


@dataclass
class Talk:
    """A toy's conversation with the agent, kept across turns until a quiet gap."""

    conversation_id: str
    last: float
    # A turn still running (the toy asked again meanwhile): the next question starts a
    # conversation of its own rather than wait or fail on a busy one.
    running: bool = False


class Brain:
    """The endpoint's memory, the entry's while it is set up: each toy's conversation, and
    the answers running."""

    def __init__(self) -> None:
        self.talks: dict[str, Talk] = {}
        self.slots = gate.Slots()


async def find_toy(hass: HomeAssistant, toys: Toys, text: str) -> str | None:
    """The node of the toy whose hearing of `text` this question takes (the newest that no
    question has taken), waiting a moment for one; None when no toy heard it (the answer is
    made all the same, without a device)."""
    return await toys.hearings.take(text, WAIT_FOR_HEARD)


def _device_id(hass: HomeAssistant, node: str | None) -> str | None:
    device = toy_device(hass, node) if node is not None else None
    return device.id if device is not None else None


# Home Assistant 2026.x ties a conversation to the user of its first context (and asks for it).
_SESSION_TAKES_CONTEXT = "context" in inspect.signature(chat_session.async_get_chat_session).parameters


def _session(hass: HomeAssistant, conversation_id: str | None, context: Context):
    if _SESSION_TAKES_CONTEXT:
        return chat_session.async_get_chat_session(hass, conversation_id, context=context)
    return chat_session.async_get_chat_session(hass, conversation_id)


def _agent(hass: HomeAssistant, options: dict[str, Any], model: str) -> str:
    """The role's `model` when it names a conversation agent, else the options' choice."""
    if model.startswith("conversation.") and conversation.async_get_agent_info(hass, model) is not None:
        return model
    return options.get(CONF_AGENT) or DEFAULT_AGENT


class Unsayable(Exception):
    """The answer cannot be checked, or the agent failed: the apology is said instead."""


class Resting(Exception):
    """The bridge says the toy's daily limit or bedtime keeps it quiet: the toy says `line`
    (its goodbye or bedtime line) and nothing else."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


class Quiet(Exception):
    """The bridge says the toy's Quiet switch is on: the toy says nothing (a screen of a cloud
    toy's answer raises it; the answer ends there, its agent stopped)."""


def _spoken(result: conversation.ConversationResult) -> str:
    """What the agent answered. Its own "Sorry, I couldn't understand that" is an answer like
    any other; an error outside the intents' scope (what the agent raised, which Home
    Assistant turned into an answer before 2026) is a failure."""
    said = result.response.speech.get("plain", {}).get("speech", "")
    if result.response.error_code == intent.IntentResponseErrorCode.UNKNOWN:
        raise Unsayable(f"the agent failed: {said}")
    return said


async def _agent_text(
    hass: HomeAssistant, brain: Brain, question: Question, agent_id: str, node: str | None
) -> AsyncIterator[str]:
    """The agent's answer as it comes: streamed pieces when the agent streams, else whole.
    Closed or failed before the end, it stops the agent and waits until it has stopped."""
    now = time.monotonic()
    talk = brain.talks.get(node) if node is not None else None
    going_on = talk is not None and not talk.running and now - talk.last < QUIET_GAP
    conversation_id = talk.conversation_id if going_on else None
    if going_on:  # taken now, not when the agent starts: a question meanwhile starts its own
        talk.running = True
    pieces: asyncio.Queue[str | None] = asyncio.Queue()
    role: str | None = None

    @callback
    def delta(chat_log: conversation.ChatLog, delta: dict) -> None:
        nonlocal role
        role = delta.get("role", role)
        if role == "assistant" and isinstance(delta.get("content"), str):
            pieces.put_nowait(delta["content"])

    async def run() -> str:
        # No user: the brain's key is not one. The agent controls what is exposed to Assist.
        context = Context()
        device_id = _device_id(hass, node)
        with _session(hass, conversation_id, context) as session:
            question.conversation_id = session.conversation_id
            talk = Talk(session.conversation_id, time.monotonic(), running=True)
            if node is not None:
                brain.talks[node] = talk
            user_input = conversation.ConversationInput(
                text=question.text,
                context=context,
                conversation_id=session.conversation_id,
                device_id=device_id,
                satellite_id=None,
                language=None,
                agent_id=agent_id,
                extra_system_prompt=question.instructions,
            )
            try:
                with conversation.async_get_chat_log(hass, session, user_input, chat_log_delta_listener=delta):
                    result = await conversation.async_converse(
                        hass,
                        question.text,
                        session.conversation_id,
                        context,
                        agent_id=agent_id,
                        device_id=device_id,
                        extra_system_prompt=question.instructions,
                    )
            finally:
                talk.running, talk.last = False, time.monotonic()
        return _spoken(result)

    @callback
    def done(task: asyncio.Task[str]) -> None:
        pieces.put_nowait(None)
        if not task.cancelled():
            task.exception()  # looked at below, or not needed once the answer was cut short

    task = hass.async_create_task(run(), f"folotoy answer for {node}", eager_start=False)
    task.add_done_callback(done)
    # One deadline for the whole answer, looked at only while waiting for the agent (a
    # timeout around the yields would fire in whatever the caller awaits meanwhile).
    deadline = hass.loop.time() + AGENT_TIMEOUT
    streamed = ""
    try:
        while True:
            async with asyncio.timeout_at(deadline):
                piece = await pieces.get()
            if piece is None:
                break
            streamed += piece
            yield piece
        whole = task.result()
    except TimeoutError:
        raise Unsayable(f"the agent took over {AGENT_TIMEOUT} s") from None
    except Unsayable:
        raise
    except Exception as err:  # whatever the agent raised, the toy apologizes
        raise Unsayable(f"the agent failed: {err!r}") from err
    finally:
        # Given up (too slow, cut short, the client gone): whatever the agent was about to
        # do must not happen after the toy said otherwise.
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_TIMEOUT)
            if not task.done():
                _LOGGER.warning("%s did not stop within %s s of its answer being given up", agent_id, STOP_TIMEOUT)
        if going_on:  # the agent, once started, keeps the toy's conversation in a Talk of its own
            talk.running = False
    # An agent that does not stream gives its answer whole; one that does may end with more.
    if whole.startswith(streamed):
        if rest := whole[len(streamed) :]:
            yield rest
    elif not streamed:
        yield whole


async def screen(data: FoloToyData, node: str | None, text: str) -> payloads.Verdict:
    """The bridge's verdict on `text` (the watch words of the toy's side it holds, whether the
    toy is quiet); Unsayable when it cannot say."""
    if (bridge := data.discovery.bridge_of(node)) is None:
        raise Unsayable("no bridge has announced where to check an answer")
    sn = bridge.sn_of(node) if node else None
    try:
        # At QoS 0 both ways: each acknowledgement is a small packet that a broker without
        # TCP_NODELAY (the Mosquitto add-on's default) sends the next one after, up to 40 ms
        # later. One lost on the way is a timeout, and the answer is not said.
        reply = await data.toys.request(
            bridge.screen_request_topic, {"sn": sn, "text": text}, timeout=SCREEN_TIMEOUT, qos=0
        )
    except TimeoutError:
        raise Unsayable(f"the bridge did not say within {SCREEN_TIMEOUT} s whether the answer may be said") from None
    except HomeAssistantError as err:  # MQTT is down: the question cannot be sent
        raise Unsayable(f"the bridge cannot be asked whether the answer may be said: {err}") from None
    try:
        return payloads.verdict(reply.payload)
    except payloads.Unreadable as err:
        raise Unsayable(f"the bridge's verdict on {reply.topic} cannot be read: {err}") from None


class Screen:
    """The bridge's checks of one toy's answer: each sentence's watch words, before it is said."""

    def __init__(self, data: FoloToyData, node: str | None) -> None:
        self.data, self.node = data, node

    async def start(self) -> None:
        """Before the agent hears the question: asked with nothing to check, so that a toy
        resting by its daily limit or bedtime says its line and its agent never starts."""
        if self.node is not None:
            await self("")

    async def __call__(self, text: str) -> list[str]:
        verdict = await screen(self.data, self.node, text)
        if verdict.line is not None:
            raise Resting(verdict.line)
        return verdict.phrases


class Cut(Protocol):
    """How an answer streamed a piece at a time is cut into what the toy says."""

    # No more is said: the answer is long enough (its agent is stopped).
    cut: bool

    def feed(self, piece: str) -> list[str]: ...

    def rest(self) -> list[str]: ...


class Pieces:
    """The chat endpoint's cut: the text as the agent wrote it, up to the last sentence end so
    far (FoloToy's server reads it aloud itself)."""

    cut = False

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, piece: str) -> list[str]:
        self._pending += piece
        at = max((m.end() for m in _SENTENCE_END.finditer(self._pending)), default=0)
        if at == 0:
            return []
        ready, self._pending = self._pending[:at], self._pending[at:]
        return [ready]

    def rest(self) -> list[str]:
        rest, self._pending = self._pending, ""
        return [rest] if rest.strip() else []


class Kind(Enum):
    ANSWER = "answer"
    SAFE = "safe"
    APOLOGY = "apology"
    LINE = "line"  # a resting toy's goodbye or bedtime line


@dataclass(frozen=True)
class Said:
    """One thing the toy says: a sentence of the agent's, the safe sentence or the apology."""

    text: str
    kind: Kind


async def answer(hass: HomeAssistant, entry: FoloToyConfigEntry | None, question: Question) -> AsyncIterator[str]:
    """What the toy that heard the question says, as the chat endpoint streams it."""
    language = speech.language(question.text)
    if entry is None:
        _LOGGER.warning("a toy asked, but the FoloToy integration is not set up: it apologizes")
        yield speech.APOLOGY[language]
        return
    data = entry.runtime_data
    node = await find_toy(hass, data.toys, question.text)
    said = False
    async with aclosing(toy_answer(hass, entry, question, node, Pieces(), Screen(data, node))) as answer:
        async for line in answer:
            yield (" " if said and line.kind in (Kind.SAFE, Kind.LINE) else "") + line.text
            said = True


async def toy_answer(
    hass: HomeAssistant,
    entry: FoloToyConfigEntry,
    question: Question,
    node: str | None,
    sentences: Cut,
    checks: Screen,
    *,
    overall: bool = False,
) -> AsyncIterator[Said]:
    """What toy `node` says, as it may be said, whichever way it asked: the agent's text a
    sentence at a time, each checked by the bridge first; the safe sentence in place of one
    holding a watch word (and nothing after it); the apology when something failed before
    anything was said, or when the toy (or, with `overall`, Home Assistant) has too many
    answers running already. Quiet, from `checks`, ends it with nothing more said."""
    language = speech.language(question.text)
    slots = entry.runtime_data.brain.slots
    try:
        with slots.overall_slot() if overall else nullcontext(), slots.toy_slot(node):
            async with aclosing(_answer(hass, entry, question, node, language, sentences, checks)) as said:
                async for line in said:
                    yield line
    except gate.Busy as err:
        _LOGGER.warning("%s is not answered (%s): it apologizes", node or "a toy not known", err)
        yield Said(speech.APOLOGY[language], Kind.APOLOGY)


async def _answer(
    hass: HomeAssistant,
    entry: FoloToyConfigEntry,
    question: Question,
    node: str | None,
    language: str,
    sentences: Cut,
    checks: Screen,
) -> AsyncIterator[Said]:
    data = entry.runtime_data
    agent_id = _agent(hass, dict(entry.options), question.model)
    _LOGGER.debug("answering %s with %s", node or "a toy not known (no device)", agent_id)
    safe = Said(entry.options.get(CONF_SAFE_SENTENCE) or speech.SAFE_SENTENCE[language], Kind.SAFE)
    said = False
    try:
        await checks.start()
        async with aclosing(_agent_text(hass, data.brain, question, agent_id, node)) as agent_text:
            async for piece in agent_text:
                for sentence in sentences.feed(piece):
                    if await checks(sentence):
                        await agent_text.aclose()  # the agent stops before the toy hears the safe sentence
                        yield safe
                        return
                    said = True
                    yield Said(sentence, Kind.ANSWER)
                if sentences.cut:  # long enough: the agent stops (leaving the block) before the end is sent
                    break
        for sentence in sentences.rest():
            if await checks(sentence):
                yield safe
                return
            said = True
            yield Said(sentence, Kind.ANSWER)
        if not said:
            yield Said(speech.APOLOGY[language], Kind.APOLOGY)
    except Resting as rest:  # leaving the agent's block stopped it, before the toy hears the line
        _LOGGER.debug("%s is quiet by its daily limit or bedtime: it says its line", node)
        yield Said(rest.line, Kind.LINE)
    except Unsayable as err:
        _LOGGER.warning("a toy's answer is not said (%s): %s", err, "it stops there" if said else "it apologizes")
        if not said:
            yield Said(speech.APOLOGY[language], Kind.APOLOGY)


def _chunk(completion_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    chunk = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()


def _entry(hass: HomeAssistant) -> ConfigEntry | None:
    """The integration's entry, set up or not: its key is checked even while it is switched
    off (the toy then apologizes)."""
    return next(iter(hass.config_entries.async_entries(DOMAIN)), None)


def _check_key(request: web.Request) -> None:
    """Refuses (401) a request without the brain's key. Home Assistant's own middleware logs
    the refusal, with the address it came from, and bans that address if it is set to."""
    entry = _entry(request.app[KEY_HASS])
    if gate.holds_key(request, entry):
        return
    if entry is not None and not entry.data.get(CONF_BRAIN_KEY):
        _LOGGER.warning("the toy's brain has no key yet and refuses every request: make one in FoloToy's options")
    raise web.HTTPUnauthorized


class BrainView(HomeAssistantView):
    """A view of the toy's brain: it takes the brain's key only, not Home Assistant's tokens
    (which open the whole API, and would sit in FoloToy's roles.json)."""

    requires_auth = False

    def error(
        self, request: web.Request, status: int, message: str, code: str, kind: str = "invalid_request_error"
    ) -> web.Response:
        """OpenAI's error, after a warning naming where the request came from."""
        _LOGGER.warning("a request to the toy's brain from %s is refused (%s): %s", request.remote, status, message)
        headers = {"Retry-After": "1"} if status == HTTPStatus.TOO_MANY_REQUESTS else None
        return self.json({"error": {"message": message, "type": kind, "code": code}}, status, headers)


class ChatCompletionsView(BrainView):
    """`POST /api/folotoy/v1/chat/completions`, streamed (`stream: true`, as FoloToy asks) or not."""

    url = f"{BASE}/chat/completions"
    name = "api:folotoy:chat_completions"

    async def post(self, request: web.Request) -> web.StreamResponse:
        _check_key(request)
        hass: HomeAssistant = request.app[KEY_HASS]
        entry = loaded_entry(hass)
        try:
            # Not set up, the toy apologizes at once: nothing to bound.
            with entry.runtime_data.brain.slots.overall_slot() if entry is not None else nullcontext():
                return await self._answer(hass, entry, request)
        except gate.Busy as err:
            return self.error(request, HTTPStatus.TOO_MANY_REQUESTS, str(err), "busy", "rate_limit_error")

    async def _answer(
        self, hass: HomeAssistant, entry: FoloToyConfigEntry | None, request: web.Request
    ) -> web.StreamResponse:
        try:
            question = parse_question(json.loads(await gate.read_body(request)))
        except gate.Refused as err:
            return self.error(request, err.status, str(err), err.code)
        except TooLong as err:
            return self.error(request, HTTPStatus.BAD_REQUEST, str(err), "context_length_exceeded")
        except ValueError as err:  # not JSON, not UTF-8, or not a chat (BadRequest)
            return self.error(request, HTTPStatus.BAD_REQUEST, str(err), "invalid_request")
        created = int(time.time())
        model = question.model or DEFAULT_AGENT

        def completion_id() -> str:
            return f"chatcmpl-{question.conversation_id or uuid.uuid4().hex}"

        # Closed however the response ends (the client gone included), so the agent stops.
        async with aclosing(answer(hass, entry, question)) as said:
            if not question.stream:
                text = "".join([piece async for piece in said])
                return self.json(
                    {
                        "id": completion_id(),
                        "object": "chat.completion",
                        "created": created,
                        "model": model,
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                        ],
                        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                    }
                )
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
            await response.prepare(request)
            chunk_id: str | None = None
            async for piece in said:
                if chunk_id is None:  # the first piece: the conversation is known by now
                    chunk_id = completion_id()
                    await response.write(_chunk(chunk_id, created, model, {"role": "assistant", "content": ""}, None))
                await response.write(_chunk(chunk_id, created, model, {"content": piece}, None))
        await response.write(_chunk(chunk_id or completion_id(), created, model, {}, "stop"))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


class ModelsView(BrainView):
    """`GET /api/folotoy/v1/models`: the conversation agents a role's `model` may name."""

    url = f"{BASE}/models"
    name = "api:folotoy:models"

    async def get(self, request: web.Request) -> web.Response:
        _check_key(request)
        hass: HomeAssistant = request.app[KEY_HASS]
        agents = sorted({DEFAULT_AGENT, *hass.states.async_entity_ids(conversation.DOMAIN)})
        return self.json(
            {
                "object": "list",
                "data": [{"id": a, "object": "model", "created": 0, "owned_by": "homeassistant"} for a in agents],
            }
        )


@callback
def async_register(hass: HomeAssistant) -> None:
    """The endpoint exists from the start (Home Assistant's views cannot be taken back);
    until the integration is set up, it apologizes."""
    hass.http.register_view(ChatCompletionsView())
    hass.http.register_view(ModelsView())
