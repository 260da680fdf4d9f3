"""The toy's media player in a real Home Assistant, from the project's own integration.

The integration (custom_components/folotoy, linked into the config folder as a user
copies it) is found over MQTT and set up with one click; from then on every toy the
bridge announces has a player, with Home Assistant's voices (an offline engine the
tests provide: tests/ha/e2e_tts) and its media reaching the toy as a URL it can fetch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from conftest import BROKER_LOST, bridge_problems, describe
from folotoy_parts import BUNNY, folotoy_flows
from ha_harness import wait_until

HA_CUSTOM_COMPONENTS = {
    "e2e_tts": Path(__file__).parent / "e2e_tts",
    "e2e_legacy": Path(__file__).parent / "e2e_legacy",
}
HA_EXTRA_YAML = "e2e_legacy:\n"
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
# Warnings a test provokes on purpose.
PROVOKED = (r"Ignoring the media player config on homeassistant/folotoy/folotoy_broken\w*/",)


def test_adding_it_by_hand_while_it_is_offered_asks_for_the_prefix_and_refuses_an_empty_or_wildcard_one(
    homeassistant, bridge
):
    """The README's step 2 says either way works: the hand-made flow goes on beside the
    offer (and would end it by making the entry)."""
    ha = homeassistant
    wait_until(lambda: folotoy_flows(ha), 30, "Home Assistant to offer the FoloToy integration")
    flow = ha.api("POST", "/api/config/config_entries/flow", {"handler": "folotoy"})
    assert flow["type"] == "form" and flow["step_id"] == "user", flow
    try:
        for prefix, error in (
            ("", "empty_prefix"),
            (" / ", "empty_prefix"),
            ("home/+", "wildcard_prefix"),
            ("#", "wildcard_prefix"),
        ):
            result = ha.api("POST", f"/api/config/config_entries/flow/{flow['flow_id']}", {"discovery_prefix": prefix})
            assert result["type"] == "form", f"{prefix!r} was taken: {result}"
            assert result["errors"] == {"discovery_prefix": error}, result
    finally:
        ha.api("DELETE", f"/api/config/config_entries/flow/{flow['flow_id']}")
    assert [f["context"]["source"] for f in folotoy_flows(ha)] == ["mqtt"], "the offer is still open"


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
        toy_devices = ha.devices_with_identifier(f"folotoy_{sn}")
        assert len(toy_devices) == 1, f"one device for {name}: {toy_devices}"
        volume = ha.entity_entry(f"number.folotoy_{sn}_volume")
        assert entry["device_id"] == volume["device_id"] == toy_devices[0]["id"], "on the toy's own device"
    ha.wait_for_state(PLAYER, state="idle")
    assert folotoy_flows(ha) == [], "no second offer once set up"
    entry_id = integration["result"]["result"]["entry_id"]
    assert ha.devices_of_entry(entry_id) == [], "the integration owns no device: the toys' are MQTT's"


def test_a_registry_an_older_version_left_is_cleaned_up_keeping_the_players_id_and_name(homeassistant, integration):
    """Older versions declared MQTT's identifiers as the player's device: from 2026.8 that
    made a second device "Bunny" owned by this integration, before it shared MQTT's. The
    integration's next start leaves such devices; the player keeps what the user gave it."""
    ha = homeassistant
    entry_id = integration["result"]["result"]["entry_id"]
    ha.wait_for_state(PLAYER)
    ha.ws("config/entity_registry/update", entity_id=PLAYER, name="Bunny's speaker")
    ha.call_service("e2e_legacy", "attach_like_before", {"node": f"folotoy_{BUNNY}", "name": "Bunny"})
    assert ha.devices_of_entry(entry_id), "the state older versions left: a device of the integration's"
    ha.api("POST", f"/api/config/config_entries/entry/{entry_id}/reload")

    def one_device() -> bool:
        return not ha.devices_of_entry(entry_id) and len(ha.devices_with_identifier(f"folotoy_{BUNNY}")) == 1

    wait_until(one_device, 20, "one device for Bunny, none of the integration's")
    volume = ha.entity_entry(f"number.folotoy_{BUNNY}_volume")
    on_toy = lambda: ha.entity_entry(PLAYER)["device_id"] == volume["device_id"]  # noqa: E731
    wait_until(on_toy, 20, "the player on the toy's device")
    assert ha.entity_entry(PLAYER)["name"] == "Bunny's speaker", "what the user named it stays"
    ha.wait_for_state(PLAYER, state="idle")
    ha.ws("config/entity_registry/update", entity_id=PLAYER, name=None)


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


def test_tts_speak_plays_at_the_announcement_volume_set_for_the_toy(homeassistant, integration, toy):
    ha = homeassistant
    ha.call_service("media_player", "volume_set", {"volume_level": 0.3}, entity_id=PLAYER)
    ha.wait_for_state(PLAYER, attributes={"volume_level": 0.3})
    setting = f"number.folotoy_{BUNNY}_announcement_volume"
    ha.call_service("number", "set_value", {"value": 70}, entity_id=setting)
    ha.wait_for_state(setting, state="70")
    try:
        mark = toy.mark()
        ha.call_service("tts", "speak", {"media_player_entity_id": PLAYER, "message": "Dinner"}, entity_id=VOICE)
        restored = toy.wait_for_command(mark, lambda c: c.params == {"volume": 30}, timeout=15)
        sent = [c.params if c.identifier == "updatecommonconfig" else c.identifier for c in toy.received_since(mark)]
        assert sent == [{"volume": 70}, "iwantplay", restored.params], sent
    finally:
        ha.call_service("number", "set_value", {"value": 0}, entity_id=setting)


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


@pytest.mark.ha_log_allow(*PROVOKED)
def test_configs_that_are_not_the_bridges_make_no_player(homeassistant, integration, mqtt):
    ha = homeassistant
    bunny = json.loads(mqtt_retained(mqtt, f"homeassistant/folotoy/folotoy_{BUNNY}/media_player/config").payload)
    foreign = {**bunny, "unique_id": "foreign_player", "default_entity_id": "media_player.foreign"}
    foreign["origin"] = {"name": "someone-else"}
    broken = {"origin": bunny["origin"], "name": "Broken"}
    deep = "[" * 100_000 + "]" * 100_000  # Python's own json would raise RecursionError
    # A player made from the bridge's own config, published after the others: once it is
    # there, the two before it were read too. It joins its toy's device once MQTT
    # discovery has made that device, from a config published after the player's.
    marker = {**bunny, "unique_id": "marker_player", "default_entity_id": "media_player.marker"}
    marker["device"] = {**bunny["device"], "identifiers": ["folotoy_marker"], "name": "Marker"}
    marker_sensor = {
        "name": "Marker",
        "unique_id": "marker_sensor",
        "state_topic": "e2e/marker/state",
        "device": marker["device"],
    }
    topics = {
        "foreign": "homeassistant/folotoy/folotoy_foreign/media_player/config",
        "broken": "homeassistant/folotoy/folotoy_broken/media_player/config",
        "deep": "homeassistant/folotoy/folotoy_broken_deep/media_player/config",
        "marker": "homeassistant/folotoy/folotoy_marker/media_player/config",
        "marker_sensor": "homeassistant/sensor/folotoy_marker/marker/config",
    }
    try:
        mark = ha.log.mark()
        mqtt.publish(topics["foreign"], foreign, retain=True)
        mqtt.publish(topics["broken"], broken, retain=True)
        mqtt.publish(topics["deep"], deep, retain=True)
        mqtt.publish(topics["marker"], marker, retain=True)
        mqtt.publish(topics["marker_sensor"], marker_sensor, retain=True)
        ha.wait_for_state("media_player.marker")
        device = ha.device_by_identifier("folotoy_marker")
        assert ha.entity_entry("media_player.marker")["device_id"] == device["id"], "on MQTT's device, made later"
        assert ha.state("media_player.foreign") is None, "another publisher's config is not the bridge's"

        def warned() -> list[str]:
            return [r.message for r in ha.log.records(since=mark) if r.level == "WARNING"]

        # Written by Home Assistant's log thread, a moment after.
        wait_until(lambda: any("folotoy_broken/" in w and "missing" in w for w in warned()), 10, "the warning")
        wait_until(lambda: any("folotoy_broken_deep/" in w and "not JSON" in w for w in warned()), 10, "the warning")
    finally:
        for topic in topics.values():
            mqtt.publish(topic, "", retain=True)
    wait_until(lambda: ha.state("media_player.marker") is None, 10, "an emptied config to remove its player")


def mqtt_retained(mqtt, topic: str):
    mqtt.subscribe(topic)
    return mqtt.wait_for(topic)


def test_a_player_deleted_in_home_assistant_comes_back_when_the_bridge_announces_the_toy_again(
    homeassistant, integration, bridge
):
    ha = homeassistant
    ha.ws("config/entity_registry/remove", entity_id=PLAYER)
    wait_until(lambda: ha.state(PLAYER) is None, 10, "the player to be deleted")
    bridge.restart()
    ha.wait_for_state(PLAYER, state="idle", timeout=20)
    assert ha.entity_entry(PLAYER)["platform"] == "folotoy"


def test_the_player_is_unavailable_while_the_bridge_is_down(homeassistant, integration, bridge):
    bridge.stop()
    homeassistant.wait_for_state(PLAYER, state="unavailable")
    bridge.start()
    homeassistant.wait_for_state(PLAYER, state="idle")


@pytest.mark.ha_log_allow(*BROKER_LOST)
def test_the_player_is_unavailable_while_home_assistants_broker_is_down_and_back_after(
    homeassistant, integration, mosquitto
):
    """Home Assistant's own connection to the broker, with the integration loaded: the
    player follows it (and Home Assistant logs no error from the integration, which the
    log guard checks)."""
    ha = homeassistant
    ha.wait_for_state(PLAYER, state="idle")
    mark = ha.probe.mark()
    mosquitto.stop()
    try:
        ha.wait_for_state(PLAYER, state="unavailable", timeout=30)
    finally:
        mosquitto.start()
    # Home Assistant is back once it announced itself again (its subscriptions made).
    ha.wait_for_birth(since=mark, timeout=60)
    ha.wait_for_state(PLAYER, state="idle", timeout=60)


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
    problems = bridge_problems(homeassistant, since=0, allow=PROVOKED + BROKER_LOST)
    assert not problems, describe(problems)
