"""The bridge's configs, followed: each toy's media player, and the bridge itself.

The bridge decides everything about a toy; its configs only tell this integration which
topics carry what. This reads them (payloads.py), keeps what the bridge announced, and tells
the rest of the entry through Home Assistant's dispatcher, as its `tasmota` integration does:
a player to add (once MQTT discovery has made the toy's device, which the player joins), a
player's new config, the bridges' configs. A player the bridge takes back, or whose device
is deleted, leaves the entity registry here, whether it is enabled or not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from homeassistant.components.mqtt import (
    ReceiveMessage,
    async_prepare_subscribe_topics,
    async_subscribe_topics,
    async_unsubscribe_topics,
)
from homeassistant.components.mqtt.subscription import EntitySubscription
from homeassistant.const import Platform
from homeassistant.core import CALLBACK_TYPE, Event, HassJobType, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util.signal_type import SignalTypeFormat

from . import payloads
from .const import BRIDGE_CONFIG_TOPIC, DOMAIN, PLAYER_CONFIG_TOPIC
from .devices import MQTT_DOMAIN, toy_device
from .payloads import BridgeConfig, PlayerConfig

_LOGGER = logging.getLogger(__name__)

# Formatted with the entry's id: a toy's player to add, on MQTT's device for the toy...
SIGNAL_PLAYER_NEW = SignalTypeFormat[PlayerConfig, dr.DeviceEntry]("folotoy_player_new_{}")
# ...and the toy's node: its player's new config...
SIGNAL_PLAYER_UPDATED = SignalTypeFormat[PlayerConfig]("folotoy_player_updated_{}_{}")
# ...and every bridge's config by the bridge's node, whenever one changes.
SIGNAL_BRIDGES = SignalTypeFormat[Mapping[str, BridgeConfig]]("folotoy_bridges_{}")


class Discovery:
    """What the bridges announced to one entry: players and bridges, by their node."""

    def __init__(self, hass: HomeAssistant, entry_id: str, prefix: str) -> None:
        self._hass = hass
        self._entry_id = entry_id
        self._prefix = prefix
        self.players: dict[str, PlayerConfig] = {}
        self.bridges: dict[str, BridgeConfig] = {}
        # The players given to the media player platform, with their device's id.
        self._added: dict[str, str] = {}
        # Toys announced before MQTT discovery has made their device: added when it has.
        self._waiting: dict[str, PlayerConfig] = {}
        self._sub_state: dict[str, EntitySubscription] | None = None
        self._unlisten: CALLBACK_TYPE | None = None

    async def async_start(self) -> None:
        """Follows the configs (the media player platform listens already)."""
        self._unlisten = self._hass.bus.async_listen(dr.EVENT_DEVICE_REGISTRY_UPDATED, self._device_changed)
        # At QoS 0, as MQTT discovery subscribes: the broker then hands both their messages in
        # the order the bridge sent them (at QoS 1 ours could come after the toy's other configs,
        # and a player removed after the toy's last MQTT entity kept the emptied device alive on
        # Home Assistant before 2026.8, where MQTT removes a device only when no entity is left).
        topics = {
            "players": (PLAYER_CONFIG_TOPIC, self._player_received),
            "bridges": (BRIDGE_CONFIG_TOPIC, self._bridge_received),
        }
        self._sub_state = async_prepare_subscribe_topics(
            self._hass,
            self._sub_state,
            {
                key: {
                    "topic": topic.format(prefix=self._prefix),
                    "msg_callback": received,
                    "qos": 0,
                    "job_type": HassJobType.Callback,
                }
                for key, (topic, received) in topics.items()
            },
        )
        await async_subscribe_topics(self._hass, self._sub_state)

    @callback
    def close(self) -> None:
        self._sub_state = async_unsubscribe_topics(self._hass, self._sub_state)
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    # --- the toys' players

    @callback
    def _player_received(self, msg: ReceiveMessage) -> None:
        node = msg.topic.split("/")[-3]
        if not msg.payload:
            config = self.players.pop(node, None)
            self._waiting.pop(node, None)
            if config is not None and self._added.pop(node, None) is not None:
                self._remove(config)
            return
        if (config := _read(msg, node, "media player config", payloads.player_config)) is None:
            return
        old, self.players[node] = self.players.get(node), config
        # The registry is the truth: a player the user deleted (with its device) comes back
        # when the bridge announces the toy again.
        if node not in self._added or self._registered(config) is None:
            self._add(config)
        elif config != old:
            async_dispatcher_send(self._hass, SIGNAL_PLAYER_UPDATED.format(self._entry_id, node), config)

    def _registered(self, config: PlayerConfig) -> str | None:
        return er.async_get(self._hass).async_get_entity_id(Platform.MEDIA_PLAYER, DOMAIN, config.unique_id)

    @callback
    def _add(self, config: PlayerConfig) -> None:
        if (device := toy_device(self._hass, config.node)) is None:
            _LOGGER.debug("Waiting for MQTT to make the device of %s", config.node)
            self._waiting[config.node] = config
            return
        self._waiting.pop(config.node, None)
        self._added[config.node] = device.id
        async_dispatcher_send(self._hass, SIGNAL_PLAYER_NEW.format(self._entry_id), config, device)

    @callback
    def _remove(self, config: PlayerConfig) -> None:
        """The toy's player goes, disabled or not."""
        if (entity_id := self._registered(config)) is not None:
            _LOGGER.debug("Removing %s: the bridge took %s back", entity_id, config.node)
            er.async_get(self._hass).async_remove(entity_id)

    @callback
    def _device_changed(self, event: Event[dr.EventDeviceRegistryUpdatedData]) -> None:
        if event.data["action"] == "create" and self._waiting:
            for config in list(self._waiting.values()):
                self._add(config)
        elif event.data["action"] == "remove":
            # The toy's device was deleted: its player goes with it, as the toy's other
            # entities do (the bridge also takes the toy back).
            for node, device_id in list(self._added.items()):
                if device_id == event.data["device_id"]:
                    del self._added[node]
                    self._remove(self.players[node])

    # --- the bridges

    @callback
    def _bridge_received(self, msg: ReceiveMessage) -> None:
        node = msg.topic.split("/")[-3]
        if not msg.payload:
            if self.bridges.pop(node, None) is not None:
                self._bridges_changed()
            return
        if (bridge := _read(msg, node, "bridge config", payloads.bridge_config)) is None:
            return
        if self.bridges.get(node) != bridge:
            self.bridges[node] = bridge
            self._bridges_changed()

    @callback
    def _bridges_changed(self) -> None:
        _LOGGER.debug("The bridges announced: %s", ", ".join(self.bridges) or "none")
        async_dispatcher_send(self._hass, SIGNAL_BRIDGES.format(self._entry_id), dict(self.bridges))

    def toy_node(self, device: dr.DeviceEntry) -> str | None:
        """The node of the toy that `device` is: the MQTT identifier a bridge makes of the
        device's serial number. None for any other device (the bridge's own, say)."""
        if not device.serial_number:
            return None
        nodes = {i for d, i in device.identifiers if d == MQTT_DOMAIN}
        return next(
            (node for b in self.bridges.values() if (node := b.node_of(device.serial_number)) in nodes),
            None,
        )

    def bridge_of(self, node: str | None) -> BridgeConfig | None:
        """The bridge to ask about toy `node`: the one its device is connected through when
        more than one could have it; any bridge for a toy not known (None: no bridge)."""
        bridges = [b for b in self.bridges.values() if node is not None and b.sn_of(node) is not None]
        bridges = bridges or list(self.bridges.values())
        if len(bridges) > 1 and node is not None and (device := toy_device(self._hass, node)) is not None:
            via = dr.async_get(self._hass).async_get(device.via_device_id) if device.via_device_id else None
            through = [b for b in bridges if via is not None and (MQTT_DOMAIN, b.node) in via.identifiers]
            bridges = through or bridges
        return bridges[0] if bridges else None


def _read[C: (PlayerConfig, BridgeConfig)](
    msg: ReceiveMessage, node: str, what: str, read: Callable[[str | bytes], C | None]
) -> C | None:
    """The bridge's config on `msg` for device `node`; None, saying why at debug level for a
    config of someone else's and as a warning for one of the bridge's that cannot be used."""
    try:
        config = read(msg.payload)
    except payloads.Unreadable as err:
        _LOGGER.warning("Ignoring the %s on %s: %s", what, msg.topic, err)
        return None
    if config is None:
        _LOGGER.debug("Ignoring %s: not published by folotoy-ha-bridge", msg.topic)
        return None
    if config.node != node:
        _LOGGER.warning("Ignoring the %s on %s: it names device %s", what, msg.topic, config.node[:80])
        return None
    return config
