"""An AI for the end-to-end tests: no network, no model.

Its AI task entity (ai_task.e2e_ai) answers every task with a fixed summary and what it
was asked, so a test can tell that the day's conversation reached it."""

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

# Not in Platform: ai_task is an entity integration of its own (conversation is).
# conversation.e2e_agent answers the chat endpoint's tests (see conversation.py).
PLATFORMS = ["ai_task", "conversation"]


async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
