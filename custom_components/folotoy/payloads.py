"""What the bridge sends this integration over the broker, read totally.

Anyone on the broker can publish on the bridge's topics. Each reader here returns what it
understood or raises Unreadable saying why, whatever the payload (any JSON value, at any
depth, or none): the caller warns, naming the topic, and the toy apologizes rather than
falls silent. Home Assistant's JSON reader (orjson) refuses nesting deeper than 1024 with
a ValueError, where Python's own raises RecursionError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.util.json import json_loads

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


def verdict(payload: str | bytes) -> list[str]:
    """The watch words the bridge found in an answer (none: it may be said)."""
    phrases = _object(payload).get("phrases")
    if not isinstance(phrases, list):
        raise Unreadable(f"phrases is {_kind(phrases)}, not a list")
    if not all(isinstance(p, str) for p in phrases):
        raise Unreadable("phrases holds something other than text")
    return phrases


@dataclass(frozen=True)
class Exchange:
    """One sentence of a toy's day: the child's or the toy's."""

    t: int  # Unix milliseconds
    text: str
    child: bool
    role: int | None


@dataclass(frozen=True)
class Day:
    """The bridge's answer to `folotoy.get_conversation`, or its refusal (`error`)."""

    exchanges: list[Exchange]
    truncated: bool
    error: str | None = None
    # Why messages were left out (the first reason) and how many, when some were.
    left_out: tuple[int, str] | None = None


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
    return Day(exchanges, truncated, left_out=left_out)
