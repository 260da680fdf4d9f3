"""What a set-up entry owns, all of it closed or dropped when the entry is unloaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback

from .const import DOMAIN

if TYPE_CHECKING:
    from .brain import Brain
    from .cloud_toys import CloudToys
    from .conversation import Toys
    from .discovery import Discovery
    from .relay import Relay


@dataclass
class FoloToyData:
    # What the bridges announced: the toys' players and the bridges themselves.
    discovery: Discovery
    # What the toys heard lately, and the bridge's answers awaited.
    toys: Toys
    # The toy's brain's conversations and the answers it is making: a reload starts afresh.
    brain: Brain
    # The cloud toys' channels to FoloToy's cloud, one per cloud toy's subentry.
    cloud_toys: CloudToys
    # Their hello and notify on Home Assistant's broker, for the bridge.
    relay: Relay

    @callback
    def close(self) -> None:
        self.discovery.close()
        self.toys.close()
        self.relay.close()


type FoloToyConfigEntry = ConfigEntry[FoloToyData]


@callback
def loaded_entry(hass: HomeAssistant) -> FoloToyConfigEntry | None:
    """The entry, if it is set up (there is one at most)."""
    return next(iter(hass.config_entries.async_loaded_entries(DOMAIN)), None)
