"""The relay between the entry's cloud toys and the bridge, on Home Assistant's broker.

The bridge knows a cloud toy only from here: a retained `hello` with its name under the
bridge's `cloud_topic` (MQTT discovery then makes the toy's device, as for a self-hosted
toy), emptied when the toy is removed. The bridge's Say, Announce and the player's announce
come back as `notify`, which the toy's channel sends as a notification and which is
confirmed (or refused, with why) on `notified`; what was said goes to the bridge as the
toy's `voice_generated` event, as a self-hosted toy's would. Nothing secret crosses: every
client of Home Assistant's broker may read these topics.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util.hass_dict import HassKey

from . import payloads
from .const import CONF_SN, DOMAIN
from .payloads import BridgeConfig

_LOGGER = logging.getLogger(__name__)

NOT_CONNECTED = "the toy's channel is not connected"
KNOWN_BRIDGES: HassKey[set[BridgeConfig]] = HassKey(f"{DOMAIN}_cloud_bridges")


class Relay:
    """hello, notify and notified for the entry's cloud toys, under every cloud topic the
    bridges announce (bridges that share one are told once). Its loops that wait on the
    broker walk copies: bridges come and go, and toys start, while a hello waits."""

    def __init__(self, hass: HomeAssistant, link: Callable[[str], Any]) -> None:
        self._hass = hass
        # The channel (cloud.Link) of the cloud toy with a serial number, if it has one.
        self._link = link
        self._bridges: dict[str, BridgeConfig] = {}  # one per cloud topic
        self._toys: dict[str, ConfigSubentry] = {}  # by serial number
        self._unsubscribe: dict[str, CALLBACK_TYPE] = {}  # by cloud topic
        self._msg_id = random.randrange(1, 1 << 30)

    async def async_bridges_changed(self, bridges: Mapping[str, BridgeConfig]) -> None:
        """Follows the bridges' cloud topics: says hello under a new one, and listens to its
        notify."""
        current = {b.cloud_topic: b for b in bridges.values() if b.cloud_topic is not None}
        known_bridges(self._hass).update(current.values())
        for topic in [t for t in self._unsubscribe if t not in current]:
            self._unsubscribe.pop(topic)()
            self._bridges.pop(topic, None)
        for topic, bridge in current.items():
            if topic in self._bridges:
                continue
            self._bridges[topic] = bridge
            self._unsubscribe[topic] = await mqtt.async_subscribe(
                self._hass, _wildcard(bridge), self._notify_received, qos=1
            )
            for subentry in list(self._toys.values()):
                await self._hello(bridge, subentry)

    async def async_toy_started(self, subentry: ConfigSubentry) -> None:
        """A cloud toy whose channel started: hello under every cloud topic."""
        self._toys[subentry.data[CONF_SN]] = subentry
        for bridge in list(self._bridges.values()):
            await self._hello(bridge, subentry)

    async def async_toy_removed(self, subentry: ConfigSubentry) -> None:
        """A cloud toy removed: its hello emptied, so that the bridges forget it."""
        sn = subentry.data[CONF_SN]
        self._toys.pop(sn, None)
        for bridge in list(self._bridges.values()):
            await self._send(bridge.cloud(sn, "hello"), "", retain=True)

    @callback
    def close(self) -> None:
        for unsubscribe in self._unsubscribe.values():
            unsubscribe()
        self._unsubscribe.clear()
        self._bridges.clear()

    async def _hello(self, bridge: BridgeConfig, subentry: ConfigSubentry) -> None:
        hello = json.dumps({"name": subentry.title}, ensure_ascii=False)
        await self._send(bridge.cloud(subentry.data[CONF_SN], "hello"), hello, retain=True)

    @callback
    def _notify_received(self, msg: mqtt.ReceiveMessage) -> None:
        found = ((b, b.cloud_sn(msg.topic, "notify")) for b in self._bridges.values())
        bridge, sn = next(((b, sn) for b, sn in found if sn is not None), (None, None))
        if bridge is None or sn is None:
            return  # a message of a subscription just replaced
        if not msg.payload:
            _LOGGER.debug("Ignoring the empty notify on %s: a retained one was cleared", msg.topic)
            return
        if msg.retain:
            _LOGGER.warning("Ignoring the retained notify on %s: a command is never retained", msg.topic)
            return
        try:
            notify = payloads.notify(msg.payload)
        except payloads.Unreadable as err:
            _LOGGER.warning("Ignoring the notify on %s: %s", msg.topic, err)
            return
        if sn not in self._toys:
            _LOGGER.warning("Ignoring the notify on %s: %s is not a cloud toy of this Home Assistant", msg.topic, sn)
            return
        answer: dict[str, Any] = {"id": notify.id, "ok": True}
        link = self._link(sn)
        try:
            if link is None:
                raise ConnectionError(sn)
            link.notify(notify.text)
        except ConnectionError:
            answer = {"id": notify.id, "ok": False, "why": NOT_CONNECTED}
        else:
            self.event(sn, "voice_generated", {"voiceText": notify.text}, bridge)
        self._publish(bridge.cloud(sn, "notified"), answer)

    @callback
    def event(self, sn: str, identifier: str, params: dict[str, Any], bridge: BridgeConfig | None = None) -> None:
        """A cloud toy's event, as a self-hosted toy's server posts it: what the child said and
        each sentence the toy said to it (cloud_brain.py), a notification it said; to `bridge`,
        else to every bridge. Sent in the order told, at QoS 0 as the brain's checks are: on
        Home Assistant's own broker nothing is lost, and a PUBACK would hold the next check
        behind the broker's Nagle delay (docs/performance.md, Cloud toys)."""
        for to in [bridge] if bridge is not None else list(self._bridges.values()):
            self._msg_id = self._msg_id % (1 << 31) + 1
            payload = {"msgId": self._msg_id, "identifier": identifier, "inputParams": params}
            self._publish(to.cloud(sn, "event"), payload, qos=0)

    @callback
    def _publish(self, topic: str, payload: dict[str, Any], qos: int = 1) -> None:
        send = self._send(topic, json.dumps(payload, ensure_ascii=False), qos=qos)
        self._hass.async_create_task(send, eager_start=True)

    async def _send(self, topic: str, payload: str, retain: bool = False, qos: int = 1) -> None:
        try:
            await mqtt.async_publish(self._hass, topic, payload, qos=qos, retain=retain)
        except HomeAssistantError as err:
            _LOGGER.warning("Could not tell the bridge on %s: %s", topic, err)


@callback
def known_bridges(hass: HomeAssistant) -> set[BridgeConfig]:
    """Every bridge with a cloud topic seen since Home Assistant started: kept past the
    entry's unload, for its removal (async_forget_all)."""
    return hass.data.setdefault(KNOWN_BRIDGES, set())


async def async_forget_all(hass: HomeAssistant, subentries: Iterable[ConfigSubentry]) -> None:
    """The entry removed with its cloud toys: their hello emptied under every cloud topic
    seen, so that the bridges forget them."""
    topics = {bridge.cloud(s.data[CONF_SN], "hello") for bridge in known_bridges(hass) for s in subentries}
    for topic in topics:
        try:
            await mqtt.async_publish(hass, topic, "", qos=1, retain=True)
        except HomeAssistantError as err:
            _LOGGER.warning("Could not tell the bridge on %s: %s", topic, err)


def _wildcard(bridge: BridgeConfig) -> str:
    """Every cloud toy's notify, in one subscription."""
    assert bridge.cloud_topic is not None
    return f"{bridge.cloud_topic.replace(payloads.SN, '+')}/notify"
