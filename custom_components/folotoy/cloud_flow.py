"""Adding a FoloToy cloud toy: a subentry of the FoloToy entry, paired with FoloToy's app
by a QR code, or by the serial number and key printed in the toy's QR code.

Pairing is FoloToy's own (pairing.py): a session of FoloToy's pairing service shown as a QR
code (Home Assistant's QrCodeSelector, as its Tuya integration shows its login code), scanned
in FoloToy's app; the parent presses Submit and the flow waits (a progress step) until the
app completed the session or it expired. The key is tried on FoloToy's cloud before the toy
is added (or its new key kept), so that a wrong key or an unreachable cloud is said in the
dialog, where the parent can fix it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryFlow, SubentryFlowResult
from homeassistant.const import CONF_NAME
from homeassistant.data_entry_flow import section
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import selector
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from . import pairing
from .cloud import PORT, PRODUCTION_HOST, CloudToy, State, Unreadable, parse_qr
from .cloud_toys import CloudToys, async_try, cloud_subentries
from .const import CONF_HOST, CONF_KEY, CONF_PAIRING_URL, CONF_PORT, CONF_SN, DEFAULT_PAIRING_URL
from .data import FoloToyConfigEntry

_LOGGER = logging.getLogger(__name__)

DEFAULT_NAME = "FoloToy"
# What the cloud's answer to the key means for the parent (translations: the flow's errors).
ERRORS = {State.REFUSED: "invalid_auth", State.UNREACHABLE: "cannot_connect", State.TAKEN_OVER: "cannot_connect"}
# The form's folded section: what only FoloToy's testers change.
ADVANCED = "advanced"
PASSWORD = selector.TextSelector(selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD))


class CloudToyFlow(ConfigSubentryFlow):
    """Adds a cloud toy, or gives one a new key or broker (reconfigure)."""

    def __init__(self) -> None:
        self._name = DEFAULT_NAME
        self._service = DEFAULT_PAIRING_URL
        self._session: pairing.Session | None = None
        # Waits for FoloToy's app, then tries the toy's key: the toy and the flow's error.
        self._waiting: asyncio.Task[tuple[CloudToy | None, str | None]] | None = None
        self._paired: CloudToy | None = None

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Paired with FoloToy's app, or by the serial number and key."""
        return self.async_show_menu(step_id="user", menu_options=["pair", "key"])

    async def async_step_pair(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """The toy's name (and, folded away, FoloToy's pairing service), then the QR code."""
        errors: dict[str, str] = {}
        if user_input is not None:
            self._name = user_input[CONF_NAME].strip() or DEFAULT_NAME
            self._service = user_input.get(ADVANCED, {}).get(CONF_PAIRING_URL, DEFAULT_PAIRING_URL).strip()
            if not self._service.startswith(("https://", "http://")):
                errors["base"] = "not_a_url"
            elif (error := await self._new_session()) is None:
                return await self.async_step_scan()
            else:
                errors["base"] = error
        schema = vol.Schema(
            {
                vol.Required(CONF_NAME, default=self._name): str,
                vol.Required(ADVANCED): section(
                    vol.Schema({vol.Required(CONF_PAIRING_URL, default=self._service): str}), {"collapsed": True}
                ),
            }
        )
        return self.async_show_form(step_id="pair", data_schema=schema, errors=errors)

    async def _new_session(self) -> str | None:
        try:
            self._session = await pairing.async_new_session(async_get_clientsession(self.hass), self._service)
        except pairing.PairingError as err:
            _LOGGER.warning("FoloToy's pairing service at %s: %s", self._service, err)
            return "pairing_unreachable"
        return None

    async def async_step_scan(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """The session's QR code, to scan in FoloToy's app; Submit once the app is done."""
        assert self._session is not None
        if user_input is not None:
            return await self.async_step_wait()
        qr_code = selector.QrCodeSelector(
            selector.QrCodeSelectorConfig(
                data=self._session.pair_url,
                scale=5,
                error_correction_level=selector.QrErrorCorrectionLevel.QUARTILE,
            )
        )
        expires = self._session.expires_at
        return self.async_show_form(
            step_id="scan",
            data_schema=vol.Schema({vol.Optional("qr_code"): qr_code}),
            description_placeholders={"expires": expires.strftime("%H:%M UTC") if expires else "5 minutes"},
        )

    async def async_step_wait(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Waits for FoloToy's app to complete the session (or for it to expire), then tries
        the key; shown as progress until then."""
        if self._waiting is None:
            self._waiting = self.hass.async_create_task(self._wait(), "folotoy pairing", eager_start=False)
        if not self._waiting.done():
            return self.async_show_progress(step_id="wait", progress_action="wait_for_app", progress_task=self._waiting)
        return self.async_show_progress_done(next_step_id="paired")

    async def _wait(self) -> tuple[CloudToy | None, str | None]:
        assert self._session is not None
        try:
            toy = await pairing.async_wait(async_get_clientsession(self.hass), self._service, self._session)
        except pairing.PairingError as err:
            _LOGGER.warning("FoloToy's pairing service at %s: %s", self._service, err)
            return None, "pairing_failed"
        if toy is None:
            return None, "expired"
        if any(s.data[CONF_SN] == toy.sn for s in cloud_subentries(self._get_entry()).values()):
            return toy, "already_configured"
        return toy, await _error(toy)

    async def async_step_paired(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """What the wait ended with: the toy added, or what went wrong and what to do."""
        assert self._waiting is not None
        task, self._waiting = self._waiting, None
        toy, error = task.result()
        if error is None and toy is not None:
            return self._create(toy)
        if error == "already_configured":
            return self.async_abort(reason="already_configured")
        if error in ("expired", "pairing_failed"):
            return self.async_show_form(step_id=error, data_schema=vol.Schema({}))
        self._paired = toy
        return await self.async_step_broker(error=error)

    async def async_step_expired(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """The session expired before FoloToy's app completed it: a new QR code on Submit."""
        return await self._again("expired", user_input)

    async def async_step_pairing_failed(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """The pairing service stopped answering: a new QR code on Submit."""
        return await self._again("pairing_failed", user_input)

    async def _again(self, step_id: str, user_input: dict[str, Any] | None) -> SubentryFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            if (error := await self._new_session()) is None:
                return await self.async_step_scan()
            errors["base"] = error
        return self.async_show_form(step_id=step_id, data_schema=vol.Schema({}), errors=errors)

    async def async_step_broker(
        self, user_input: dict[str, Any] | None = None, error: str | None = None
    ) -> SubentryFlowResult:
        """Paired, but FoloToy's cloud did not take the key: said, with the broker to change
        and try again."""
        assert self._paired is not None
        errors = {"base": error} if error else {}
        if user_input is not None:
            toy = CloudToy(
                sn=self._paired.sn, key=self._paired.key, host=user_input[CONF_HOST].strip(), port=user_input[CONF_PORT]
            )
            if (retry := await _error(toy)) is None:
                return self._create(toy)
            self._paired, errors = toy, {"base": retry}
        schema = vol.Schema(
            {
                vol.Required(CONF_HOST, default=self._paired.host): str,
                vol.Required(CONF_PORT, default=self._paired.port): cv.port,
            }
        )
        return self.async_show_form(
            step_id="broker", data_schema=schema, errors=errors, description_placeholders={"sn": self._paired.sn}
        )

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
