"""The E2E AI's conversation agent, conversation.e2e_ai: the answers the chat endpoint's
tests need, streamed a piece at a time as a real model's are, with no model.

- "tell me a story": three sentences, a moment apart;
- "say something sharp": an answer holding the watch word "knife" in its second sentence;
- "break" (or "坏了"): raises, as an agent whose service is down does;
- "be slow": turns on the kitchen lamp after 20 s (later than the chat endpoint waits), then
  answers;
- "say something sharp and turn on the lamp": the watch word in its second sentence, then a
  moment later it turns on the kitchen lamp and goes on;
- "wait for me ...": answers once the action e2e_ai.release is called (sensor.e2e_agent_waiting
  counts the turns waiting);
- "where am i": the area of the device it was asked from, as an LLM agent is told it;
- "tell me everything": markdown (a title, bold, a link), then the same sentence over and
  over, far longer than a toy should read out;
- anything else: what it was asked, and the extra instructions it got (the role's prompt).

sensor.e2e_agent_turn says where the last turn is, with its text: "started", "acted" once it
has turned the lamp on, "cancelled" when it was stopped (before it did); a test waits on it to
know the agent will do nothing more.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from homeassistant.components import conversation
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

STORY = ["Once upon a time, a dragon lived by the sea. ", "It learned to fly. ", "The end."]
SHARP = ["Let me think. ", "Here is a knife for you. ", "Be careful."]
EVERYTHING = [
    "# All about **rabbits**\n",
    "Rabbits [hop](https://example.com/rabbits). ",
    *["Rabbits like carrots and they hop all day long in the green fields. "] * 30,
]
LAMP = "light.kitchen_lamp"
TURN = "sensor.e2e_agent_turn"
WAITING = "sensor.e2e_agent_waiting"


async def async_setup_entry(
    hass: HomeAssistant, entry: ConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    released = asyncio.Event()

    async def release(call: ServiceCall) -> None:
        released.set()  # wakes every turn waiting now, and none later
        released.clear()

    hass.services.async_register("e2e_ai", "release", release)
    async_add_entities([E2eAgent(released)])


class E2eAgent(conversation.ConversationEntity):
    _attr_name = "E2E agent"
    _attr_unique_id = "e2e_agent"
    _attr_supports_streaming = True

    def __init__(self, released: asyncio.Event) -> None:
        self.released = released
        self.waiting = 0

    @property
    def supported_languages(self) -> str:
        return "*"

    async def _async_handle_message(
        self, user_input: conversation.ConversationInput, chat_log: conversation.ChatLog
    ) -> conversation.ConversationResult:
        text = user_input.text.strip().lower()
        self.hass.states.async_set(TURN, "started", {"text": text})
        try:
            return await self._answer(text, user_input, chat_log)
        except asyncio.CancelledError:
            self.hass.states.async_set(TURN, "cancelled", {"text": text})
            raise

    async def _answer(
        self, text: str, user_input: conversation.ConversationInput, chat_log: conversation.ChatLog
    ) -> conversation.ConversationResult:
        if text in ("break", "坏了"):
            raise HomeAssistantError("the E2E agent broke")
        if text == "be slow":
            await asyncio.sleep(20)
            await self._turn_on_the_lamp(text)
        if text.startswith("wait for me"):
            await self._wait_for_release()
        lamp_after = None
        if text == "tell me a story":
            parts = STORY
        elif text == "say something sharp":
            parts = SHARP
        elif text == "say something sharp and turn on the lamp":
            parts, lamp_after = SHARP, 2
        elif text.startswith("wait for me"):
            parts = ["Thanks for waiting."]
        elif text == "tell me everything":
            parts = EVERYTHING
        elif text == "where am i":
            parts = [f"In {self._area(user_input.device_id)}."]
        else:
            parts = [f"You said: {user_input.text}. ", f"Instructions: {user_input.extra_system_prompt}"]

        async def stream() -> AsyncIterator[conversation.AssistantContentDeltaDict]:
            yield {"role": "assistant"}
            for i, part in enumerate(parts):
                if i == lamp_after:
                    await asyncio.sleep(5)
                    await self._turn_on_the_lamp(text)
                await asyncio.sleep(0.3 if parts is not EVERYTHING else 0.05)
                yield {"content": part}

        async for _ in chat_log.async_add_delta_content_stream(self.entity_id, stream()):
            pass
        return conversation.async_get_result_from_chat_log(user_input, chat_log)

    async def _turn_on_the_lamp(self, text: str) -> None:
        await self.hass.services.async_call("light", "turn_on", {"entity_id": LAMP}, blocking=True)
        self.hass.states.async_set(TURN, "acted", {"text": text})

    async def _wait_for_release(self) -> None:
        self.waiting += 1
        self.hass.states.async_set(WAITING, str(self.waiting))
        try:
            await self.released.wait()
        finally:
            self.waiting -= 1
            self.hass.states.async_set(WAITING, str(self.waiting))

    def _area(self, device_id: str | None) -> str:
        device = dr.async_get(self.hass).async_get(device_id) if device_id else None
        area = ar.async_get(self.hass).async_get_area(device.area_id) if device and device.area_id else None
        return area.name if area else "no room I know"
