"""The E2E AI: ai_task.e2e_ai."""

from __future__ import annotations

from homeassistant.components.ai_task import AITaskEntity, AITaskEntityFeature, GenDataTask, GenDataTaskResult
from homeassistant.components.conversation import ChatLog
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

SUMMARY = "A calm day."


async def async_setup_entry(
    hass: HomeAssistant, entry: ConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    async_add_entities([E2eAi()])


class E2eAi(AITaskEntity):
    _attr_name = "E2E AI"
    _attr_unique_id = "e2e_ai"
    _attr_supported_features = AITaskEntityFeature.GENERATE_DATA

    async def _async_generate_data(self, task: GenDataTask, chat_log: ChatLog) -> GenDataTaskResult:
        """The summary, then the instructions' last line: the conversation's last exchange."""
        last = task.instructions.strip().splitlines()[-1]
        return GenDataTaskResult(conversation_id=chat_log.conversation_id, data=f"{SUMMARY} Last: {last}")
