"""A test's tool: puts a toy's player into the device registry as the project's integration
did before it set `device_entry` (it declared MQTT's identifiers as its own device info).

Before Home Assistant 2026.8 that made the FoloToy entry share MQTT's device; from 2026.8
on, a second device owned by the FoloToy entry, holding only the player. Done with Home
Assistant's own registry calls, so each version under test makes its own such state."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.typing import ConfigType

DOMAIN = "e2e_legacy"


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    async def attach_like_before(call: ServiceCall) -> None:
        entry = hass.config_entries.async_entries("folotoy")[0]
        node = call.data["node"]
        device = dr.async_get(hass).async_get_or_create(
            config_entry_id=entry.entry_id, identifiers={("mqtt", node)}, name=call.data["name"]
        )
        er.async_get(hass).async_get_or_create(
            "media_player", "folotoy", f"{node}_media_player", config_entry=entry, device_id=device.id
        )

    hass.services.async_register(DOMAIN, "attach_like_before", attach_like_before)
    return True
