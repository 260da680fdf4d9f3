"""Upgrading from the release that published a discovery config per entity: the bridge
moves a toy's entities to one device-based config the way Home Assistant documents, and
the user loses nothing: entity ids (also one the user changed), names the user gave,
disabled entities, device triggers and history.

The old release is replayed from `fixtures/single-component-0.1.0.json`: the configs it
left retained on the broker and the state file it saved, captured from it (see the file's
`captured_from`). That is all of it Home Assistant and the new bridge ever see.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from folotoy_parts import BUNNY, Bridge
from ha_harness import wait_until

# History, which the upgrade must keep.
HA_EXTRA_YAML = "history:\n"

OLD = json.loads((Path(__file__).parent / "fixtures" / "single-component-0.1.0.json").read_text())
DEVICE_TOPIC = f"homeassistant/device/folotoy_{BUNNY}/config"
VOLUME = f"number.folotoy_{BUNNY}_volume"
RECORDING = f"select.folotoy_{BUNNY}_recording_mode"
LAST_ACTIVITY = f"sensor.folotoy_{BUNNY}_last_activity"


def _registry(ha) -> dict[str, dict]:
    """The bridge's entities in Home Assistant's entity registry, by unique id."""
    entries = ha.ws("config/entity_registry/list")
    return {e["unique_id"]: e for e in entries if e["platform"] == "mqtt" and e["unique_id"].startswith("folotoy_")}


def _discovery_topics(ha, identifier: str) -> set[str]:
    """The topics Home Assistant's MQTT integration has the device's entities and
    triggers from (its debug info)."""
    device = ha.device_by_identifier(identifier)
    info = ha.ws("mqtt/device/debug_info", device_id=device["id"])
    found = [e["discovery_data"]["topic"] for e in info["entities"]]
    return set(found + [t["discovery_data"]["topic"] for t in info["triggers"]])


# Home Assistant 2025.10 once (in many runs) failed to set up one of the old release's configs
# as its MQTT platform was being set up: a KeyError for `payload_available` inside its entity's
# init, although its schema gives that default. Not the bridge's doing (the config is the one
# that works every other time); a config it failed on is published again below.
@pytest.mark.ha_log_allow(
    r"Exception in _async_setup_entity_entry_from_discovery when dispatching 'mqtt_discovery_new_"
)
def test_an_install_of_the_release_before_moves_to_one_device_config_keeping_ids_names_and_history(
    homeassistant, mosquitto, mqtt, tmp_path
):
    ha = homeassistant
    mqtt.subscribe("homeassistant/#")
    # The old release at work: its configs retained, the toy at volume 30.
    for topic, payload in OLD["retained"].items():
        mqtt.publish(topic, payload, retain=True)
    mqtt.publish("folotoy/bridge/folotoy", "online", retain=True)
    mqtt.publish(f"folotoy/{BUNNY}/volume", "30", retain=True)
    mqtt.publish("folotoy/bridge/state", "online", retain=True)
    ha.wait_for_state(VOLUME, state="30", timeout=30)
    entities = {
        topic: c
        for topic, c in OLD["retained"].items()
        if "unique_id" in c and not c["unique_id"].endswith("_media_player")
    }
    for attempt in range(3):
        try:
            wait_until(lambda: len(_registry(ha)) == len(entities) or None, 10, "every entity of the old release")
            break
        except TimeoutError:
            if attempt == 2:
                raise
            registered = _registry(ha)
            for topic, config in entities.items():
                if config["unique_id"] not in registered:
                    mqtt.publish(topic, "", retain=True)
                    mqtt.publish(topic, config, retain=True)

    # What a user did with it: a name, an entity id of their own, an entity disabled.
    ha.ws("config/entity_registry/update", entity_id=VOLUME, name="Bunny loudness")
    ha.ws("config/entity_registry/update", entity_id=RECORDING, new_entity_id="select.bunny_recording")
    ha.ws("config/entity_registry/update", entity_id=LAST_ACTIVITY, disabled_by="user")
    wait_until(lambda: ha.state(LAST_ACTIVITY) is None or None, 10, "the disabled entity to go")
    before = _registry(ha)
    triggers_before = ha.ws(
        "device_automation/trigger/list", device_id=ha.device_by_identifier(f"folotoy_{BUNNY}")["id"]
    )
    # The old release stops (its last will); the upgrade starts with its state file.
    mqtt.publish("folotoy/bridge/state", "offline", retain=True)
    ha.wait_for_state(VOLUME, state="unavailable")
    upgraded_at = datetime.now(UTC)
    state = OLD["state"]
    state["toys"][BUNNY]["settings"] = {"volume": 30}
    bridge = Bridge(tmp_path / "bridge", mosquitto)
    bridge.state_file.write_text(json.dumps(state))
    bridge.start()
    try:
        assert "moving this device's entities to one device-based discovery config" in bridge.log_text()
        wait_until(
            lambda: _discovery_topics(ha, f"folotoy_{BUNNY}") == {DEVICE_TOPIC} or None,
            30,
            "Home Assistant to have every entity and trigger of the toy from its device config",
        )
        ha.wait_for_state(VOLUME, state="30")

        after = _registry(ha)
        assert {uid: e["entity_id"] for uid, e in after.items()} == {uid: e["entity_id"] for uid, e in before.items()}
        assert after[f"folotoy_{BUNNY}_volume"]["name"] == "Bunny loudness"
        assert ha.state(VOLUME)["attributes"]["friendly_name"].endswith("Bunny loudness")
        assert ha.state("select.bunny_recording") is not None, "the entity id the user chose"
        assert after[f"folotoy_{BUNNY}_last_activity"]["disabled_by"] == "user"
        assert ha.state(LAST_ACTIVITY) is None, "still disabled"
        assert len(ha.devices_with_identifier(f"folotoy_{BUNNY}")) == 1
        device = ha.device_by_identifier(f"folotoy_{BUNNY}")
        triggers = ha.ws("device_automation/trigger/list", device_id=device["id"])
        said = sorted(t["subtype"] for t in triggers if t["domain"] == "mqtt")
        assert said == sorted(t["subtype"] for t in triggers_before if t["domain"] == "mqtt") == ["child", "toy"]

        # History from before the upgrade, under the same entity id.
        since = quote(datetime.fromtimestamp(time.time() - 600, UTC).isoformat())

        def recorded_before_the_upgrade():
            history = ha.api("GET", f"/api/history/period/{since}?filter_entity_id={VOLUME}")
            old = [s["state"] for s in history[0] if datetime.fromisoformat(s["last_changed"]) < upgraded_at]
            return old if "30" in old else None

        # The recorder writes every few seconds.
        wait_until(recorded_before_the_upgrade, 20, "the volume from before the upgrade in the history")

        # Each old topic was told to migrate, then emptied; the bridge and the server moved too.
        for topic in OLD["retained"]:
            if "/media_player/" not in topic:
                seen = [m.payload for m in mqtt.find(topic)]
                assert seen[-2:] == [b'{"migrate_discovery": true}', b""], (topic, seen)
        assert _discovery_topics(ha, "folotoy_bridge") == {"homeassistant/device/folotoy_bridge/config"}

        # Home Assistant's birth: everything again, nothing moved twice, nothing lost.
        mark = mqtt.mark()
        mqtt.subscribe("folotoy/bridge/state")
        mqtt.publish("homeassistant/status", "online", qos=0)
        mqtt.wait_for(
            "folotoy/bridge/state", since=mark, predicate=lambda m: m.text == "online" and not m.retain, timeout=15
        )
        assert bridge.log_text().count("moving this device's entities") == 3, "the toy, the bridge and the server"
        assert {uid: e["entity_id"] for uid, e in _registry(ha).items()} == {
            uid: e["entity_id"] for uid, e in before.items()
        }
        ha.wait_for_state(VOLUME, state="30")
    finally:
        bridge.close()
