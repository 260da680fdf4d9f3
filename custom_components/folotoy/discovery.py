"""The media player configs the bridge publishes, read and checked.

The bridge decides everything about a toy; a config only tells this integration
which topics carry the player's state and take its commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import voluptuous as vol
from homeassistant.components.mqtt import valid_publish_topic
from homeassistant.util.json import json_loads

from .const import BRIDGE_ORIGIN


class NotAPlayerConfig(ValueError):
    """A config that claims to be the bridge's but cannot be a player's."""


@dataclass(frozen=True)
class PlayerConfig:
    """One toy's media player, as the bridge announced it."""

    name: str
    unique_id: str
    default_entity_id: str
    device: dict[str, Any]
    availability: tuple[str, ...]
    state_topic: str
    title_topic: str
    volume_topic: str
    volume_command_topic: str
    play_media_command_topic: str
    # folotoy.get_conversation's requests, and its answers (one level more: the id);
    # None from a bridge older than the action.
    conversation_request_topic: str | None = None
    conversation_response_topic: str | None = None
    # The toy's Conversation events, which tell the chat endpoint which toy asks; whether
    # an answer may be said (the bridge's watch words), and the verdicts. None from older bridges.
    conversation_topic: str | None = None
    screen_request_topic: str | None = None
    screen_response_topic: str | None = None

    @property
    def node(self) -> str:
        """The toy's device id, which its MQTT entities share."""
        return self.device["identifiers"][0]

    def topics(self) -> tuple[str, ...]:
        """Every topic the player listens or sends to."""
        return (*self.availability, *(getattr(self, key) for key in _TOPICS))


_TOPICS = ("state_topic", "title_topic", "volume_topic", "volume_command_topic", "play_media_command_topic")
_CONVERSATION_TOPICS = (
    "conversation_request_topic",
    "conversation_response_topic",
    "conversation_topic",
    "screen_request_topic",
    "screen_response_topic",
)


def _topic(key: str, topic: str) -> None:
    """One topic, no wildcard: a player listens to its own topics only."""
    try:
        valid_publish_topic(topic)
    except vol.Invalid as err:
        raise NotAPlayerConfig(f"{key} {topic[:80]!r} is not a topic: {err}") from None


def parse(payload: str | bytes) -> PlayerConfig | None:
    """The player in `payload`; None when the config is not the bridge's.

    Raises NotAPlayerConfig when the bridge's config cannot be read."""
    try:
        # Home Assistant's reader: any depth of nesting is refused (Python's json would
        # raise RecursionError, which is no ValueError).
        data = json_loads(payload)
    except ValueError as err:
        raise NotAPlayerConfig(f"not JSON: {err}") from None
    if not isinstance(data, dict):
        raise NotAPlayerConfig("not a JSON object")
    origin = data.get("origin")
    if not isinstance(origin, dict) or origin.get("name") != BRIDGE_ORIGIN:
        return None
    for key in ("name", "unique_id", "default_entity_id", *_TOPICS):
        if not isinstance(data.get(key), str) or not data[key]:
            raise NotAPlayerConfig(f"{key} is missing or not text")
    for key in _TOPICS:
        _topic(key, data[key])
    device = data.get("device")
    if (
        not isinstance(device, dict)
        or not isinstance(device.get("identifiers"), list)
        or not device["identifiers"]
        or not isinstance(device["identifiers"][0], str)
    ):
        raise NotAPlayerConfig("device has no identifiers")
    availability = data.get("availability")
    if not isinstance(availability, list) or not all(isinstance(t, str) and t for t in availability):
        raise NotAPlayerConfig("availability is not a list of topics")
    for topic in availability:
        _topic("availability", topic)
    for key in _CONVERSATION_TOPICS:
        if key in data and (not isinstance(data[key], str) or not data[key]):
            raise NotAPlayerConfig(f"{key} is not text")
        if key in data:
            _topic(key, data[key])
    return PlayerConfig(
        name=data["name"],
        unique_id=data["unique_id"],
        default_entity_id=data["default_entity_id"],
        device=device,
        availability=tuple(availability),
        **{key: data[key] for key in _TOPICS},
        **{key: data[key] for key in _CONVERSATION_TOPICS if key in data},
    )
