"""FoloToy cloud toys: one channel (cloud.Link) per `cloud_toy` subentry of the entry.

A channel is started when the entry is set up or its subentry added, started again when
the subentry is reconfigured, and stopped when the entry is unloaded or the subentry
removed. Each question goes to the brain (cloud_brain); each change of state to the toy's
connectivity entity (SIGNAL_STATE) and, when a parent must act, to a repair issue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util.signal_type import SignalTypeFormat

from . import cloud_brain
from .cloud import PORT, PRODUCTION_HOST, CloudToy, Link, Question, State
from .const import CONF_HOST, CONF_KEY, CONF_PORT, CONF_SN, DOMAIN, SUBENTRY_CLOUD_TOY

_LOGGER = logging.getLogger(__name__)

# Formatted with the entry's id: a cloud toy's subentry whose channel was started...
SIGNAL_ADDED = SignalTypeFormat[ConfigSubentry]("folotoy_cloud_added_{}")
# ...and with the subentry's id too: its channel's new state, and why.
SIGNAL_STATE = SignalTypeFormat[State, str]("folotoy_cloud_state_{}_{}")

# How long the config flow waits for the cloud's answer to the key before it says the cloud
# cannot be reached (paho gives up connecting after 5 s).
TRY_TIMEOUT = 15.0
# The states a parent must act on, each with its repair issue (translation key)...
ISSUES = {State.REFUSED: "cloud_refused", State.TAKEN_OVER: "cloud_taken_over", State.UNREACHABLE: "cloud_unreachable"}
# ...FoloToy's cloud not reached only after this many tries in a row (with the channel's
# backoff, about 15 s): a moment without network raises nothing.
UNREACHABLE_AFTER = 4


def cloud_toy(subentry: ConfigSubentry) -> CloudToy:
    data = subentry.data
    return CloudToy(
        sn=data[CONF_SN],
        key=data[CONF_KEY],
        host=data.get(CONF_HOST, PRODUCTION_HOST),
        port=data.get(CONF_PORT, PORT),
    )


def cloud_subentries(entry: ConfigEntry) -> dict[str, ConfigSubentry]:
    return {i: s for i, s in entry.subentries.items() if s.subentry_type == SUBENTRY_CLOUD_TOY}


def issue_id(kind: str, subentry_id: str) -> str:
    return f"{kind}_{subentry_id}"


@dataclass
class Channel:
    """A started channel: what it was started with, and what it last said of itself."""

    subentry: ConfigSubentry
    toy: CloudToy
    link: Link
    why: str = ""
    # Tries in a row that did not reach FoloToy's cloud.
    unreachable: int = 0


class CloudToys:
    """The entry's cloud toys' channels, by subentry id."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        self._hass = hass
        self._entry = entry
        self.channels: dict[str, Channel] = {}
        # One change at a time: a channel being stopped is not started twice meanwhile.
        self._changing = asyncio.Lock()

    @callback
    def async_start(self) -> None:
        for subentry in cloud_subentries(self._entry).values():
            self._start(subentry)

    async def async_subentries_changed(self) -> list[ConfigSubentry]:
        """Follows the entry's subentries: stops the removed toys' channels, starts the new
        ones', and starts a changed one's again. Returns the subentries removed."""
        async with self._changing:
            return await self._follow()

    async def _follow(self) -> list[ConfigSubentry]:
        current = cloud_subentries(self._entry)
        removed = [c.subentry for i, c in self.channels.items() if i not in current]
        for subentry in removed:
            await self._stop(subentry.subentry_id)
            self._clear_issues(subentry.subentry_id)
        for subentry in current.values():
            started = self.channels.get(subentry.subentry_id)
            if started is None or started.toy != cloud_toy(subentry):
                await self._stop(subentry.subentry_id)
                self._start(subentry)
            else:
                started.subentry = subentry  # a new title
        return removed

    async def async_restart(self, subentry: ConfigSubentry) -> None:
        """A channel started afresh (a new key, or one that stood back when taken over)."""
        async with self._changing:
            await self._stop(subentry.subentry_id)
            self._start(subentry)

    async def async_close(self) -> None:
        for subentry_id in list(self.channels):
            await self._stop(subentry_id)

    def state(self, subentry_id: str) -> tuple[State, str]:
        if (channel := self.channels.get(subentry_id)) is None:
            return State.STOPPED, "stopped"
        return channel.link.state, channel.why

    def link_of(self, sn: str) -> Link | None:
        """The channel of the cloud toy with serial number `sn`, if it is started."""
        return next((c.link for c in self.channels.values() if c.toy.sn == sn), None)

    @callback
    def _start(self, subentry: ConfigSubentry) -> None:
        toy = cloud_toy(subentry)
        subentry_id = subentry.subentry_id

        def asked(question: Question) -> None:
            self._entry.async_create_background_task(
                self._hass,
                cloud_brain.async_answer(self._hass, self._entry, toy.sn, link, question),
                f"folotoy cloud answer {toy.sn}",
            )

        def changed(state: State, why: str) -> None:
            self._changed(subentry, state, why)

        link = Link(toy, on_question=asked, on_state=changed)
        self.channels[subentry_id] = Channel(subentry, toy, link)
        link.start()
        async_dispatcher_send(self._hass, SIGNAL_ADDED.format(self._entry.entry_id), subentry)

    async def _stop(self, subentry_id: str) -> None:
        if (channel := self.channels.pop(subentry_id, None)) is not None:
            # Its answers end first (the apology, the final message), while it can say them.
            await cloud_brain.async_end_answers(channel.link)
            await channel.link.stop()

    @callback
    def _changed(self, subentry: ConfigSubentry, state: State, why: str) -> None:
        subentry_id = subentry.subentry_id
        if (channel := self.channels.get(subentry_id)) is not None:
            channel.why = why
            if state is State.UNREACHABLE:
                channel.unreachable += 1
            elif state is State.CONNECTED:
                channel.unreachable = 0
        _LOGGER.debug("Cloud toy %s: %s (%s)", subentry.data[CONF_SN], state, why)
        if state is State.CONNECTED:
            self._clear_issues(subentry_id)
        elif (kind := ISSUES.get(state)) is not None and (
            state is not State.UNREACHABLE or (channel is not None and channel.unreachable >= UNREACHABLE_AFTER)
        ):
            ir.async_create_issue(
                self._hass,
                DOMAIN,
                issue_id(kind, subentry_id),
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=kind,
                translation_placeholders={"name": subentry.title},
            )
        async_dispatcher_send(self._hass, SIGNAL_STATE.format(self._entry.entry_id, subentry_id), state, why)

    @callback
    def _clear_issues(self, subentry_id: str) -> None:
        for kind in ISSUES.values():
            ir.async_delete_issue(self._hass, DOMAIN, issue_id(kind, subentry_id))


async def async_try(toy: CloudToy, timeout: float = TRY_TIMEOUT) -> State:
    """What FoloToy's cloud says to the toy's key: CONNECTED, REFUSED, or UNREACHABLE (also
    when it has not answered within `timeout`). The config flow asks before it adds a toy."""
    done = asyncio.Event()
    outcome: list[State] = []

    def changed(state: State, why: str) -> None:
        if state in (State.CONNECTED, State.REFUSED, State.UNREACHABLE, State.TAKEN_OVER) and not outcome:
            outcome.append(state)
            done.set()

    def asked(question: Question) -> None:
        # The toy asked in the moment the key was tried: it is not left waiting.
        with contextlib.suppress(ConnectionError):
            link.answer(question, 1, "", finished=True)

    link = Link(toy, on_question=asked, on_state=changed)
    link.start()
    try:
        async with asyncio.timeout(timeout):
            await done.wait()
    except TimeoutError:
        outcome.append(State.UNREACHABLE)
    finally:
        await link.stop()
    return outcome[0]
