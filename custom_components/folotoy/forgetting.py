"""`folotoy.delete_conversation`: forgetting on a parent's word, from an automation.

The bridge keeps the conversations; this asks it to delete one exchange, one day or all
of a toy's, or every toy's, over the broker (the topic its own config names, answered on
the same topic as `folotoy.get_conversation`). The bridge deletes for good, empties the
toy's Heard and Said sensors when they show what went, counts today's sensors anew, and
says what went; this returns that. A day is Home Assistant's, in its time zone; an
exchange is named by the time of what the child said, as `folotoy.get_conversation`
gives it (to the second).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import voluptuous as vol
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util

from . import payloads
from .const import DOMAIN
from .conversation import _ONE, ATTR_DATE, ATTR_DEVICE_ID, ATTR_ENTITY_ID, TIMEOUT, _data, _device, _time
from .devices import toy_device
from .payloads import BridgeConfig

_LOGGER = logging.getLogger(__name__)

SERVICE_DELETE_CONVERSATION = "delete_conversation"
ATTR_EXCHANGE = "exchange"
ATTR_ALL_DAYS = "all_days"
ATTR_EVERYTHING = "everything"
_SCOPES = (ATTR_EXCHANGE, ATTR_DATE, ATTR_ALL_DAYS, ATTR_EVERYTHING)


def _one_scope(data: dict[str, Any]) -> dict[str, Any]:
    """Exactly one of what can be deleted; a toy with all but everything, none with it."""
    named = [key for key in _SCOPES if key in data and data[key] is not False]
    if len(named) != 1:
        raise vol.Invalid("name one of exchange, date, all_days (true) or everything (true)")
    toy = ATTR_DEVICE_ID in data or ATTR_ENTITY_ID in data
    if named == [ATTR_EVERYTHING] and toy:
        raise vol.Invalid("everything is every toy's: name no toy with it")
    if named != [ATTR_EVERYTHING] and not toy:
        raise vol.Invalid(f"name the toy whose {named[0].replace('_', ' ')} to delete")
    return data


SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Exclusive(ATTR_DEVICE_ID, "toy"): vol.All(_ONE, [cv.string]),
            vol.Exclusive(ATTR_ENTITY_ID, "toy"): vol.All(_ONE, [cv.entity_id]),
            vol.Optional(ATTR_EXCHANGE): cv.datetime,
            vol.Optional(ATTR_DATE): cv.date,
            vol.Optional(ATTR_ALL_DAYS): cv.boolean,
            vol.Optional(ATTR_EVERYTHING): cv.boolean,
        }
    ),
    _one_scope,
)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _request(call: ServiceCall) -> dict[str, Any]:
    """The bridge's request for what the call names (its toy added by the caller)."""
    if call.data.get(ATTR_EVERYTHING):
        return {"scope": "everything"}
    if call.data.get(ATTR_ALL_DAYS):
        return {"scope": "toy"}
    if (day := call.data.get(ATTR_DATE)) is not None:
        start, end = dt_util.start_of_local_day(day), dt_util.start_of_local_day(day + timedelta(days=1))
        return {"scope": "day", "from_ms": _ms(start), "to_ms": _ms(end)}
    moment: datetime = call.data[ATTR_EXCHANGE]
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt_util.get_default_time_zone())
    # Named to the second, as get_conversation gives it: the exchange the child began in it.
    second = moment.replace(microsecond=0)
    return {"scope": "exchange", "from_ms": _ms(second), "to_ms": _ms(second) + 1000}


async def _ask(hass: HomeAssistant, bridge: BridgeConfig, request: dict[str, Any]) -> payloads.Deleted:
    """What `bridge` deleted, or HomeAssistantError."""
    if bridge.conversation_delete_topic is None:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="cannot_delete")
    try:
        msg = await _data(hass).toys.request(bridge.conversation_delete_topic, request, TIMEOUT)
    except TimeoutError:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="no_answer", translation_placeholders={"seconds": str(TIMEOUT)}
        ) from None
    try:
        deleted = payloads.deleted(msg.payload)
    except payloads.Unreadable as err:
        _LOGGER.warning("The bridge's answer on %s cannot be read: %s", msg.topic, err)
        deleted = payloads.Deleted(error=f"its answer cannot be read ({err})")
    if deleted.error is not None:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="delete_refused",
            translation_placeholders={"error": deleted.error},
        )
    return deleted


def _toy_name(hass: HomeAssistant, bridge: BridgeConfig, sn: str) -> str:
    device = toy_device(hass, bridge.node_of(sn))
    return (device.name_by_user or device.name or sn) if device is not None else sn


async def delete_conversation(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    """Deletes what the call names, and says what went."""
    data = _data(hass)
    request = _request(call)
    if not data.discovery.bridges:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="bridge_too_old")
    response: dict[str, Any] = {"scope": request["scope"]}
    if request["scope"] == "everything":
        gone = [(bridge, await _ask(hass, bridge, request)) for bridge in data.discovery.bridges.values()]
        response["toys"] = sorted(_toy_name(hass, bridge, sn) for bridge, d in gone for sn in d.toys)
    else:
        device = _device(hass, call)
        name = device.name_by_user or device.name or ""
        node = data.discovery.toy_node(device)
        bridge = data.discovery.bridge_of(node) if node is not None else None
        if node is None or bridge is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="not_a_toy", translation_placeholders={"toy": name[:80]}
            )
        gone = [(bridge, await _ask(hass, bridge, {**request, "sn": bridge.sn_of(node)}))]
        response["toy"] = name
        if request["scope"] == "day":
            day: date = call.data[ATTR_DATE]
            response["date"] = day.isoformat()
    response["exchanges"] = sum(d.exchanges for _, d in gone)
    response["sentences"] = sum(d.sentences for _, d in gone)
    firsts = [d.from_ms for _, d in gone if d.from_ms is not None]
    lasts = [d.to_ms for _, d in gone if d.to_ms is not None]
    if firsts and lasts:
        response["from"], response["to"] = _time(min(firsts)), _time(max(lasts))
    _LOGGER.info(
        "Deleted %d exchanges (%d sentences) of the toys' conversations (%s)",
        response["exchanges"],
        response["sentences"],
        request["scope"],
    )
    return response


@callback
def async_register(hass: HomeAssistant) -> None:
    hass.services.async_register(
        DOMAIN,
        SERVICE_DELETE_CONVERSATION,
        partial(delete_conversation, hass),
        schema=SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
