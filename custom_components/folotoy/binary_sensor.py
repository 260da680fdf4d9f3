"""A cloud toy's connection to FoloToy's cloud: on while Home Assistant answers the toy.

One per cloud toy's subentry, on the toy's device once the bridge has made it (MQTT
discovery makes it from the relay's hello, as for a self-hosted toy; see devices.py). Until
then the entity stands alone, and joins the device when it appears.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import EntityCategory
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .cloud import State
from .cloud_toys import SIGNAL_ADDED, SIGNAL_STATE
from .const import CONF_SN
from .data import FoloToyConfigEntry
from .devices import toy_device
from .discovery import SIGNAL_BRIDGES


async def async_setup_entry(
    hass: HomeAssistant, entry: FoloToyConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """An entity for every cloud toy whose channel is started (once: a channel started again
    keeps its entity)."""
    added: set[str] = set()

    @callback
    def add(subentry: ConfigSubentry) -> None:
        if subentry.subentry_id not in added:
            added.add(subentry.subentry_id)
            async_add_entities([CloudConnection(entry, subentry)], config_subentry_id=subentry.subentry_id)

    entry.async_on_unload(async_dispatcher_connect(hass, SIGNAL_ADDED.format(entry.entry_id), add))


class CloudConnection(BinarySensorEntity):
    """The toy's channel: connected, or why not (the `state` and `why` attributes)."""

    _attr_has_entity_name = True
    _attr_translation_key = "cloud_connection"
    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_should_poll = False

    def __init__(self, entry: FoloToyConfigEntry, subentry: ConfigSubentry) -> None:
        self._entry = entry
        self._subentry_id = subentry.subentry_id
        self._sn: str = subentry.data[CONF_SN]
        self._attr_unique_id = f"{self._sn}_cloud_connection"
        self.entity_id = f"binary_sensor.folotoy_{self._sn.lower()}_cloud_connection"
        self._state, self._why = State.STOPPED, ""

    async def async_added_to_hass(self) -> None:
        self._state, self._why = self._entry.runtime_data.cloud_toys.state(self._subentry_id)
        signal = SIGNAL_STATE.format(self._entry.entry_id, self._subentry_id)
        self.async_on_remove(async_dispatcher_connect(self.hass, signal, self._changed))
        # The toy's device: now, or when the bridge has made it.
        self.async_on_remove(
            async_dispatcher_connect(self.hass, SIGNAL_BRIDGES.format(self._entry.entry_id), self._join_device)
        )
        self.async_on_remove(self.hass.bus.async_listen(dr.EVENT_DEVICE_REGISTRY_UPDATED, self._join_device))
        self._join_device()

    @callback
    def _changed(self, state: State, why: str) -> None:
        self._state, self._why = state, why
        self.async_write_ha_state()

    @callback
    def _join_device(self, _: Event | Any = None) -> None:
        """Onto MQTT's device for the toy, once there is one (and the entity is not on it)."""
        if self.registry_entry is None:
            return
        bridges = self._entry.runtime_data.discovery.bridges.values()
        for node in {bridge.node_of(self._sn) for bridge in bridges}:
            device = toy_device(self.hass, node)
            if device is not None and self.registry_entry.device_id != device.id:
                er.async_get(self.hass).async_update_entity(self.entity_id, device_id=device.id)
                return

    @property
    def is_on(self) -> bool:
        return self._state is State.CONNECTED

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """What the channel is doing (connecting, refused, taken_over, unreachable,
        stopped), and why, when it is not connected."""
        return {"state": self._state.value, "why": self._why}
