"""The E2E voice: tts.e2e_voice."""

from __future__ import annotations

from typing import Any

from homeassistant.components.tts import TextToSpeechEntity, TtsAudioType
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback


def speech(message: str) -> bytes:
    """An MP3 file: an ID3v2 title holding the message, then one silent MPEG-1 Layer III
    frame (128 kbit/s, 44.1 kHz: 417 bytes, all-zero side information is silence).

    MP3, because that is what Home Assistant serves TTS as by default: any other format
    would be converted with ffmpeg, which the test machine does not need for anything else."""
    text = b"\x03" + message.encode()  # UTF-8
    frame = b"TIT2" + len(text).to_bytes(4, "big") + b"\x00\x00" + text
    size = len(frame)
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x04\x00\x00" + syncsafe + frame + b"\xff\xfb\x90\x64" + bytes(413)


async def async_setup_entry(
    hass: HomeAssistant, entry: ConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    async_add_entities([E2eVoice()])


class E2eVoice(TextToSpeechEntity):
    _attr_name = "E2E voice"
    _attr_unique_id = "e2e_voice"
    _attr_default_language = "en"
    _attr_supported_languages = ("en",)

    def get_tts_audio(self, message: str, language: str, options: dict[str, Any]) -> TtsAudioType:
        return "mp3", speech(message)
