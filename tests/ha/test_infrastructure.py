"""Proves the fixtures work: a hand-published MQTT discovery config becomes a HA entity,
its state follows the state topic, and a HA service call publishes on the command topic."""

from __future__ import annotations

import json

import pytest

DEVICE = {
    "identifiers": ["e2e_test_dev"],
    "name": "Test Dev",
    "manufacturer": "FoloToy",
    "model": "E2E",
    "sw_version": "1.0",
}
CONFIG_TOPIC = "homeassistant/number/test_dev/volume/config"
STATE_TOPIC = "e2e/test_dev/volume/state"
COMMAND_TOPIC = "e2e/test_dev/volume/set"


def test_discovered_number_round_trip(homeassistant, mqtt):
    ha = homeassistant
    mqtt.subscribe(COMMAND_TOPIC)
    stream_mark = ha.probe.mark()

    mqtt.publish(
        CONFIG_TOPIC,
        {
            "name": "Volume",
            "unique_id": "e2e_test_dev_volume",
            "default_entity_id": "number.e2e_test_dev_volume",
            "device": DEVICE,
            "command_topic": COMMAND_TOPIC,
            "state_topic": STATE_TOPIC,
            "min": 0,
            "max": 100,
            "step": 1,
            "mode": "slider",
            "unit_of_measurement": "%",
        },
        retain=True,
    )
    try:
        # The entity id comes from default_entity_id; without a retained state it is unknown.
        st = ha.wait_for_state("number.e2e_test_dev_volume", timeout=10)
        assert st["state"] == "unknown"
        assert st["attributes"]["friendly_name"] == "Test Dev Volume"
        assert st["attributes"]["min"] == 0 and st["attributes"]["max"] == 100

        # State topic -> HA state, seen over REST and over mqtt_statestream.
        mqtt.publish(STATE_TOPIC, "35", retain=True)
        ha.wait_for_state("number.e2e_test_dev_volume", state="35")
        ha.wait_for_streamed_state("number.e2e_test_dev_volume", "35", since=stream_mark)
        streamed = ha.streamed("number.e2e_test_dev_volume", since=stream_mark)
        assert streamed["attributes"]["unit_of_measurement"] == "%"
        assert streamed["attributes"]["friendly_name"] == "Test Dev Volume"

        # HA service call -> MQTT command (not retained).
        mark = mqtt.mark()
        ha.call_service("number", "set_value", {"value": 42}, entity_id="number.e2e_test_dev_volume")
        cmd = mqtt.wait_for(COMMAND_TOPIC, since=mark, timeout=5)
        assert cmd.text == "42" and not cmd.retain
        # Not optimistic: the state only changes when the device reports it.
        assert ha.state("number.e2e_test_dev_volume")["state"] == "35"

        # Registries: the entity belongs to the device from the discovery payload.
        entry = ha.entity_entry("number.e2e_test_dev_volume")
        assert entry["unique_id"] == "e2e_test_dev_volume" and entry["platform"] == "mqtt"
        device = ha.device_by_identifier("e2e_test_dev")
        assert device is not None and entry["device_id"] == device["id"]
        assert (device["name"], device["manufacturer"], device["model"], device["sw_version"]) == (
            "Test Dev",
            "FoloToy",
            "E2E",
            "1.0",
        )
    finally:
        # Empty retained config removes the entity (and the device with its last entity).
        mqtt.clear_retained(CONFIG_TOPIC)
        mqtt.clear_retained(STATE_TOPIC)
    ha.wait_for_absent("number.e2e_test_dev_volume")


def test_restart_home_assistant_rediscovers(homeassistant, mosquitto, mqtt):
    """Retained discovery survives a HA restart; HA says online again (birth message)."""
    ha = homeassistant
    topic = "homeassistant/switch/test_dev/power/config"
    mqtt.publish(
        topic,
        {
            "name": "Power",
            "unique_id": "e2e_test_dev_power",
            "device": DEVICE,
            "command_topic": "e2e/test_dev/power/set",
            "state_topic": "e2e/test_dev/power/state",
        },
        retain=True,
    )
    mqtt.publish("e2e/test_dev/power/state", "ON", retain=True)
    try:
        ha.wait_for_state("switch.test_dev_power", state="on")
        mqtt.subscribe(ha.birth_topic)
        mark = mqtt.mark()
        ha.restart()
        mqtt.wait_for(ha.birth_topic, since=mark, predicate=lambda m: m.text == "online")
        # HA's last will / clean shutdown says offline first.
        assert [m.text for m in mqtt.find(ha.birth_topic, since=mark)] == ["offline", "online"]
        ha.wait_for_state("switch.test_dev_power", state="on")
    finally:
        mqtt.clear_retained(topic)
        mqtt.clear_retained("e2e/test_dev/power/state")
    ha.wait_for_absent("switch.test_dev_power")


@pytest.mark.ha_log_allow(r"The connection was lost", r"Disconnected from MQTT server")
def test_restart_broker_reconnects(homeassistant, mosquitto, mqtt):
    """After a broker restart (no persistence: retained configs gone) HA reconnects and
    sends its birth message again; the probe reconnects by itself."""
    ha = homeassistant
    mark = ha.probe.mark()
    mosquitto.restart()
    ha.wait_for_birth(since=mark, timeout=30)
    mqtt.wait_connected()
    mqtt.publish("e2e/ping", json.dumps({"ok": True}))
