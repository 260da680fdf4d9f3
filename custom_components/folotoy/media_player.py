"""A media player per toy: the bridge's topics behind Home Assistant's media player API.

A self-hosted toy's plays URLs at a volume; a FoloToy cloud toy's speaks text only (its
channel carries nothing else): the message of Home Assistant's text-to-speech, sent to the
toy's Announce entity, so that Quiet, the Last command and the relay are the bridge's."""

from __future__ import annotations

import json
import logging
from typing import Any

from homeassistant.components import media_source, mqtt
from homeassistant.components.conversation import DOMAIN as CONVERSATION_DOMAIN
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
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
from homeassistant.components.mqtt import (
    async_prepare_subscribe_topics,
    async_subscribe_topics,
    async_unsubscribe_topics,
)
from homeassistant.components.mqtt.subscription import EntitySubscription
from homeassistant.components.tts import DOMAIN as TTS_DOMAIN
from homeassistant.components.tts.media_source import parse_media_source_id
from homeassistant.core import HassJobType, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.network import NoURLAvailableError, get_url
from yarl import URL

from .const import DOMAIN
from .data import FoloToyConfigEntry
from .discovery import SIGNAL_PLAYER_NEW, SIGNAL_PLAYER_UPDATED
from .payloads import PlayerConfig

_LOGGER = logging.getLogger(__name__)

ONLINE = "online"
STATES = {"playing": MediaPlayerState.PLAYING, "idle": MediaPlayerState.IDLE}


async def async_setup_entry(
    hass: HomeAssistant, entry: FoloToyConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """A player for every toy the bridge announces one for (discovery.py follows them, and
    removes the ones it takes back)."""

    @callback
    def add(config: PlayerConfig, device: dr.DeviceEntry) -> None:
        async_add_entities([ToyPlayer(entry.entry_id, config, device)])

    entry.async_on_unload(async_dispatcher_connect(hass, SIGNAL_PLAYER_NEW.format(entry.entry_id), add))


class ToyPlayer(MediaPlayerEntity):
    """Plays what Home Assistant resolves to a URL; shows what the bridge publishes."""

    _attr_has_entity_name = True
    _attr_name = None
    _attr_should_poll = False
    _attr_media_content_type = MediaType.MUSIC
    # Only what the toy can do: no pause, stop or next, which FoloToy has no command for...
    SELF_HOSTED = (
        MediaPlayerEntityFeature.PLAY_MEDIA
        | MediaPlayerEntityFeature.BROWSE_MEDIA
        | MediaPlayerEntityFeature.VOLUME_SET
        | MediaPlayerEntityFeature.MEDIA_ANNOUNCE
    )
    # ...and a cloud toy's channel has no volume and plays nothing: it says what it is given.
    CLOUD = MediaPlayerEntityFeature.PLAY_MEDIA | MediaPlayerEntityFeature.MEDIA_ANNOUNCE

    def __init__(self, entry_id: str, config: PlayerConfig, device: dr.DeviceEntry) -> None:
        self._entry_id = entry_id
        self.config = config
        self._attr_unique_id = config.unique_id
        # MQTT's device for the toy, never a device of this integration's own.
        self.device_entry = device
        # A suggestion: the user may rename it, and the registry keeps that.
        self.entity_id = config.default_entity_id
        self._online: dict[str, bool] = dict.fromkeys(config.availability, False)
        self._sub_state: dict[str, EntitySubscription] | None = None

    async def async_added_to_hass(self) -> None:
        self.async_on_remove(mqtt.async_subscribe_connection_status(self.hass, self._connection_changed))
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, SIGNAL_PLAYER_UPDATED.format(self._entry_id, self.config.node), self._config_updated
            )
        )
        self._hide_from_assist()
        await self._subscribe()

    @callback
    def _hide_from_assist(self) -> None:
        """A cloud toy's player is not exposed to Assist unless the user exposes it: Assist
        can do nothing with it (no volume, nothing to play or turn on), and, named as the toy,
        it would be what a child greeting the toy by name asks Home Assistant's agent, the
        toy's brain, to turn on (Home Assistant 2025.10's fuzzy matching does)."""
        entry = self.registry_entry
        if not self.config.cloud or entry is None:
            return
        if entry.options.get(CONVERSATION_DOMAIN, {}).get("should_expose") is None:
            async_expose_entity(self.hass, CONVERSATION_DOMAIN, self.entity_id, False)

    async def async_will_remove_from_hass(self) -> None:
        self._sub_state = async_unsubscribe_topics(self.hass, self._sub_state)

    @property
    def supported_features(self) -> MediaPlayerEntityFeature:
        return self.CLOUD if self.config.cloud else self.SELF_HOSTED

    async def _subscribe(self) -> None:
        """Subscribes to the config's topics; of a new config, to the topics that changed."""
        config = self.config
        topics = {
            "state": (config.state_topic, self._state_received),
            "title": (config.title_topic, self._title_received),
            **{f"availability {t}": (t, self._availability_received) for t in config.availability},
        }
        if config.volume_topic is not None:
            topics["volume"] = (config.volume_topic, self._volume_received)
        self._sub_state = async_prepare_subscribe_topics(
            self.hass,
            self._sub_state,
            {
                key: {"topic": topic, "msg_callback": received, "qos": 1, "job_type": HassJobType.Callback}
                for key, (topic, received) in topics.items()
            },
        )
        await async_subscribe_topics(self.hass, self._sub_state)

    async def _config_updated(self, config: PlayerConfig) -> None:
        """The bridge changed the player's config (another base topic, say). A topic kept is
        not subscribed again, so what came on it stands."""
        self.config = config
        self._online = {topic: self._online.get(topic, False) for topic in config.availability}
        await self._subscribe()
        self.async_write_ha_state()

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
        """Turns what Home Assistant asks to play into a URL the toy fetches itself; for a
        cloud toy, into the text it says."""
        if self.config.announce_command_topic is not None:
            await self._say(media_id)
            return
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

    async def _say(self, media_id: str) -> None:
        """A cloud toy's: the message of a text-to-speech media id (`tts.speak` makes one),
        as text to its Announce entity; anything else is refused, saying why."""
        assert self.config.announce_command_topic is not None
        if (text := _tts_message(self.hass, media_id)) is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="cloud_text_only",
                translation_placeholders={"name": self.config.name, "media": media_id[:80]},
            )
        await mqtt.async_publish(self.hass, self.config.announce_command_topic, text, qos=1)


def _tts_message(hass: HomeAssistant, media_id: str) -> str | None:
    """The message a text-to-speech media-source id says (Home Assistant's tts media source
    keeps it in the id); None for any other media, or a stream, whose text is not in it."""
    if not media_source.is_media_source_id(media_id):
        return None
    item = media_source.MediaSourceItem.from_uri(hass, media_id, None)
    if item.domain != TTS_DOMAIN:
        return None
    try:
        parsed = parse_media_source_id(item.identifier)
    except media_source.Unresolvable:
        return None
    message = parsed.get("message")
    return message if isinstance(message, str) and message.strip() else None
