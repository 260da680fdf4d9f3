"""A media player per toy: the bridge's topics behind Home Assistant's media player API."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from homeassistant.components import media_source, mqtt
from homeassistant.components.media_player import (
    ATTR_MEDIA_ANNOUNCE,
    ATTR_MEDIA_EXTRA,
    BrowseMedia,
    MediaPlayerEntity,
    MediaPlayerEntityFeature,
    MediaPlayerState,
    MediaType,
    async_process_play_media_url,
)
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.network import NoURLAvailableError, get_url
from yarl import URL

from . import devices, discovery
from .const import CONF_DISCOVERY_PREFIX, DOMAIN, PLAYER_CONFIG_TOPIC
from .discovery import PlayerConfig

_LOGGER = logging.getLogger(__name__)

ONLINE = "online"
STATES = {"playing": MediaPlayerState.PLAYING, "idle": MediaPlayerState.IDLE}


async def async_setup_entry(
    hass: HomeAssistant, entry: ConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add a player for every toy the bridge announces, on the toy's device, and remove
    the ones it takes back."""
    players: dict[str, ToyPlayer] = {}
    # Toys announced before MQTT discovery has made their device: added when it has.
    waiting: dict[str, PlayerConfig] = {}
    entities = er.async_get(hass)
    devices.leave_devices(hass, entry)

    def registered(config: PlayerConfig) -> str | None:
        return entities.async_get_entity_id(Platform.MEDIA_PLAYER, DOMAIN, config.unique_id)

    @callback
    def removed(config: PlayerConfig) -> None:
        """The bridge took the toy back: its player goes, disabled or not."""
        if (entity_id := registered(config)) is not None:
            _LOGGER.debug("Removing %s: the bridge took %s back", entity_id, config.node)
            entities.async_remove(entity_id)

    @callback
    def add(config: PlayerConfig) -> None:
        if (device := devices.toy_device(hass, config.node)) is None:
            _LOGGER.debug("Waiting for MQTT to make the device of %s", config.node)
            waiting[config.node] = config
            return
        waiting.pop(config.node, None)
        players[config.node] = ToyPlayer(entry, config, device)
        async_add_entities([players[config.node]])

    @callback
    def device_changed(event: Event[dr.EventDeviceRegistryUpdatedData]) -> None:
        if event.data["action"] == "create" and waiting:
            for config in list(waiting.values()):
                add(config)
        elif event.data["action"] == "remove":
            # The toy's device was deleted: its player goes with it, as the toy's
            # other entities do (the bridge also takes the toy back).
            for node, player in list(players.items()):
                if player.toy_device_id == event.data["device_id"]:
                    del players[node]
                    removed(player.config)

    @callback
    def config_received(msg: mqtt.ReceiveMessage) -> None:
        node = msg.topic.split("/")[-3]
        if not msg.payload:
            entry.runtime_data.configs.pop(node, None)
            waiting.pop(node, None)
            if (player := players.pop(node, None)) is not None:
                removed(player.config)
            return
        try:
            config = discovery.parse(msg.payload)
        except discovery.NotAPlayerConfig as err:
            _LOGGER.warning("Ignoring the media player config on %s: %s", msg.topic, err)
            return
        if config is None:
            _LOGGER.debug("Ignoring %s: not published by folotoy-ha-bridge", msg.topic)
            return
        if config.node != node:
            _LOGGER.warning("Ignoring the media player config on %s: it names device %s", msg.topic, config.node[:80])
            return
        # For folotoy.get_conversation: the toy's topics, and its answers followed.
        entry.runtime_data.configs[node] = config
        entry.async_create_task(hass, entry.runtime_data.follow(config))
        player = players.get(node)
        # The registry is the truth: a player the user deleted (with its device) comes
        # back when the bridge announces the toy again.
        if player is None or registered(config) is None:
            add(config)
        elif player.config != config:
            player.async_update_config(config)

    entry.async_on_unload(hass.bus.async_listen(dr.EVENT_DEVICE_REGISTRY_UPDATED, device_changed))
    topic = PLAYER_CONFIG_TOPIC.format(prefix=entry.data[CONF_DISCOVERY_PREFIX])
    # At QoS 0, as MQTT discovery subscribes: the broker then hands both their messages in
    # the order the bridge sent them (at QoS 1 ours could come after the toy's other configs,
    # and a player removed after the toy's last MQTT entity kept the emptied device alive on
    # Home Assistant before 2026.8, where MQTT removes a device only when no entity is left).
    entry.async_on_unload(await mqtt.async_subscribe(hass, topic, config_received, qos=0))


class ToyPlayer(MediaPlayerEntity):
    """Plays what Home Assistant resolves to a URL; shows what the bridge publishes."""

    _attr_has_entity_name = True
    _attr_name = None
    _attr_should_poll = False
    _attr_media_content_type = MediaType.MUSIC
    # Only what the toy can do: no pause, stop or next, which FoloToy has no command for.
    _attr_supported_features = (
        MediaPlayerEntityFeature.PLAY_MEDIA
        | MediaPlayerEntityFeature.BROWSE_MEDIA
        | MediaPlayerEntityFeature.VOLUME_SET
        | MediaPlayerEntityFeature.MEDIA_ANNOUNCE
    )

    def __init__(self, entry: ConfigEntry, config: PlayerConfig, device: dr.DeviceEntry) -> None:
        self._entry = entry
        self.config = config
        self._attr_unique_id = config.unique_id
        # MQTT's device for the toy, never a device of this integration's own.
        self.device_entry = device
        self.toy_device_id = device.id
        # A suggestion: the user may rename it, and the registry keeps that.
        self.entity_id = config.default_entity_id
        self._online: dict[str, bool] = dict.fromkeys(config.availability, False)
        self._subscriptions: list[Callable[[], None]] = []

    async def async_added_to_hass(self) -> None:
        await self._subscribe()

    async def async_will_remove_from_hass(self) -> None:
        self._unsubscribe()

    async def _subscribe(self) -> None:
        config = self.config
        self._subscriptions.append(mqtt.async_subscribe_connection_status(self.hass, self._connection_changed))
        for topic, handler in (
            (config.state_topic, self._state_received),
            (config.title_topic, self._title_received),
            (config.volume_topic, self._volume_received),
            *((t, self._availability_received) for t in config.availability),
        ):
            self._subscriptions.append(await mqtt.async_subscribe(self.hass, topic, handler, qos=1))

    def _unsubscribe(self) -> None:
        while self._subscriptions:
            self._subscriptions.pop()()

    @callback
    def async_update_config(self, config: PlayerConfig) -> None:
        """The bridge changed the player's topics (another base topic)."""
        old, self.config = self.config, config
        # Only a player in Home Assistant listens (a disabled one is not added).
        if config.topics() != old.topics() and self._subscriptions:
            self._unsubscribe()
            self._online = dict.fromkeys(config.availability, False)
            self._entry.async_create_task(self.hass, self._subscribe())

    @property
    def available(self) -> bool:
        """Unavailable whenever the toy's other entities are: Home Assistant's broker, the
        bridge or the FoloToy server down."""
        return mqtt.is_connected(self.hass) and all(self._online.values())

    @callback
    def _connection_changed(self, _connected: bool) -> None:
        """Home Assistant's broker dropped or came back (on the event loop: a plain
        function would be run in a worker thread, which may not write a state)."""
        self.async_write_ha_state()

    @callback
    def _availability_received(self, msg: mqtt.ReceiveMessage) -> None:
        self._online[msg.topic] = msg.payload == ONLINE
        self.async_write_ha_state()

    @callback
    def _state_received(self, msg: mqtt.ReceiveMessage) -> None:
        self._attr_state = STATES.get(msg.payload)
        if self._attr_state is None and msg.payload:
            _LOGGER.warning("Unknown player state %r on %s", msg.payload[:40], msg.topic)
        self.async_write_ha_state()

    @callback
    def _title_received(self, msg: mqtt.ReceiveMessage) -> None:
        self._attr_media_title = msg.payload or None
        self.async_write_ha_state()

    @callback
    def _volume_received(self, msg: mqtt.ReceiveMessage) -> None:
        try:
            volume = float(msg.payload)
        except ValueError:
            volume = None
        if volume is None or not 0 <= volume <= 1:
            if msg.payload:
                _LOGGER.warning("Volume %r on %s is not between 0 and 1", msg.payload[:40], msg.topic)
            volume = None
        self._attr_volume_level = volume
        self.async_write_ha_state()

    async def async_set_volume_level(self, volume: float) -> None:
        """Shown once the toy confirmed it: the bridge publishes the volume then."""
        await mqtt.async_publish(self.hass, self.config.volume_command_topic, f"{volume:.2f}", qos=1)

    async def async_browse_media(
        self, media_content_type: MediaType | str | None = None, media_content_id: str | None = None
    ) -> BrowseMedia:
        """Home Assistant's media sources, audio only: the toy plays nothing else."""
        return await media_source.async_browse_media(
            self.hass,
            media_content_id,
            content_filter=lambda item: item.media_content_type.startswith("audio/"),
        )

    async def async_play_media(self, media_type: MediaType | str, media_id: str, **kwargs: Any) -> None:
        """Turns what Home Assistant asks to play into a URL the toy fetches itself."""
        text = None
        if media_source.is_media_source_id(media_id):
            if media_id.startswith("media-source://tts/"):
                text = URL(media_id).query.get("message")
            item = await media_source.async_resolve_media(self.hass, media_id, self.entity_id)
            media_id = item.url
        # A path of Home Assistant's becomes a URL on its internal address (the toy is on
        # the home network), never its external or cloud one.
        url = async_process_play_media_url(self.hass, media_id, allow_relative_url=True)
        if url.startswith("/"):
            try:
                url = get_url(self.hass, allow_external=False, allow_cloud=False) + url
            except NoURLAvailableError as err:
                raise HomeAssistantError(translation_domain=DOMAIN, translation_key="no_url") from err
        if not url.startswith(("http://", "https://")):
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="not_a_url", translation_placeholders={"url": url[:80]}
            )
        payload: dict[str, Any] = {"url": url, "announce": bool(kwargs.get(ATTR_MEDIA_ANNOUNCE))}
        if text:
            payload["text"] = text
        # An announcement may come with its own volume; the bridge sets it, plays,
        # and puts the toy's volume back.
        extra = kwargs.get(ATTR_MEDIA_EXTRA) or {}
        if payload["announce"] and (volume := extra.get("volume")) is not None:
            if not isinstance(volume, (int, float)) or not 0 <= volume <= 1:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="bad_volume",
                    translation_placeholders={"volume": str(volume)[:20]},
                )
            payload["volume"] = volume
        await mqtt.async_publish(self.hass, self.config.play_media_command_topic, json.dumps(payload), qos=1)
