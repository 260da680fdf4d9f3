"""The toy's media player in a real Home Assistant, from the project's own integration.

The integration (custom_components/folotoy, linked into the config folder as a user
copies it) is found over MQTT and set up with one click; from then on every toy the
bridge announces has a player, with Home Assistant's voices (an offline engine the
tests provide: tests/ha/e2e_tts) and its media reaching the toy as a URL it can fetch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from conftest import bridge_problems, describe
from folotoy_parts import BUNNY
from ha_harness import wait_until

HA_CUSTOM_COMPONENTS = {"e2e_tts": Path(__file__).parent / "e2e_tts"}
HA_CONFIG_ENTRIES = ("e2e_tts",)
# Bear is listed but never talks: taken off the list, the bridge drops it.
BEAR = "08d1f9c6a310"
BRIDGE_EXTRA_TOYS = {BEAR: "Bear"}

PLAYER = f"media_player.folotoy_{BUNNY}"
BEAR_PLAYER = f"media_player.folotoy_{BEAR}"
VOICE = "tts.e2e_voice"
# Only what the toy can do: PLAY_MEDIA | VOLUME_SET | BROWSE_MEDIA | MEDIA_ANNOUNCE, as
# MediaPlayerEntityFeature numbers them; no pause, stop, next or previous.
FEATURES = 512 | 4 | 131072 | 1048576


def folotoy_flows(ha) -> list[dict]:
    return [f for f in ha.ws("config_entries/flow/progress") if f["handler"] == "folotoy"]


@pytest.fixture(scope="module")
def integration(homeassistant, bridge) -> dict:
    """The one click: the offer Home Assistant made when the bridge's first player config
    arrived, confirmed. Returns the flow as it was offered."""
    flows = wait_until(lambda: folotoy_flows(homeassistant), 30, "Home Assistant to offer the FoloToy integration")
    result = homeassistant.api("POST", f"/api/config/config_entries/flow/{flows[0]['flow_id']}", {})
    assert result["type"] == "create_entry", result
    return {"offered": flows, "result": result}


def test_the_integration_is_offered_once_and_one_click_gives_every_toy_a_player_on_its_device(
    homeassistant, bridge, integration
):
    ha = homeassistant
    assert len(integration["offered"]) == 1, "one offer, however many toys"
    assert integration["offered"][0]["context"]["source"] == "mqtt"
    assert integration["offered"][0]["step_id"] == "confirm"
    for player, sn, name in ((PLAYER, BUNNY, "Bunny"), (BEAR_PLAYER, BEAR, "Bear")):
        state = ha.wait_for_state(player, timeout=20)
        assert state["attributes"]["friendly_name"] == name
        assert state["attributes"]["supported_features"] == FEATURES
        entry = ha.entity_entry(player)
        assert entry["platform"] == "folotoy"
        assert entry["unique_id"] == f"folotoy_{sn}_media_player"
        device = ha.device_by_identifier(f"folotoy_{sn}")
        assert entry["device_id"] == device["id"], "on the toy's own device, beside its MQTT entities"
    ha.wait_for_state(PLAYER, state="idle")
    assert folotoy_flows(ha) == [], "no second offer once set up"


def test_tts_speak_gives_the_toy_an_absolute_url_that_serves_the_speech(homeassistant, integration, toy):
    mark = toy.mark()
    homeassistant.call_service(
        "tts", "speak", {"media_player_entity_id": PLAYER, "message": "Dinner is ready"}, entity_id=VOICE
    )
    cmd = toy.wait_for_command(mark, lambda c: c.identifier == "iwantplay")
    url = cmd.params["url"]
    assert url.startswith(f"{homeassistant.url}/api/tts_proxy/"), url
    audio = requests.get(url, timeout=10)
    assert audio.status_code == 200
    assert audio.content.startswith(b"ID3") and b"Dinner is ready" in audio.content, "the speech of this message"
    homeassistant.wait_for_state(PLAYER, state="playing", attributes={"media_title": "Dinner is ready"})


def test_play_media_with_a_url_plays_it_on_the_toy(homeassistant, integration, toy):
    mark = toy.mark()
    url = "https://example.com/lullaby.mp3"
    homeassistant.call_service(
        "media_player", "play_media", {"media_content_id": url, "media_content_type": "music"}, entity_id=PLAYER
    )
    cmd = toy.wait_for_command(mark, lambda c: c.identifier == "iwantplay")
    assert cmd.params == {"url": url}
    homeassistant.wait_for_state(PLAYER, state="playing", attributes={"media_title": "lullaby.mp3"})


def test_volume_set_reaches_the_toy_and_shows_once_confirmed(homeassistant, integration, toy):
    mark = toy.mark()
    homeassistant.call_service("media_player", "volume_set", {"volume_level": 0.4}, entity_id=PLAYER)
    cmd = toy.wait_for_command(mark, lambda c: c.identifier == "updatecommonconfig")
    assert cmd.params == {"volume": 40}
    homeassistant.wait_for_state(PLAYER, attributes={"volume_level": 0.4})
    homeassistant.wait_for_state(f"number.folotoy_{BUNNY}_volume", state="40")


def test_an_announcement_with_a_volume_plays_at_it_and_puts_the_earlier_volume_back(homeassistant, integration, toy):
    ha = homeassistant
    ha.call_service("media_player", "volume_set", {"volume_level": 0.3}, entity_id=PLAYER)
    ha.wait_for_state(PLAYER, attributes={"volume_level": 0.3})
    mark = toy.mark()
    ha.call_service(
        "media_player",
        "play_media",
        {
            "media_content_id": f"media-source://tts/{VOICE}?message=Bath+time",
            "media_content_type": "music",
            "announce": True,
            "extra": {"volume": 0.6},
        },
        entity_id=PLAYER,
    )
    # Volume 60, the speech, then (about 2 s later, the bridge's guess for two words) 30 again.
    volume = toy.wait_for_command(mark, lambda c: c.identifier == "updatecommonconfig")
    assert volume.params == {"volume": 60}
    played = toy.wait_for_command(mark, lambda c: c.identifier == "iwantplay")
    assert played.params["url"].startswith(f"{ha.url}/api/tts_proxy/")
    restored = toy.wait_for_command(
        mark, lambda c: c.identifier == "updatecommonconfig" and c.params != {"volume": 60}, timeout=15
    )
    assert restored.params == {"volume": 30}, "the volume from before the announcement"
    order = [c.identifier for c in toy.received_since(mark)]
    assert order == ["updatecommonconfig", "iwantplay", "updatecommonconfig"], order
    ha.wait_for_state(PLAYER, attributes={"volume_level": 0.3})


def test_a_media_id_that_is_not_a_url_fails_the_action_with_a_reason(homeassistant, integration, toy):
    mark = toy.mark()
    with pytest.raises(RuntimeError, match="http:// or https://"):
        homeassistant.call_service(
            "media_player",
            "play_media",
            {"media_content_id": "ftp://example.com/a.mp3", "media_content_type": "music"},
            entity_id=PLAYER,
        )
    # A marker after it: the toy got this volume, and nothing before it.
    homeassistant.call_service("media_player", "volume_set", {"volume_level": 0.5}, entity_id=PLAYER)
    marker = toy.wait_for_command(mark, lambda c: c.identifier == "updatecommonconfig")
    assert toy.received_since(mark)[0] is marker, "the refused media never reached the toy"


def test_the_player_is_unavailable_while_the_bridge_is_down(homeassistant, integration, bridge):
    bridge.stop()
    homeassistant.wait_for_state(PLAYER, state="unavailable")
    bridge.start()
    homeassistant.wait_for_state(PLAYER, state="idle")


def test_a_toy_taken_off_the_bridge_loses_its_player_and_device(homeassistant, integration, bridge):
    ha = homeassistant
    assert ha.state(BEAR_PLAYER) is not None
    bridge.write_config()  # Bunny only: Bear, never heard from, is dropped
    bridge.restart()
    wait_until(lambda: ha.state(BEAR_PLAYER) is None, 20, "Bear's player to go")
    wait_until(lambda: ha.device_by_identifier(f"folotoy_{BEAR}") is None, 20, "Bear's device to go")
    with pytest.raises(RuntimeError, match="not found"):
        ha.entity_entry(BEAR_PLAYER)
    assert ha.state(PLAYER)["state"] == "idle", "Bunny keeps its player"


def test_home_assistant_logged_no_warning_about_the_bridge_or_the_integration(homeassistant, bridge):
    """Over the whole run of this module: set-up, every action, the restarts, the removal."""
    problems = bridge_problems(homeassistant, since=0)
    assert not problems, describe(problems)
