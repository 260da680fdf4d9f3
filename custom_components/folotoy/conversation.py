"""`folotoy.get_conversation`: a toy's exchanges of a day or a week, asked of the bridge over MQTT.

The bridge keeps the conversations (its page's history), wherever it runs; this asks
for one toy's over the broker both share: a request with an id on the topic the bridge's
config names, the answer on the response topic with that id appended. The days
are Home Assistant's, in its time zone, sent as a window of Unix milliseconds: the bridge
knows no time zone. How much the toy talked each day the bridge counts itself, from every
sentence of the window, by the rule of its day at a glance.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import date, timedelta
from functools import partial
from typing import Any

import voluptuous as vol
from homeassistant.components import mqtt
from homeassistant.components.mqtt import (
    async_prepare_subscribe_topics,
    async_subscribe_topics,
    async_unsubscribe_topics,
)
from homeassistant.components.mqtt.subscription import EntitySubscription
from homeassistant.core import HassJobType, HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util

from . import payloads
from .const import DOMAIN
from .data import FoloToyData, loaded_entry
from .hearings import Hearings
from .payloads import BridgeConfig

_LOGGER = logging.getLogger(__name__)

SERVICE_GET_CONVERSATION = "get_conversation"
ATTR_DEVICE_ID = "device_id"
ATTR_ENTITY_ID = "entity_id"
ATTR_DATE = "date"
ATTR_DAYS = "days"
# A week at most: the bridge answers a window of up to eight days (a week in any time zone).
MAX_DAYS = 7
# The bridge reads one day from its disk: it answers in milliseconds.
TIMEOUT = 10

# One toy, named by its device or one of its entities (a list of one, as a target gives it).
_ONE = vol.All(cv.ensure_list, vol.Length(min=1, max=1, msg="name one toy"))
SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Exclusive(ATTR_DEVICE_ID, "toy"): vol.All(_ONE, [cv.string]),
            vol.Exclusive(ATTR_ENTITY_ID, "toy"): vol.All(_ONE, [cv.entity_id]),
            vol.Optional(ATTR_DATE): cv.date,
            vol.Optional(ATTR_DAYS, default=1): vol.All(vol.Coerce(int), vol.Range(min=1, max=MAX_DAYS)),
        }
    ),
    cv.has_at_least_one_key(ATTR_DEVICE_ID, ATTR_ENTITY_ID),
)


class Toys:
    """What the toys heard lately, and the bridge's answers awaited.

    Follows what each bridge's config names (discovery.py): every toy's Conversation events,
    and the topics its answers come on, subscribed as soon as a bridge announces them, so an
    answer never comes before the subscription that would receive it."""

    def __init__(self, hass: HomeAssistant) -> None:
        self._hass = hass
        self.hearings = Hearings(hass.loop)
        self._bridges: dict[str, BridgeConfig] = {}
        self._waiting: dict[str, asyncio.Future[mqtt.ReceiveMessage]] = {}
        self._sub_state: dict[str, EntitySubscription] | None = None

    async def async_follow(self, bridges: Mapping[str, BridgeConfig]) -> None:
        """Follows what `bridges` (every bridge announced) name, and nothing else."""
        self._bridges = dict(bridges)
        topics: dict[str, dict[str, Any]] = {}
        for node, bridge in self._bridges.items():
            # Verdicts at QoS 0, as they are sent (see brain.py): no PUBACK for the broker to
            # hold a verdict behind.
            for key, topic, received, qos in (
                ("answers", f"{bridge.conversation_response_topic}/+", self._answered, 1),
                ("verdicts", f"{bridge.screen_response_topic}/+", self._answered, 0),
                ("heard", bridge.heard_topic, partial(self._heard, node), 0),
            ):
                topics[f"{node} {key}"] = {
                    "topic": topic,
                    "msg_callback": received,
                    "qos": qos,
                    "job_type": HassJobType.Callback,
                }
            _LOGGER.debug("Following what the toys of %s hear, on %s", node, bridge.heard_topic)
        self._sub_state = async_prepare_subscribe_topics(self._hass, self._sub_state, topics)
        await async_subscribe_topics(self._hass, self._sub_state)

    @callback
    def _heard(self, bridge_node: str, msg: mqtt.ReceiveMessage) -> None:
        # Looked up now: a subscription kept across a change of the bridge's config keeps
        # the callback it was made with.
        bridge = self._bridges.get(bridge_node)
        if bridge is None or (node := bridge.heard_by(msg.topic)) is None:
            _LOGGER.debug("Ignoring %s: the bridge no longer announces it", msg.topic)
            return
        try:
            text = payloads.heard(msg.payload)
        except payloads.Unreadable as err:
            _LOGGER.warning("Ignoring the Conversation event on %s: %s", msg.topic, err)
            return
        if text is not None:
            self.hearings.heard(node, text)

    @callback
    def close(self) -> None:
        self._sub_state = async_unsubscribe_topics(self._hass, self._sub_state)

    @callback
    def _answered(self, msg: mqtt.ReceiveMessage) -> None:
        waiting = self._waiting.get(msg.topic.rsplit("/", 1)[-1])
        if waiting is not None and not waiting.done():
            waiting.set_result(msg)
        else:
            _LOGGER.debug("Ignoring %s: no request waits for it (answered already, or given up)", msg.topic)

    async def request(self, topic: str, request: dict[str, Any], timeout: float, qos: int = 1) -> mqtt.ReceiveMessage:
        """The bridge's answer to `request` sent on `topic` (its id added); TimeoutError."""
        request_id = uuid.uuid4().hex
        answer: asyncio.Future[mqtt.ReceiveMessage] = self._hass.loop.create_future()
        self._waiting[request_id] = answer
        try:
            await mqtt.async_publish(self._hass, topic, json.dumps({"id": request_id, **request}), qos=qos)
            async with asyncio.timeout(timeout):
                return await answer
        finally:
            del self._waiting[request_id]

    async def ask(self, bridge: BridgeConfig, request: dict[str, Any]) -> payloads.Day:
        """The bridge's answer to `request` (its id added), or HomeAssistantError."""
        try:
            msg = await self.request(bridge.conversation_request_topic, request, TIMEOUT)
        except TimeoutError:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="no_answer",
                translation_placeholders={"seconds": str(TIMEOUT)},
            ) from None
        try:
            day = payloads.day(msg.payload)
        except payloads.Unreadable as err:
            _LOGGER.warning("The bridge's answer on %s cannot be read: %s", msg.topic, err)
            raise _refused(f"its answer cannot be read ({err})") from None
        if day.error is not None:
            raise _refused(day.error)
        if day.left_out is not None:
            count, why = day.left_out
            _LOGGER.warning("Leaving %d message(s) of the bridge's answer on %s out: %s", count, msg.topic, why)
        return day


def _refused(error: str) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN, translation_key="bridge_refused", translation_placeholders={"error": error}
    )


def _data(hass: HomeAssistant) -> FoloToyData:
    if (entry := loaded_entry(hass)) is not None:
        return entry.runtime_data
    raise ServiceValidationError(translation_domain=DOMAIN, translation_key="not_set_up")


def _device(hass: HomeAssistant, call: ServiceCall) -> dr.DeviceEntry:
    """The device the call names, by itself or through one of its entities."""
    if ATTR_ENTITY_ID in call.data:
        named = call.data[ATTR_ENTITY_ID][0]
        entity = er.async_get(hass).async_get(named)
        device_id = entity.device_id if entity is not None else None
    else:
        named = device_id = call.data[ATTR_DEVICE_ID][0]
    device = dr.async_get(hass).async_get(device_id) if device_id else None
    if device is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="unknown_toy", translation_placeholders={"toy": named[:80]}
        )
    return device


def _time(ms: int) -> str:
    return dt_util.as_local(dt_util.utc_from_timestamp(ms / 1000)).isoformat(timespec="seconds")


async def get_conversation(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    """The exchanges of one toy on one day (today unless given), or on the `days` up to it,
    oldest first; with how much it talked on each of those days."""
    data = _data(hass)
    device = _device(hass, call)
    name = device.name_by_user or device.name or ""
    if not data.discovery.bridges:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="bridge_too_old")
    node = data.discovery.toy_node(device)
    bridge = data.discovery.bridge_of(node) if node is not None else None
    if node is None or bridge is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="not_a_toy", translation_placeholders={"toy": name[:80]}
        )
    day: date = call.data.get(ATTR_DATE) or dt_util.now().date()
    count: int = call.data[ATTR_DAYS]
    first = day - timedelta(days=count - 1)
    start, end = dt_util.start_of_local_day(first), dt_util.start_of_local_day(day + timedelta(days=1))
    answer = await data.toys.ask(
        bridge,
        {
            "sn": bridge.sn_of(node),
            "from_ms": int(start.timestamp() * 1000),
            "to_ms": int(end.timestamp() * 1000),
        },
    )
    exchanges = []
    lines = []
    for m in answer.exchanges:
        exchange: dict[str, Any] = {"time": _time(m.t), "speaker": "child" if m.child else "toy", "text": m.text}
        if m.role is not None:
            exchange["role"] = m.role
        exchanges.append(exchange)
        # Over several days the time says which day: "2026-12-03 08:15".
        when = exchange["time"][11:16] if count == 1 else exchange["time"][:16].replace("T", " ")
        lines.append(f"{when} {'Child' if m.child else name}: {m.text}")
    _LOGGER.debug("%d exchanges of %s in the %d day(s) to %s", len(exchanges), node, count, day)
    response: dict[str, Any] = {
        "toy": name,
        "date": day.isoformat(),
        "exchanges": exchanges,
        # Ready for a prompt: "08:15 Child: ...", "08:15 Bunny: ...", one a line.
        "transcript": "\n".join(lines),
        "truncated": answer.truncated,
    }
    if count > 1:
        response["first_date"] = first.isoformat()
    if answer.talk is not None:
        response["days"] = _days(first, count, answer.talk)
    return response


def _days(first: date, count: int, talk: list[payloads.Talk]) -> list[dict[str, Any]]:
    """Every day of the window, oldest first, a day without talk with zeros."""
    counted = {t.day: t for t in talk}
    days = []
    for n in range(count):
        day = first + timedelta(days=n)
        t = counted.get(day)
        days.append(
            {
                "date": day.isoformat(),
                "exchanges": t.exchanges if t else 0,
                "talk_minutes": t.talk_minutes if t else 0,
                "alerts": dict(t.alerts) if t else {},
            }
        )
    return days


@callback
def async_register(hass: HomeAssistant) -> None:
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_CONVERSATION,
        partial(get_conversation, hass),
        schema=SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
