"""A cloud toy's question, answered: replaced by the cloudbrain branch."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from .cloud import Link, Question


async def async_answer(hass: HomeAssistant, entry: ConfigEntry, sn: str, link: Link, question: Question) -> None:
    """Answers `question` of the cloud toy `sn` on `link`: replaced by the cloudbrain branch
    (until then, only the final empty message, so that the toy is not left waiting)."""
    link.answer(question, 1, "", finished=True)
