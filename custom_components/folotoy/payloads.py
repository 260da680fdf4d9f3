"""What the bridge sends this integration over the broker, read totally: its configs (the
players' and its own), the toys' Conversation events, its verdicts and its answers.

Anyone on the broker can publish on the bridge's topics. Each reader here returns what it
understood or raises Unreadable saying why, whatever the payload (any JSON value, at any
depth, or none): the caller warns, naming the topic, and the toy apologizes rather than
falls silent. Home Assistant's JSON reader (orjson) refuses nesting deeper than 1024 with
a ValueError, where Python's own raises RecursionError.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import voluptuous as vol
from homeassistant.components.mqtt import valid_publish_topic
from homeassistant.util.json import json_loads

from .const import BRIDGE_ORIGIN

# The latest time of an exchange that is a date in every time zone (9999-12-31T00:00Z).
_LAST_MS = 253_402_214_400_000


class Unreadable(ValueError):
    """A payload that is not what its topic carries, with why."""


def _json(payload: str | bytes) -> Any:
    try:
        return json_loads(payload)
    except ValueError as err:  # orjson's JSONDecodeError: not JSON, not UTF-8, too deep, empty
        raise Unreadable(f"not JSON ({err})") from None


def _object(payload: str | bytes) -> dict[str, Any]:
    data = _json(payload)
    if not isinstance(data, dict):
        raise Unreadable(f"not a JSON object but {_kind(data)}")
    return data


def _kind(value: Any) -> str:
    """What a JSON value is, for a warning (never the value itself: it may be huge)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "an object"


def _int(value: Any) -> bool:
    """A JSON integer (JSON's true and false are Python ints too)."""
    return isinstance(value, int) and not isinstance(value, bool)


def heard(payload: str | bytes) -> str | None:
    """The child's words in a toy's Conversation event; None for an event of another type
    (the toy's own sentences, "said")."""
    event = _object(payload)
    event_type = event.get("event_type")
    if not isinstance(event_type, str):
        raise Unreadable(f"event_type is {_kind(event_type)}, not text")
    if event_type != "heard":
        return None
    text = event.get("text")
    if not isinstance(text, str):
        raise Unreadable(f"the heard event's text is {_kind(text)}, not text")
    return text


@dataclass(frozen=True)
class Verdict:
    """The bridge's word on an answer: the watch words it found (none: it may be said), and
    whether the toy's Quiet switch is on (a bridge older than Quiet in verdicts says nothing:
    not quiet)."""

    phrases: list[str]
    quiet: bool = False
    # While the toy's daily limit or bedtime keeps it quiet: the line it answers with instead
    # (a bridge older than daily limits sends none).
    line: str | None = None


def verdict(payload: str | bytes) -> Verdict:
    """The bridge's verdict on an answer."""
    data = _object(payload)
    phrases = data.get("phrases")
    if not isinstance(phrases, list):
        raise Unreadable(f"phrases is {_kind(phrases)}, not a list")
    if not all(isinstance(p, str) for p in phrases):
        raise Unreadable("phrases holds something other than text")
    quiet = data.get("quiet", False)
    if not isinstance(quiet, bool):
        raise Unreadable(f"quiet is {_kind(quiet)}, not true or false")
    return Verdict(phrases, quiet, verdict_line(payload))


def verdict_line(payload: str | bytes) -> str | None:
    """The line the toy answers with instead, while its daily limit or bedtime keeps it quiet
    (none: the answer goes on; a bridge older than daily limits sends none)."""
    line = _object(payload).get("line")
    if line is not None and not isinstance(line, str):
        raise Unreadable(f"line is {_kind(line)}, not text")
    if line is not None and not line.strip():
        raise Unreadable("line is blank")
    return line


@dataclass(frozen=True)
class Exchange:
    """One sentence of a toy's day: the child's or the toy's."""

    t: int  # Unix milliseconds
    text: str
    child: bool
    role: int | None


@dataclass(frozen=True)
class Talk:
    """How much a toy talked on one day of the window, counted by the bridge from every
    sentence of that day (the rule of the day at a glance), kept or left out of the answer."""

    day: date
    exchanges: int
    talk_minutes: int
    # Sentences that held a phrase watched now, by its category (`own`: the parent's words).
    alerts: dict[str, int]


@dataclass(frozen=True)
class Day:
    """The bridge's answer to `folotoy.get_conversation`, or its refusal (`error`)."""

    exchanges: list[Exchange]
    truncated: bool
    error: str | None = None
    # Why messages were left out (the first reason) and how many, when some were.
    left_out: tuple[int, str] | None = None
    # The window's days with talk, oldest first; None from a bridge too old to count them.
    talk: list[Talk] | None = None


def _exchange(message: Any) -> Exchange:
    if not isinstance(message, dict):
        raise Unreadable(f"a message is {_kind(message)}, not an object")
    t, text, kind, role = message.get("t"), message.get("text"), message.get("kind"), message.get("role")
    if not _int(t) or not 0 <= t < _LAST_MS:
        raise Unreadable(f"a message's t is {_kind(t)}, not a time in milliseconds")
    if not isinstance(text, str):
        raise Unreadable(f"a message's text is {_kind(text)}, not text")
    if not isinstance(kind, str):
        raise Unreadable(f"a message's kind is {_kind(kind)}, not text")
    if role is not None and not _int(role):
        raise Unreadable(f"a message's role is {_kind(role)}, not a number")
    return Exchange(t=t, text=text, child=kind == "heard", role=role)


def _talk(value: Any) -> Talk:
    if not isinstance(value, dict):
        raise Unreadable(f"a day is {_kind(value)}, not an object")
    day, exchanges, minutes = value.get("day"), value.get("exchanges"), value.get("talk_minutes")
    try:
        when = date.fromisoformat(day) if isinstance(day, str) else None
    except ValueError:
        when = None
    if when is None:
        raise Unreadable(f"a day's day is {_kind(day)}, not a date")
    for name, count in (("exchanges", exchanges), ("talk_minutes", minutes)):
        if not _int(count) or count < 0:
            raise Unreadable(f"a day's {name} is {_kind(count)}, not a count")
    alerts = value.get("alerts", {})
    if not isinstance(alerts, dict) or not all(
        isinstance(c, str) and len(c) <= 64 and _int(n) and n >= 0 for c, n in alerts.items()
    ):
        raise Unreadable("a day's alerts are not counts by category")
    return Talk(when, exchanges, minutes, dict(alerts))


def day(payload: str | bytes) -> Day:
    """A day's exchanges, oldest first; messages that cannot be read are left out (and said
    so in `left_out`), an answer that cannot be read at all is Unreadable."""
    answer = _object(payload)
    if "error" in answer:
        error = answer["error"]
        return Day([], False, error=error[:200] if isinstance(error, str) else f"({_kind(error)})")
    messages, truncated = answer.get("messages"), answer.get("truncated", False)
    if not isinstance(messages, list):
        raise Unreadable(f"messages is {_kind(messages)}, not a list")
    if not isinstance(truncated, bool):
        raise Unreadable(f"truncated is {_kind(truncated)}, not true or false")
    exchanges: list[Exchange] = []
    first: str | None = None
    for message in messages:
        try:
            exchanges.append(_exchange(message))
        except Unreadable as err:
            first = first or str(err)
    left_out = (len(messages) - len(exchanges), first) if first is not None else None
    days = answer.get("days")
    if days is not None and not isinstance(days, list):
        raise Unreadable(f"days is {_kind(days)}, not a list")
    talk = [_talk(d) for d in days] if days is not None else None
    return Day(exchanges, truncated, left_out=left_out, talk=talk)


@dataclass(frozen=True)
class Deleted:
    """The bridge's answer to `folotoy.delete_conversation`: what went, or its refusal (`error`)."""

    exchanges: int = 0
    sentences: int = 0
    # The toys it was of (serial numbers), and when what went was said (ms), if anything went.
    toys: tuple[str, ...] = ()
    from_ms: int | None = None
    to_ms: int | None = None
    error: str | None = None


def deleted(payload: str | bytes) -> Deleted:
    """What the bridge deleted, or why it did not; an answer that cannot be read is Unreadable."""
    answer = _object(payload)
    if "error" in answer:
        error = answer["error"]
        return Deleted(error=error[:200] if isinstance(error, str) else f"({_kind(error)})")
    what = answer.get("deleted")
    if not isinstance(what, dict):
        raise Unreadable(f"deleted is {_kind(what)}, not an object")
    for key in ("exchanges", "sentences"):
        if not _int(what.get(key)) or what[key] < 0:
            raise Unreadable(f"{key} is {_kind(what.get(key))}, not a count")
    toys = what.get("toys")
    if not isinstance(toys, list) or not all(isinstance(t, str) for t in toys):
        raise Unreadable("toys is not a list of serial numbers")
    times = {}
    for key in ("from_ms", "to_ms"):
        value = what.get(key)
        if value is not None and (not _int(value) or not 0 <= value <= _LAST_MS):
            raise Unreadable(f"{key} is {_kind(value)}, not a time")
        times[key] = value
    return Deleted(what["exchanges"], what["sentences"], tuple(toys), **times)


# --- The bridge's configs for this integration (discovery.py follows them).


def _topic(key: str, topic: str) -> None:
    """One topic, no wildcard: the integration listens to the topics it is given only."""
    try:
        valid_publish_topic(topic)
    except vol.Invalid as err:
        raise Unreadable(f"{key} {topic[:80]!r} is not a topic: {err}") from None


def _bridges(payload: str | bytes) -> dict[str, Any] | None:
    """A config's fields; None when it is not the bridge's (anyone may publish on its topics)."""
    try:
        data = json_loads(payload)
    except ValueError as err:
        raise Unreadable(f"not JSON: {err}") from None
    if not isinstance(data, dict):
        raise Unreadable("not a JSON object")
    origin = data.get("origin")
    if not isinstance(origin, dict) or origin.get("name") != BRIDGE_ORIGIN:
        return None
    return data


def _node(data: dict[str, Any]) -> str:
    device = data.get("device")
    if (
        not isinstance(device, dict)
        or not isinstance(device.get("identifiers"), list)
        or not device["identifiers"]
        or not isinstance(device["identifiers"][0], str)
    ):
        raise Unreadable("device has no identifiers")
    return device["identifiers"][0]


CLOUD = "cloud"


@dataclass(frozen=True)
class PlayerConfig:
    """One toy's media player, as the bridge announced it: a self-hosted toy's, which plays
    URLs at a volume, or a FoloToy cloud toy's (`kind` cloud), which only speaks text (sent
    to the toy's Announce entity)."""

    name: str
    unique_id: str
    default_entity_id: str
    device: dict[str, Any]
    availability: tuple[str, ...]
    state_topic: str
    title_topic: str
    # A self-hosted toy's.
    volume_topic: str | None = None
    volume_command_topic: str | None = None
    play_media_command_topic: str | None = None
    # A cloud toy's: where the text to say goes, as plain text.
    announce_command_topic: str | None = None
    # The bridge-wide topics, for integrations older than the bridge's own config (read
    # and checked, not used: the bridge config is where this integration takes them).
    conversation_request_topic: str | None = None
    conversation_response_topic: str | None = None
    conversation_topic: str | None = None
    screen_request_topic: str | None = None
    screen_response_topic: str | None = None

    @property
    def node(self) -> str:
        """The toy's device id, which its MQTT entities share."""
        return self.device["identifiers"][0]

    @property
    def cloud(self) -> bool:
        """A FoloToy cloud toy's player: text only, no volume, no URL."""
        return self.announce_command_topic is not None

    def topics(self) -> tuple[str, ...]:
        """Every topic the player listens or sends to."""
        keys = _CLOUD_TOPICS if self.cloud else _PLAYER_TOPICS
        return (*self.availability, *(getattr(self, key) for key in keys))


_PLAYER_TOPICS = ("state_topic", "title_topic", "volume_topic", "volume_command_topic", "play_media_command_topic")
_CLOUD_TOPICS = ("state_topic", "title_topic", "announce_command_topic")
_OLD_TOPICS = (
    "conversation_request_topic",
    "conversation_response_topic",
    "conversation_topic",
    "screen_request_topic",
    "screen_response_topic",
)


def _texts(data: dict[str, Any], keys: tuple[str, ...], topics: tuple[str, ...]) -> None:
    """Each of `keys` is there, and text (the first that is not is said); each of `topics`
    (some of them) is one topic."""
    for key in keys:
        if not isinstance(data.get(key), str) or not data[key]:
            raise Unreadable(f"{key} is missing or not text")
    for key in topics:
        _topic(key, data[key])


def player_config(payload: str | bytes) -> PlayerConfig | None:
    """The player in `payload`; None when the config is not the bridge's. A config without
    `kind` is a self-hosted toy's (as every bridge older than cloud toys sends)."""
    if (data := _bridges(payload)) is None:
        return None
    kind = data.get("kind")
    if kind not in (None, CLOUD):
        raise Unreadable(f"kind {str(kind)[:40]!r} is not a kind of toy this integration knows")
    topics = _CLOUD_TOPICS if kind == CLOUD else _PLAYER_TOPICS
    _texts(data, ("name", "unique_id", "default_entity_id", *topics), topics=topics)
    _node(data)
    availability = data.get("availability")
    if not isinstance(availability, list) or not all(isinstance(t, str) and t for t in availability):
        raise Unreadable("availability is not a list of topics")
    for topic in availability:
        _topic("availability", topic)
    for key in _OLD_TOPICS:
        if key in data and (not isinstance(data[key], str) or not data[key]):
            raise Unreadable(f"{key} is not text")
        if key in data:
            _topic(key, data[key])
    return PlayerConfig(
        name=data["name"],
        unique_id=data["unique_id"],
        default_entity_id=data["default_entity_id"],
        device=data["device"],
        availability=tuple(availability),
        **{key: data[key] for key in topics},
        **{key: data[key] for key in _OLD_TOPICS if key in data},
    )


SN = "{sn}"
SN_LOWER = "{sn_lower}"


@dataclass(frozen=True)
class BridgeConfig:
    """What the bridge announces of itself, whether its toys have media players or not:
    where to ask it for a toy's day and for its verdict on an answer, and where each toy's
    Conversation events are, which tell the toy's brain which toy asks."""

    node: str
    conversation_request_topic: str
    # Answers come one level further down, on the request's id.
    conversation_response_topic: str
    screen_request_topic: str
    screen_response_topic: str
    # Each toy's Conversation events, {sn} standing for its serial number as topics have it...
    conversation_topic: str
    # ...and its device's identifier in Home Assistant's MQTT, {sn_lower} for it in lower case.
    toy_node: str
    # Where `folotoy.delete_conversation` asks (answered on conversation_response_topic);
    # None from a bridge older than deleting.
    conversation_delete_topic: str | None = None
    # Where the relay for FoloToy cloud toys is, {sn} standing for the toy's serial number (as
    # its QR code has it): `hello`, `notify`, `notified` and `event` below it (relay.py). None
    # from a bridge older than cloud toys.
    cloud_topic: str | None = None

    def cloud(self, sn: str, leaf: str) -> str:
        """One of the relay's topics for cloud toy `sn` (the bridge has a cloud_topic)."""
        assert self.cloud_topic is not None
        return f"{self.cloud_topic.replace(SN, sn)}/{leaf}"

    def cloud_sn(self, topic: str, leaf: str) -> str | None:
        """The serial number in `topic`, one of the relay's `leaf` topics; None for a topic
        that is not."""
        if self.cloud_topic is None:
            return None
        template, levels = f"{self.cloud_topic}/{leaf}".split("/"), topic.split("/")
        if len(levels) != len(template) or any(t not in (SN, level) for t, level in zip(template, levels, strict=True)):
            return None
        return levels[template.index(SN)]

    @property
    def heard_topic(self) -> str:
        """Every toy's Conversation events, in one subscription."""
        return self.conversation_topic.replace(SN, "+")

    def heard_by(self, topic: str) -> str | None:
        """The node of the toy whose Conversation event came on `topic`; None when `topic`
        is not one of this bridge's (a message of a subscription just replaced)."""
        template, levels = self.conversation_topic.split("/"), topic.split("/")
        if len(levels) != len(template) or any(t not in (SN, level) for t, level in zip(template, levels, strict=True)):
            return None
        return self.node_of(levels[template.index(SN)])

    def node_of(self, sn: str) -> str:
        """The node of the toy with serial number `sn`."""
        return self.toy_node.replace(SN_LOWER, sn.lower())

    def sn_of(self, node: str) -> str | None:
        """The serial number (in lower case, which the bridge takes too) of the toy `node`;
        None when `node` cannot be one of this bridge's toys."""
        before, after = self.toy_node.split(SN_LOWER)
        if len(node) <= len(before) + len(after) or not node.startswith(before) or not node.endswith(after):
            return None
        return node[len(before) : len(node) - len(after)]


_BRIDGE_TOPICS = (
    "conversation_request_topic",
    "conversation_response_topic",
    "screen_request_topic",
    "screen_response_topic",
    "conversation_topic",
)


def bridge_config(payload: str | bytes) -> BridgeConfig | None:
    """The bridge in `payload`; None when the config is not the bridge's."""
    if (data := _bridges(payload)) is None:
        return None
    node = _node(data)
    _texts(data, (*_BRIDGE_TOPICS, "toy_node"), topics=_BRIDGE_TOPICS)
    template = data["conversation_topic"]
    if template.count(SN) != 1 or SN not in template.split("/"):
        raise Unreadable(f"conversation_topic {template[:80]!r} does not have {SN} as one level")
    if data["toy_node"].count(SN_LOWER) != 1:
        raise Unreadable(f"toy_node {data['toy_node'][:80]!r} does not hold {SN_LOWER} once")
    if (cloud := data.get("cloud_topic")) is not None:
        if not isinstance(cloud, str) or not cloud:
            raise Unreadable("cloud_topic is not text")
        _topic("cloud_topic", cloud)
        if cloud.count(SN) != 1 or SN not in cloud.split("/"):
            raise Unreadable(f"cloud_topic {cloud[:80]!r} does not have {SN} as one level")
    delete = data.get("conversation_delete_topic")
    if delete is not None:
        if not isinstance(delete, str) or not delete:
            raise Unreadable("conversation_delete_topic is not text")
        _topic("conversation_delete_topic", delete)
    return BridgeConfig(
        node=node,
        cloud_topic=cloud,
        conversation_delete_topic=delete,
        **{key: data[key] for key in (*_BRIDGE_TOPICS, "toy_node")},
    )


@dataclass(frozen=True)
class Notify:
    """Something for a cloud toy to say on its own (the bridge's Say, Announce, the player's
    announce), to be confirmed under the bridge's id."""

    id: str
    text: str


def notify(payload: str | bytes) -> Notify:
    """The relay's `notify`: `{"id": "...", "text": "..."}`."""
    data = _object(payload)
    id_, text = data.get("id"), data.get("text")
    if not isinstance(id_, str) or not id_:
        raise Unreadable(f"id is {_kind(id_)}, not text")
    if not isinstance(text, str):
        raise Unreadable(f"text is {_kind(text)}, not text")
    if not text.strip():
        raise Unreadable("text is empty: nothing to say")
    return Notify(id=id_, text=text)
