"""The toy's device belongs to MQTT: players join it, and own no device themselves.

MQTT discovery makes each toy's device from the bridge's configs. Since Home Assistant
2026.8 device identifiers are unique per integration, so a player that declared the same
identifiers got a second device of its own; a helper integration instead sets its
entity's `device_entry` to the other integration's device (developer blog, 2025-07-18,
"Updated guidelines for helper integrations linking to other integration's device").
Before 2026.8 the same identifiers put this entry on MQTT's device, which it must leave.
"""

from __future__ import annotations

import logging

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er

from .const import DOMAIN

_LOGGER = logging.getLogger(__name__)

MQTT_DOMAIN = "mqtt"

# Home Assistant 2026.8 and later: a device belongs to one config entry, and identifiers
# are unique per entry (looked up per entry; the lookup without one is deprecated).
DEVICES_PER_ENTRY = hasattr(dr.DeviceRegistry, "async_get_device_by_identifier")


@callback
def toy_device(hass: HomeAssistant, node: str) -> dr.DeviceEntry | None:
    """MQTT's device for the toy `node`, once MQTT discovery has made it."""
    devices = dr.async_get(hass)
    identifier = (MQTT_DOMAIN, node)
    if DEVICES_PER_ENTRY:
        for mqtt_entry in hass.config_entries.async_entries(MQTT_DOMAIN):
            if (device := devices.async_get_device_by_identifier(identifier, mqtt_entry.entry_id)) is not None:
                return device
        return None
    return devices.async_get_device(identifiers={identifier})


@callback
def leave_devices(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Undo what older versions of this integration did to the device registry.

    Players first let go of their devices (registry entries, and what users changed in
    them, stay); then every device this entry owns or shares goes, or this entry leaves
    it. Each player is put on MQTT's device again when it is added. Runs at every
    setup: it does nothing once there is nothing left."""
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    owned = dr.async_entries_for_config_entry(devices, entry.entry_id)
    if not owned:
        return
    owned_ids = {device.id for device in owned}
    for entity in er.async_entries_for_config_entry(entities, entry.entry_id):
        if entity.domain == Platform.MEDIA_PLAYER and entity.device_id in owned_ids:
            entities.async_update_entity(entity.entity_id, device_id=None)
    for device in owned:
        if DEVICES_PER_ENTRY:  # the device was this entry's alone
            devices.async_remove_device(device.id)
        else:
            devices.async_update_device(device.id, remove_config_entry_id=entry.entry_id)
    _LOGGER.info("Left %d device(s) that an older version of %s had joined or made", len(owned), DOMAIN)
