"""FoloToy: a media player for every toy of folotoy-ha-bridge, and its conversations.

The bridge puts each toy into Home Assistant through MQTT discovery, which has no
media player. This integration adds one per toy, on the toy's device, from the
configs the bridge publishes (discovery.py); it decides nothing the bridge decides. The
action `folotoy.get_conversation` asks the bridge for a toy's exchanges of a day
(`folotoy.delete_conversation` deletes them, forgetting.py), and an
OpenAI-compatible endpoint lets a FoloToy role be answered by Home Assistant (brain.py):
both from the bridge's own config, so they work with the players off. FoloToy cloud toys
are subentries of the entry (cloud_flow.py), each with its channel to FoloToy's cloud
(cloud_toys.py) and its relay to the bridge (relay.py).
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
from .cloud_toys import SIGNAL_ADDED, CloudToys, cloud_subentries
from .const import CONF_DISCOVERY_PREFIX, DOMAIN
from .data import FoloToyConfigEntry, FoloToyData
from .discovery import SIGNAL_BRIDGES, Discovery
from .relay import Relay, async_forget_all

PLATFORMS = [Platform.MEDIA_PLAYER, Platform.BINARY_SENSOR]
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
    cloud_toys = CloudToys(hass, entry)
    relay = Relay(hass, cloud_toys.link_of)
    entry.runtime_data = data = FoloToyData(
        discovery=discovery, toys=conversation.Toys(hass), brain=brain.Brain(), cloud_toys=cloud_toys, relay=relay
    )
    # Run after the entry is unloaded, or when its setup fails past this point.
    entry.async_on_unload(data.close)
    entry.async_on_unload(cloud_toys.async_close)
    entry.async_on_unload(entry.add_update_listener(_async_entry_updated))
    bridges = SIGNAL_BRIDGES.format(entry.entry_id)
    entry.async_on_unload(async_dispatcher_connect(hass, bridges, data.toys.async_follow))
    entry.async_on_unload(async_dispatcher_connect(hass, bridges, relay.async_bridges_changed))
    entry.async_on_unload(async_dispatcher_connect(hass, SIGNAL_ADDED.format(entry.entry_id), relay.async_toy_started))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    await discovery.async_start()
    cloud_toys.async_start()
    return True


async def _async_entry_updated(hass: HomeAssistant, entry: FoloToyConfigEntry) -> None:
    """A cloud toy added, reconfigured or removed (the options need nothing done)."""
    for removed in await entry.runtime_data.cloud_toys.async_subentries_changed():
        await entry.runtime_data.relay.async_toy_removed(removed)


async def async_unload_entry(hass: HomeAssistant, entry: FoloToyConfigEntry) -> bool:
    """Stop following them (what the entry owns is closed once its platforms are unloaded)."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: FoloToyConfigEntry) -> None:
    """The integration removed: the bridges forget its cloud toys too."""
    await async_forget_all(hass, cloud_subentries(entry).values())


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: FoloToyConfigEntry, device: dr.DeviceEntry
) -> bool:
    """A toy's device may be deleted: the bridge then forgets the toy, or brings
    it back if it is listed in its configuration."""
    return True
