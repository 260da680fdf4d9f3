"""Setting the integration up once: found over MQTT and confirmed, or added by hand."""

from __future__ import annotations

import logging
from typing import Any

import voluptuous as vol
from homeassistant.components.mqtt import valid_subscribe_topic
from homeassistant.config_entries import ConfigEntry, ConfigFlow, ConfigFlowResult, ConfigSubentryFlow, OptionsFlow
from homeassistant.core import callback
from homeassistant.helpers import selector
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo

from . import gate, payloads
from .cloud_flow import CloudToyFlow
from .const import (
    CONF_ACKNOWLEDGE,
    CONF_AGENT,
    CONF_BRAIN_KEY,
    CONF_DISCOVERY_PREFIX,
    CONF_INSTRUCTIONS,
    CONF_SAFE_SENTENCE,
    DEFAULT_AGENT,
    DEFAULT_PREFIX,
    DOMAIN,
    PLAYER_CONFIG_TOPIC,
    SUBENTRY_CLOUD_TOY,
)

_LOGGER = logging.getLogger(__name__)

TITLE = "FoloToy"
# Not an option: ticked, the options flow makes a new key for the toy's brain and shows it.
NEW_KEY = "new_key"


class FolotoyConfigFlow(ConfigFlow, domain=DOMAIN):
    """One entry serves every toy: players come and go with the bridge's configs."""

    VERSION = 1

    def __init__(self) -> None:
        self._prefix = DEFAULT_PREFIX

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        return FolotoyOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(cls, config_entry: ConfigEntry) -> dict[str, type[ConfigSubentryFlow]]:
        """FoloToy's cloud toys, each logged in to FoloToy's cloud (cloud_flow.py)."""
        return {SUBENTRY_CLOUD_TOY: CloudToyFlow}

    async def async_step_mqtt(self, discovery_info: MqttServiceInfo) -> ConfigFlowResult:
        """A config of the bridge's on the manifest's topics (a player's, or the bridge's own,
        which comes with media players off too): offer to set up, once."""
        await self.async_set_unique_id(DOMAIN)
        self._abort_if_unique_id_configured()
        bridges = discovery_info.topic.endswith("/bridge/config")
        read = payloads.bridge_config if bridges else payloads.player_config
        try:
            config = read(discovery_info.payload) if discovery_info.payload else None
        except payloads.Unreadable as err:
            _LOGGER.warning("Not offering FoloToy for the config on %s: %s", discovery_info.topic, err)
            config = None
        if config is None:
            return self.async_abort(reason="not_folotoy_bridge")
        # <prefix>/folotoy/<node>/media_player/config, or <prefix>/folotoy/<node>/bridge/config
        self._prefix = discovery_info.topic.rsplit("/", 4)[0]
        return await self.async_step_confirm()

    async def async_step_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The one click."""
        if user_input is not None:
            return self._create(self._prefix)
        self._set_confirm_only()
        return self.async_show_form(step_id="confirm")

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Added by hand: asks for the discovery prefix, which MQTT's is by default.

        Also while the bridge's offer is open: this flow goes on (the README invites it),
        and the offer goes away once the entry is made."""
        await self.async_set_unique_id(DOMAIN, raise_on_progress=False)
        self._abort_if_unique_id_configured()
        errors: dict[str, str] = {}
        if user_input is not None:
            prefix = user_input[CONF_DISCOVERY_PREFIX].strip().strip("/")
            if error := _prefix_error(prefix):
                errors[CONF_DISCOVERY_PREFIX] = error
            else:
                return self._create(prefix)
        schema = vol.Schema({vol.Required(CONF_DISCOVERY_PREFIX, default=self._mqtt_prefix()): str})
        return self.async_show_form(step_id="user", data_schema=schema, errors=errors)

    def _create(self, prefix: str) -> ConfigFlowResult:
        """The entry, with the toy's brain's key, shown this once (in the dialog that says it
        is set up: Home Assistant keeps no way to show it again)."""
        key = gate.new_key()
        return self.async_create_entry(
            title=TITLE,
            data={CONF_DISCOVERY_PREFIX: prefix, CONF_BRAIN_KEY: key},
            description_placeholders={"key": key},
        )

    def _mqtt_prefix(self) -> str:
        """The discovery prefix MQTT uses, which the bridge must use too."""
        for entry in self.hass.config_entries.async_entries("mqtt"):
            return entry.options.get(CONF_DISCOVERY_PREFIX) or entry.data.get(CONF_DISCOVERY_PREFIX) or DEFAULT_PREFIX
        return DEFAULT_PREFIX


def _prefix_error(prefix: str) -> str | None:
    """Why `prefix` cannot be the discovery prefix: empty (the players would be looked for
    under /folotoy/...), a wildcard (one prefix, not many), or no topic at all."""
    if not prefix:
        return "empty_prefix"
    if "+" in prefix or "#" in prefix:
        return "wildcard_prefix"
    try:
        valid_subscribe_topic(PLAYER_CONFIG_TOPIC.format(prefix=prefix))
    except vol.Invalid:
        return "invalid_prefix"
    return None


class FolotoyOptionsFlow(OptionsFlow):
    """The toys' brain (the chat endpoint and cloud toys): the agent that answers, the safe
    sentence, a cloud toy's instructions and acknowledgment, and a new key when asked for one."""

    def __init__(self) -> None:
        self._options: dict[str, Any] = {}
        self._key = ""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        if user_input is not None:
            self._options = {k: v for k, v in user_input.items() if k != NEW_KEY}
            if user_input.get(NEW_KEY):
                self._key = gate.new_key()
                return await self.async_step_key()
            return self.async_create_entry(data=self._options)
        options = self.config_entry.options
        agent = options.get(CONF_AGENT, DEFAULT_AGENT)
        schema = vol.Schema(
            {
                vol.Required(CONF_AGENT, default=agent): selector.ConversationAgentSelector(),
                vol.Optional(
                    CONF_SAFE_SENTENCE, description={"suggested_value": options.get(CONF_SAFE_SENTENCE)}
                ): selector.TextSelector(),
                # Cloud toys (cloud_brain.py): what the agent is told, and whether a slow
                # answer starts with a short acknowledgment.
                vol.Optional(
                    CONF_INSTRUCTIONS, description={"suggested_value": options.get(CONF_INSTRUCTIONS)}
                ): selector.TextSelector(selector.TextSelectorConfig(multiline=True)),
                vol.Optional(CONF_ACKNOWLEDGE, default=options.get(CONF_ACKNOWLEDGE, True)): selector.BooleanSelector(),
                vol.Optional(NEW_KEY, default=False): selector.BooleanSelector(),
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema)

    async def async_step_key(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The new key, shown this once; it replaces the old one when the parent submits
        (closing the dialog instead keeps the old one)."""
        if user_input is not None:
            entry = self.config_entry
            self.hass.config_entries.async_update_entry(entry, data={**entry.data, CONF_BRAIN_KEY: self._key})
            return self.async_create_entry(data=self._options)
        return self.async_show_form(
            step_id="key", data_schema=vol.Schema({}), description_placeholders={"key": self._key}
        )
