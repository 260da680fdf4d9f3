"""FoloToy: a media player for every toy of folotoy-ha-bridge, and its conversations.

The bridge puts each toy into Home Assistant through MQTT discovery, which has no
media player. This integration adds one per toy, on the toy's device, from the
configs the bridge publishes (discovery.py); it decides nothing the bridge decides. The
action `folotoy.get_conversation` asks the bridge for a toy's exchanges of a day
(`folotoy.delete_conversation` deletes them, forgetting.py), and an
OpenAI-compatible endpoint lets a FoloToy role be answered by Home Assistant (brain.py):
both from the bridge's own config, so they work with the players off.
"""

from __future__ import annotations

from homeassistant.components import mqtt
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.typing import ConfigType

from . import brain, conversation, devices, forgetting
from .const import CONF_DISCOVERY_PREFIX, DOMAIN
from .data import FoloToyConfigEntry, FoloToyData
from .discovery import SIGNAL_BRIDGES, Discovery

PLATFORMS = [Platform.MEDIA_PLAYER]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """The action exists from the start; it says so when the integration is not set up."""
    conversation.async_register(hass)
    forgetting.async_register(hass)
    brain.async_register(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: FoloToyConfigEntry) -> bool:
    """Start following the bridge's configs: its players', for the media player platform,
    and its own, for `folotoy.get_conversation` and the toy's brain."""
    if not await mqtt.async_wait_for_mqtt_client(hass):
        raise ConfigEntryNotReady(translation_domain=DOMAIN, translation_key="mqtt_not_ready")
    devices.leave_devices(hass, entry)
    discovery = Discovery(hass, entry.entry_id, entry.data[CONF_DISCOVERY_PREFIX])
    entry.runtime_data = data = FoloToyData(discovery=discovery, toys=conversation.Toys(hass), brain=brain.Brain())
    # Run after the entry is unloaded, or when its setup fails past this point.
    entry.async_on_unload(data.close)
    entry.async_on_unload(async_dispatcher_connect(hass, SIGNAL_BRIDGES.format(entry.entry_id), data.toys.async_follow))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    await discovery.async_start()
    return True


async def async_unload_entry(hass: HomeAssistant, entry: FoloToyConfigEntry) -> bool:
    """Stop following them (what the entry owns is closed once its platforms are unloaded)."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: FoloToyConfigEntry, device: dr.DeviceEntry
) -> bool:
    """A toy's device may be deleted: the bridge then forgets the toy, or brings
    it back if it is listed in its configuration."""
    return True
