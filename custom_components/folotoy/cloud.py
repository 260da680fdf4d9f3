"""A FoloToy cloud toy's channel: FoloToy's cloud broker, logged in as the toy.

FoloToy's cloud opens a channel per toy (the shared notes, folotoy-cloud-openapi.md, from
FoloToy's own client for it): a client logged in as the toy gets every sentence the child
says (`chat_input`), answers it a sentence at a time (`chat_output`, spoken by the toy, the
last one empty with `is_finished`), and can make the toy speak on its own
(`send_notification`). This module is the channel: its messages, read totally, and one
connection per toy that reconnects by itself and says what it is doing. What the child
says is answered elsewhere (the brain); the toy's key never leaves this connection.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

_LOGGER = logging.getLogger(__name__)

PRODUCTION_HOST = "f.folotoy.cn"
PORT = 1883
# FoloToy's client: keepalive 60 s, reconnect after 1 s doubling to 60 s.
KEEPALIVE = 60
BACKOFF_START = 1.0
BACKOFF_CAP = 60.0
# A connection the broker ends this soon after taking it, this many times in a row, is
# taken over: another client logs in as the toy (MQTT ends the older connection of a
# client id). Fighting back would knock each other off forever.
TAKEN_OVER_WITHIN = 10.0
TAKEN_OVER_AFTER = 3
# The largest message read: a question is one child's sentence.
MAX_PAYLOAD = 64 * 1024
MAX_TEXT = 4000


class Unreadable(ValueError):
    """A message of the channel that cannot be understood, and why."""


@dataclass(frozen=True)
class CloudToy:
    """What logging in as a toy takes: its serial number and key (the toy's QR code holds
    `<sn>&<key>`), and the broker pairing named."""

    sn: str
    key: str
    host: str = PRODUCTION_HOST
    port: int = PORT

    def __repr__(self) -> str:
        # The key is a secret: never in a log line, whatever prints this.
        return f"CloudToy(sn={self.sn!r}, host={self.host!r}, port={self.port})"

    @property
    def client_id(self) -> str:
        """As FoloToy's client: `openapi:` sets it apart from the toy's own connection."""
        return f"openapi:{self.sn}"

    username = client_id

    def topic(self, leaf: str) -> str:
        return f"/openapi/folotoy/{self.sn}/thing/{leaf}"

    @property
    def questions(self) -> str:
        return self.topic("command/call")

    @property
    def answers(self) -> str:
        return self.topic("command/callAck")

    @property
    def events(self) -> str:
        return self.topic("event/post")


def parse_qr(text: str) -> tuple[str, str]:
    """The serial number and key of a toy's QR code (`<sn>&<key>`); Unreadable."""
    parts = text.strip().split("&")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise Unreadable("a toy's code is its serial number and key joined by &")
    sn, key = (p.strip() for p in parts)
    if not sn.isascii() or not sn.isalnum() or len(sn) > 64:
        raise Unreadable("a serial number is letters and digits")
    return sn, key


@dataclass(frozen=True)
class Question:
    """One `chat_input`: what the child said, to be answered under its msgId."""

    msg_id: int
    text: str
    recording_id: int | None


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_question(payload: bytes | str) -> Question:
    """The question in a `chat_input` message; Unreadable with why for anything else."""
    if len(payload) > MAX_PAYLOAD:
        raise Unreadable(f"{len(payload)} bytes, over the {MAX_PAYLOAD}-byte limit")
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError) as err:
        raise Unreadable(f"not JSON: {str(err)[:80]}") from None
    if not isinstance(data, dict):
        raise Unreadable("not a JSON object")
    if data.get("identifier") != "chat_input":
        raise Unreadable(f"identifier {str(data.get('identifier'))[:40]!r} is not chat_input")
    msg_id = data.get("msgId")
    if not _whole(msg_id):
        raise Unreadable("msgId is not a whole number")
    params = data.get("inputParams")
    if not isinstance(params, dict):
        raise Unreadable("inputParams is not an object")
    text = params.get("text")
    if not isinstance(text, str):
        raise Unreadable("inputParams.text is not text")
    if len(text) > MAX_TEXT:
        raise Unreadable(f"the question is {len(text)} characters, over {MAX_TEXT}")
    recording_id = params.get("recording_id")
    if recording_id is not None and not _whole(recording_id):
        raise Unreadable("inputParams.recording_id is not a whole number")
    return Question(msg_id=msg_id, text=text.strip(), recording_id=recording_id)


def chat_output(question: Question, order: int, content: str, finished: bool) -> str:
    """One sentence of the answer (order from 1), or the last, empty one."""
    out = {"content": content, "recording_id": question.recording_id, "order": order, "is_finished": finished}
    return json.dumps({"msgId": question.msg_id, "identifier": "chat_output", "outParams": out}, ensure_ascii=False)


def notification(msg_id: int, text: str) -> str:
    """What the toy says on its own (an announcement)."""
    body = {"msgId": msg_id, "identifier": "send_notification", "outParams": {"text": text}}
    return json.dumps(body, ensure_ascii=False)


class State(enum.StrEnum):
    """What the channel is doing, for the toy's connectivity entity and repairs."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    # The cloud refused the key: retrying cannot help; the key must be entered again.
    REFUSED = "refused"
    # Another client logs in as the toy: the channel stands back.
    TAKEN_OVER = "taken_over"
    # Not reached (no network, a wrong host): retried with backoff.
    UNREACHABLE = "unreachable"
    STOPPED = "stopped"


class Link:
    """One connection to the cloud broker as the toy, on Home Assistant's event loop.

    paho's client does the protocol; its socket is watched by the loop (paho's own
    asyncio example, as Home Assistant's MQTT does), so no thread is needed. It
    reconnects with backoff, stops for good on a refused key or when taken over, and
    tells every change of state to `on_state` and every question to `on_question`."""

    def __init__(
        self,
        toy: CloudToy,
        on_question: Callable[[Question], None],
        on_state: Callable[[State, str], None],
    ) -> None:
        self.toy = toy
        self.state = State.STOPPED
        self._on_question = on_question
        self._on_state = on_state
        self._loop = asyncio.get_running_loop()
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=toy.client_id,
            protocol=paho.MQTTv311,
            clean_session=True,
            reconnect_on_failure=False,
        )
        self._client.username_pw_set(toy.username, toy.key)
        self._client.on_connect = self._connected
        self._client.on_disconnect = self._disconnected
        self._client.on_message = self._message
        self._client.on_subscribe = self._subscribed
        self._client.on_socket_open = self._socket_open
        self._client.on_socket_close = self._socket_close
        self._client.on_socket_register_write = self._register_write
        self._client.on_socket_unregister_write = self._unregister_write
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._quick_losses = 0
        self._connected_at: float | None = None
        self._msg_id = random.randrange(1, 1 << 30)

    def start(self) -> None:
        self._task = self._loop.create_task(self._run(), name=f"folotoy cloud {self.toy.sn}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._client.disconnect()
        self._set(State.STOPPED, "stopped")

    def answer(self, question: Question, order: int, content: str, finished: bool) -> None:
        self._publish(self.toy.answers, chat_output(question, order, content, finished))

    def notify(self, text: str) -> None:
        self._msg_id = self._msg_id % (1 << 31) + 1
        self._publish(self.toy.events, notification(self._msg_id, text))

    def _publish(self, topic: str, payload: str) -> None:
        if self.state is not State.CONNECTED:
            raise ConnectionError(f"the channel of {self.toy.sn} is {self.state}")
        self._client.publish(topic, payload, qos=0)

    def _set(self, state: State, why: str) -> None:
        if state is not self.state:
            self.state = state
            self._on_state(state, why)

    async def _run(self) -> None:
        backoff = BACKOFF_START
        while True:
            self._set(State.CONNECTING, f"{self.toy.host}:{self.toy.port}")
            self._lost.clear()
            try:
                # The socket's connect (and the name's lookup) blocks: off the loop.
                await self._loop.run_in_executor(None, self._client.connect, self.toy.host, self.toy.port, KEEPALIVE)
            except (OSError, socket.gaierror) as err:
                self._set(State.UNREACHABLE, str(err))
            else:
                misc = self._loop.create_task(self._misc())
                try:
                    await self._lost.wait()
                finally:
                    misc.cancel()
                if self.state in (State.REFUSED, State.TAKEN_OVER):
                    return
                if self._connected_at is not None:
                    backoff = BACKOFF_START
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, BACKOFF_CAP)

    async def _misc(self) -> None:
        """paho's keepalive and timeouts, once a second."""
        while self._client.loop_misc() == MQTTErrorCode.MQTT_ERR_SUCCESS:
            await asyncio.sleep(1)

    # paho's callbacks: all on the loop (the socket is read and written from it).

    def _connected(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            why = str(reason_code)
            self._set(State.REFUSED, why)
            _LOGGER.warning("FoloToy's cloud refused toy %s's key (%s): enter it again", self.toy.sn, why)
            client.disconnect()
            return
        self._connected_at = self._loop.time()
        client.subscribe(self.toy.questions, qos=0)

    def _subscribed(self, client, userdata, mid, reason_codes, properties) -> None:
        # Connected once the questions come: a question asked before would be lost.
        if any(code.is_failure for code in reason_codes):
            self._set(State.REFUSED, f"the cloud refused the toy's questions: {reason_codes}")
            client.disconnect()
            return
        self._set(State.CONNECTED, f"{self.toy.host}:{self.toy.port}")

    def _disconnected(self, client, userdata, flags, reason_code, properties) -> None:
        at, self._connected_at = self._connected_at, None
        if self.state is State.CONNECTED:
            quick = at is not None and self._loop.time() - at < TAKEN_OVER_WITHIN
            self._quick_losses = self._quick_losses + 1 if quick else 0
            if self._quick_losses >= TAKEN_OVER_AFTER:
                self._set(State.TAKEN_OVER, "another client logs in as this toy")
                _LOGGER.warning(
                    "Toy %s's channel in FoloToy's cloud is used by another client (FoloToy's app may have bound "
                    "the toy to OpenClaw): this one stands back",
                    self.toy.sn,
                )
            else:
                self._set(State.CONNECTING, f"lost: {reason_code}")
        self._lost.set()

    def _message(self, client, userdata, msg: paho.MQTTMessage) -> None:
        try:
            question = parse_question(msg.payload)
        except Unreadable as err:
            _LOGGER.warning("Ignoring the message on %s: %s", msg.topic[:120], err)
            return
        self._on_question(question)

    # The socket is opened by `connect`, in an executor thread, and closed on the loop or
    # there: what watches it is changed on the loop, at once when already there (a socket
    # closed and its number reused must never meet a late change), as Home Assistant's
    # MQTT does.

    def _on_loop(self, change: Callable[..., None], *args: Any) -> None:
        try:
            here = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            here = False
        if here:
            change(*args)
        else:
            self._loop.call_soon_threadsafe(change, *args)

    def _socket_open(self, client, userdata, sock) -> None:
        if (fd := sock.fileno()) > -1:
            self._on_loop(self._loop.add_reader, fd, client.loop_read)

    def _socket_close(self, client, userdata, sock) -> None:
        if (fd := sock.fileno()) > -1:
            self._on_loop(self._unwatch, fd)

    def _unwatch(self, fd: int) -> None:
        self._loop.remove_reader(fd)
        self._loop.remove_writer(fd)

    def _register_write(self, client, userdata, sock) -> None:
        if (fd := sock.fileno()) > -1:
            self._on_loop(self._loop.add_writer, fd, client.loop_write)

    def _unregister_write(self, client, userdata, sock) -> None:
        if (fd := sock.fileno()) > -1:
            self._on_loop(self._loop.remove_writer, fd)
