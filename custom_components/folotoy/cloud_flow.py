"""Adding a FoloToy cloud toy: a subentry of the FoloToy entry, by its serial number and key.

The key is tried on FoloToy's cloud before the toy is added (or its new key kept), so that
a wrong key or an unreachable cloud is said in the dialog, where the parent can fix it.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryFlow, SubentryFlowResult
from homeassistant.const import CONF_NAME
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import selector

from .cloud import PORT, PRODUCTION_HOST, CloudToy, State, Unreadable, parse_qr
from .cloud_toys import CloudToys, async_try, cloud_subentries
from .const import CONF_HOST, CONF_KEY, CONF_PORT, CONF_SN
from .data import FoloToyConfigEntry

DEFAULT_NAME = "FoloToy"
# What the cloud's answer to the key means for the parent (translations: the flow's errors).
ERRORS = {State.REFUSED: "invalid_auth", State.UNREACHABLE: "cannot_connect", State.TAKEN_OVER: "cannot_connect"}
PASSWORD = selector.TextSelector(selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD))


class CloudToyFlow(ConfigSubentryFlow):
    """Adds a cloud toy, or gives one a new key or broker (reconfigure)."""

    def __init__(self) -> None:
        self._name = DEFAULT_NAME

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        return await self.async_step_key()

    async def async_step_key(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """The serial number and key printed in the toy's QR code (or the code's text, pasted
        as the serial number), and the broker of FoloToy's cloud."""
        errors: dict[str, str] = {}
        if user_input is not None:
            self._name = user_input[CONF_NAME].strip() or DEFAULT_NAME
            try:
                toy = _toy(user_input)
            except Unreadable:
                errors[CONF_SN] = "not_a_toy_code"
            else:
                if any(s.data[CONF_SN] == toy.sn for s in cloud_subentries(self._get_entry()).values()):
                    return self.async_abort(reason="already_configured")
                if (error := await _error(toy)) is None:
                    return self._create(toy)
                errors["base"] = error
        values = user_input or {}
        schema = vol.Schema(
            {
                vol.Required(CONF_NAME, default=values.get(CONF_NAME, self._name)): str,
                vol.Required(CONF_SN, default=values.get(CONF_SN, "")): str,
                vol.Optional(CONF_KEY): PASSWORD,
                vol.Required(CONF_HOST, default=values.get(CONF_HOST, PRODUCTION_HOST)): str,
                vol.Required(CONF_PORT, default=values.get(CONF_PORT, PORT)): cv.port,
            }
        )
        return self.async_show_form(step_id="key", data_schema=schema, errors=errors)

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """A new key (FoloToy's cloud refused the old one) or another broker; tried first.
        The toy's channel starts again, which also ends its standing back when taken over."""
        entry: FoloToyConfigEntry = self._get_entry()
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            key = user_input.get(CONF_KEY) or subentry.data[CONF_KEY]
            toy = CloudToy(
                sn=subentry.data[CONF_SN],
                key=key.strip(),
                host=user_input[CONF_HOST].strip(),
                port=user_input[CONF_PORT],
            )
            if (error := await _error(toy)) is None:
                changed = self.hass.config_entries.async_update_subentry(entry, subentry, data=_data(toy))
                if not changed and (cloud_toys := _cloud_toys(entry)) is not None:
                    await cloud_toys.async_restart(subentry)
                return self.async_abort(reason="reconfigure_successful")
            errors["base"] = error
        schema = vol.Schema(
            {
                vol.Optional(CONF_KEY): PASSWORD,
                vol.Required(CONF_HOST, default=subentry.data.get(CONF_HOST, PRODUCTION_HOST)): str,
                vol.Required(CONF_PORT, default=subentry.data.get(CONF_PORT, PORT)): cv.port,
            }
        )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=schema,
            errors=errors,
            description_placeholders={"name": subentry.title, "sn": subentry.data[CONF_SN]},
        )

    def _create(self, toy: CloudToy) -> SubentryFlowResult:
        return self.async_create_entry(title=self._name, data=_data(toy), unique_id=toy.sn)


def _toy(user_input: dict[str, Any]) -> CloudToy:
    """The toy the form names; Unreadable when the serial number and key are not a toy's."""
    code, key = user_input[CONF_SN].strip(), (user_input.get(CONF_KEY) or "").strip()
    if "&" not in code:
        code = f"{code}&{key}"
    elif key and parse_qr(code)[1] != key:
        raise Unreadable("the code's key and the key typed differ")
    sn, key = parse_qr(code)
    return CloudToy(sn=sn, key=key, host=user_input[CONF_HOST].strip(), port=user_input[CONF_PORT])


def _data(toy: CloudToy) -> dict[str, Any]:
    return {CONF_SN: toy.sn, CONF_KEY: toy.key, CONF_HOST: toy.host, CONF_PORT: toy.port}


async def _error(toy: CloudToy) -> str | None:
    """Why the toy cannot be added as it is (the flow's error), None when the cloud took it."""
    return ERRORS.get(await async_try(toy))


def _cloud_toys(entry: FoloToyConfigEntry) -> CloudToys | None:
    return entry.runtime_data.cloud_toys if entry.state is ConfigEntryState.LOADED else None
