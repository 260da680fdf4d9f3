"""FoloToy: a media player for every toy of folotoy-ha-bridge, and its conversations.

The bridge puts each toy into Home Assistant through MQTT discovery, which has no
media player. This integration adds one per toy, on the toy's device, from the
configs the bridge publishes; it decides nothing the bridge decides. The action
`folotoy.get_conversation` asks the bridge for a toy's exchanges of a day, and an
OpenAI-compatible endpoint lets a FoloToy role be answered by Home Assistant (brain.py).
"""

from __future__ import annotations

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.typing import ConfigType

from . import brain, conversation
from .const import DOMAIN

PLATFORMS = [Platform.MEDIA_PLAYER]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """The action exists from the start; it says so when the integration is not set up."""
    conversation.async_register(hass)
    brain.async_register(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Start following the bridge's player configs."""
    if not await mqtt.async_wait_for_mqtt_client(hass):
        raise ConfigEntryNotReady(translation_domain=DOMAIN, translation_key="mqtt_not_ready")
    entry.runtime_data = conversation.Toys(hass)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Stop following them."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        entry.runtime_data.close()
    return unloaded


async def async_remove_config_entry_device(hass: HomeAssistant, entry: ConfigEntry, device: dr.DeviceEntry) -> bool:
    """A toy's device may be deleted: the bridge then forgets the toy, or brings
    it back if it is listed in its configuration."""
    return True
