"""What the child says and what the toy answers, in a real Home Assistant: the Heard and Said
sensors, the Conversation event, Last activity and the device triggers automations use; watch
words and the Alert event, and the blueprint that tells a parent.

The FoloToy server's events are published by the test itself, with the payloads the server
sends on /sys/folotoy/<sn>/thing/event/post.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime

import pytest

from folotoy_parts import BUNNY, child_says, toy_says
from ha_harness import free_port, wait_until

HEARD = f"sensor.folotoy_{BUNNY}_heard"
SAID = f"sensor.folotoy_{BUNNY}_said"
CONVERSATION = f"event.folotoy_{BUNNY}_conversation"
LAST_ACTIVITY = f"sensor.folotoy_{BUNNY}_last_activity"
CONVERSATION_TOPIC = f"folotoy/{BUNNY}/conversation"
ALERT = f"event.folotoy_{BUNNY}_alert"
ALERT_TOPIC = f"folotoy/{BUNNY}/alert"

# The page, where a parent turns the ready watch lists on.
PAGE_PORT = free_port()

# "knife" in anyone's words, "刀" in the child's, "stupid" in the toy's.
BRIDGE_EXTRA_YAML = f"""\
watch_words:
  - knife
  - {{phrase: 刀, side: child}}
  - {{phrase: stupid, side: toy}}
web:
  enabled: true
  port: {PAGE_PORT}
"""

# The automation editor saves into automations.yaml; helpers record what triggered.
HA_EXTRA_YAML = """
automation: !include automations.yaml
input_text:
  child_said:
    name: Child said
    max: 255
  toy_said:
    name: Toy said
    max: 255
  alert_message:
    name: Alert message
    max: 255
  urgent_alert:
    name: Urgent alert
    max: 255
counter:
  baths:
    name: Baths
"""
HA_FILES = {"automations.yaml": "[]\n"}


@pytest.fixture(scope="module")
def toy_device(homeassistant, bridge, mosquitto) -> dict:
    """Bunny's device, once Home Assistant has discovered its conversation entities and
    listens for Conversation and Alert events (they are not retained: one sent earlier is lost)."""
    homeassistant.wait_for_state(CONVERSATION)
    homeassistant.wait_for_state(ALERT)
    mosquitto.wait_for_subscription(CONVERSATION_TOPIC)
    mosquitto.wait_for_subscription(ALERT_TOPIC)
    return homeassistant.device_by_identifier(f"folotoy_{BUNNY}")


def test_what_the_child_says_shows_in_heard_and_fires_a_heard_event(homeassistant, toy_device, mqtt):
    ha = homeassistant
    child_says(mqtt, 7, "bath")
    heard = ha.wait_for_state(HEARD, state="bath")
    assert (heard["attributes"]["text"], heard["attributes"]["recording_id"]) == ("bath", 7)
    event = ha.wait_for_state(CONVERSATION, attributes={"event_type": "heard", "recording_id": 7})
    assert event["attributes"]["text"] == "bath"
    assert event["attributes"]["event_types"] == ["heard", "said"]
    activity = ha.wait_for_state(LAST_ACTIVITY, predicate=lambda s: s["state"] not in ("unknown", "unavailable"))
    assert datetime.fromisoformat(activity["state"]).tzinfo is not None


def test_a_long_sentence_is_cut_in_the_state_and_kept_whole_in_the_text_attribute(homeassistant, toy_device, mqtt):
    """Home Assistant rejects states over 255 characters; the sensor must still update."""
    ha = homeassistant
    long = "Tell me the story of the dragon who could not fly, and then the one about the bunny. " * 4
    assert len(long) > 255
    child_says(mqtt, 8, long)
    heard = ha.wait_for_state(HEARD, attributes={"recording_id": 8})
    assert len(heard["state"]) == 255 and long.startswith(heard["state"][:-1])
    assert heard["attributes"]["text"] == long
    ha.wait_for_state(CONVERSATION, attributes={"event_type": "heard", "text": long})


def test_what_the_toy_answers_shows_in_said_and_fires_said_events(homeassistant, toy_device, mqtt):
    ha = homeassistant
    child_says(mqtt, 9, "Can you tell me a story about a dragon?")
    toy_says(mqtt, 9, 1, "Once upon a time, a small dragon", role=2)
    toy_says(mqtt, 9, 2, " learned to fly.", role=2)
    said = ha.wait_for_state(SAID, state="Once upon a time, a small dragon learned to fly.")
    assert said["attributes"]["recording_id"] == 9 and said["attributes"]["role"] == 2
    assert said["attributes"]["voice_urls"] == [
        "http://folotoy.local/voice-9-1.mp3",
        "http://folotoy.local/voice-9-2.mp3",
    ]
    ha.wait_for_state(CONVERSATION, attributes={"event_type": "said", "recording_id": 9, "order": 2})


def _alert_attribute_since(ha, attribute: str, mark: int) -> list:
    """Attribute `attribute` of every state the Alert entity had after probe mark `mark`, in
    order: mqtt_statestream publishes each state's attributes, also of states that lasted a
    moment."""
    topic = f"{ha.STATESTREAM_BASE}/event/folotoy_{BUNNY}_alert/{attribute}"
    return [m.json() for m in ha.probe.find(topic, mark)]


def test_a_watch_word_the_child_says_fires_the_alert_event_and_other_words_do_not(homeassistant, toy_device, mqtt):
    ha = homeassistant
    entry = ha.entity_entry(ALERT)
    assert (entry["original_name"], entry["device_id"]) == ("Alert", toy_device["id"])
    assert ha.state(ALERT)["attributes"]["event_types"] == ["child_said", "toy_said", "limit_reached"]
    mark = ha.probe.mark()
    # Misses first: "knife" is a whole word, and "刀" is watched in the child's words only.
    child_says(mqtt, 50, "Look at my penknife")
    toy_says(mqtt, 50, 1, "我有一把刀")
    # Then a hit. The bridge and Home Assistant take the toy's events in the order they
    # were sent, so an alert for a miss would be shown before this one.
    child_says(mqtt, 51, "这把刀很锋利")
    alert = ha.wait_for_state(ALERT, attributes={"event_type": "child_said", "recording_id": 51})
    attributes = alert["attributes"]
    assert (attributes["phrase"], attributes["phrases"], attributes["sentence"]) == ("刀", ["刀"], "这把刀很锋利")
    wait_until(lambda: _alert_attribute_since(ha, "recording_id", mark), 10, "mqtt_statestream to show the alert")
    assert _alert_attribute_since(ha, "recording_id", mark) == [51], "a sentence without a watch word fired an alert"


def test_a_watch_word_the_toy_says_fires_a_toy_said_alert_with_the_sentence_order_and_role(
    homeassistant, toy_device, mqtt
):
    ha = homeassistant
    toy_says(mqtt, 52, 1, "Once upon a time,", role=2)
    toy_says(mqtt, 52, 2, " a stupid knife.", role=2)
    alert = ha.wait_for_state(ALERT, attributes={"event_type": "toy_said", "recording_id": 52})
    attributes = alert["attributes"]
    assert (attributes["phrase"], attributes["phrases"]) == ("knife", ["knife", "stupid"])
    assert (attributes["sentence"], attributes["order"], attributes["role"]) == ("a stupid knife.", 2, 2)


def test_the_toy_offers_child_said_and_toy_said_device_triggers(homeassistant, toy_device):
    triggers = homeassistant.device_triggers(toy_device["id"])
    said = sorted((t["type"], t["subtype"]) for t in triggers if t.get("domain") == "mqtt")
    assert said == [("said", "child"), ("said", "toy")]


def _create_automation(ha, automation_id: str, trigger: dict, helper: str) -> str:
    """Save an automation through the automation editor's API (what the UI does) and wait
    until it is on. It writes what triggered it into an input_text helper."""
    ha.api(
        "POST",
        f"/api/config/automation/config/{automation_id}",
        {
            "alias": automation_id.replace("_", " "),
            "triggers": [trigger],
            "actions": [
                {
                    "action": "input_text.set_value",
                    "target": {"entity_id": helper},
                    "data": {"value": "{{ trigger.payload_json.text }}"},
                }
            ],
            "mode": "queued",
        },
    )
    entity_id = f"automation.{automation_id}"
    ha.wait_for_state(entity_id, state="on")
    return entity_id


def test_an_automation_on_a_device_trigger_runs_when_the_child_speaks(homeassistant, toy_device, mqtt):
    ha = homeassistant
    triggers = {t["subtype"]: t for t in ha.device_triggers(toy_device["id"]) if t.get("domain") == "mqtt"}
    _create_automation(ha, "when_bunny_hears", triggers["child"], "input_text.child_said")
    _create_automation(ha, "when_bunny_answers", triggers["toy"], "input_text.toy_said")

    child_says(mqtt, 10, "I want a bath")
    ha.wait_for_state("input_text.child_said", state="I want a bath")
    toy_says(mqtt, 10, 1, "Bath time!")
    ha.wait_for_state("input_text.toy_said", state="Bath time!")
    assert ha.state("input_text.child_said")["state"] == "I want a bath", "the child trigger fired for the toy"


def test_the_phrase_blueprint_acts_once_when_the_child_says_the_phrase_and_not_again_after_a_bridge_restart(
    homeassistant, toy_device, bridge, mqtt
):
    ha = homeassistant
    ha.automation_from_blueprint(
        "act_on_phrase.yaml",
        "bath_time",
        "Bath time",
        {
            "conversation": CONVERSATION,
            "phrase": "bath",
            "when_heard": [{"action": "counter.increment", "target": {"entity_id": "counter.baths"}}],
        },
    )

    child_says(mqtt, 20, "Hello bunny")
    ha.wait_for_state(HEARD, state="Hello bunny")
    child_says(mqtt, 21, "I want a BATH now")
    ha.wait_for_state("counter.baths", state="1")

    # The event entity shows its last event again when it comes back: that
    # must not count as the child speaking.
    bridge.stop()
    ha.wait_for_state(CONVERSATION, state="unavailable")
    bridge.start()
    ha.wait_for_state(CONVERSATION, predicate=lambda s: s["state"] not in ("unavailable", "unknown"))
    # A marker after it: the child says "bath" again. Runs start in the order of their
    # triggers, so once the run this caused is listed, any run the comeback caused is too.
    sent_at = datetime.now().astimezone()
    child_says(mqtt, 22, "bath please")

    def runs() -> list[dict]:
        """Every run of the automation, also those its phrase condition stopped."""
        return ha.ws("trace/list", domain="automation", item_id="bath_time")

    wait_until(
        lambda: any(datetime.fromisoformat(t["timestamp"]["start"]) >= sent_at for t in runs()),
        10,
        "the automation's run for the marker",
    )
    ha.wait_for_state("counter.baths", state="2")
    acted = [t for t in runs() if t["last_step"].startswith("action")]
    assert len(acted) == 2, "the automation acted when the Conversation entity came back, without anyone speaking"


def test_the_watch_word_blueprint_tells_a_parent_what_the_child_and_the_toy_said(homeassistant, toy_device, mqtt):
    ha = homeassistant
    # One automation as a parent would make it, with the blueprint's defaults: a notification
    # in Home Assistant for either side. Another with an action of its own (in place of a
    # phone's notify action), for the child's words only.
    automations = {
        "watch_words": {"alert": [ALERT]},
        "watch_the_child": {
            "alert": [ALERT],
            "sides": ["child_said"],
            "notify": [
                {
                    "action": "input_text.set_value",
                    "target": {"entity_id": "input_text.alert_message"},
                    "data": {"value": "{{ message }}"},
                }
            ],
        },
    }
    for automation_id, inputs in automations.items():
        ha.automation_from_blueprint(
            "notify_on_watch_word.yaml", automation_id, automation_id.replace("_", " "), inputs
        )

    child_says(mqtt, 60, "I found a KNIFE")
    ha.wait_for_state("input_text.alert_message", state="Bunny heard 'knife': I found a KNIFE")
    wait_until(
        lambda: ("Bunny", "Bunny heard 'knife': I found a KNIFE") in ha.notifications(), 10, "the child's notification"
    )
    toy_says(mqtt, 60, 1, "Put the knife down.")
    wait_until(
        lambda: ("Bunny", "Bunny said 'knife': Put the knife down.") in ha.notifications(), 10, "the toy's notification"
    )

    def runs() -> list[dict]:
        return ha.ws("trace/list", domain="automation", item_id="watch_the_child")

    wait_until(lambda: len(runs()) == 2, 10, "the child-only automation's run for the toy's alert")
    steps = sorted(t["last_step"].split("/")[0] for t in runs())
    assert steps == ["action", "condition"], f"the toy's words must stop at the condition: {runs()}"
    assert ha.state("input_text.alert_message")["state"] == "Bunny heard 'knife': I found a KNIFE"


def _choose_lists(choices: dict) -> None:
    """What the page's Watch words tab sends when a parent turns ready lists on."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{PAGE_PORT}/api/watch_lists",
        data=json.dumps(choices).encode(),
        method="PUT",
        headers={"Content-Type": "application/json", "X-FoloToy-Page": "watch-lists"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def test_the_watch_word_blueprint_sends_a_distress_alert_as_a_critical_notification(homeassistant, toy_device, mqtt):
    ha = homeassistant
    _choose_lists({"distress": {"all": True}})
    # The phone's notify action as a parent would write it, here recording what it would send.
    ha.automation_from_blueprint(
        "notify_on_watch_word.yaml",
        "urgent_watch",
        "urgent watch",
        {
            "alert": [ALERT],
            "notify": [
                {
                    "action": "input_text.set_value",
                    "target": {"entity_id": "input_text.urgent_alert"},
                    "data": {"value": "{{ category }} {{ urgent }} {{ notification_data | tojson }}"},
                }
            ],
        },
    )
    try:
        child_says(mqtt, 70, "Nobody loves me")
        ha.wait_for_state("input_text.urgent_alert", predicate=lambda s: s["state"].startswith("distress "))
        category, urgent, data = ha.state("input_text.urgent_alert")["state"].split(" ", 2)
        assert (category, urgent) == ("distress", "True")
        assert json.loads(data) == {
            "push": {"sound": {"name": "default", "critical": 1, "volume": 1.0}},
            "ttl": 0,
            "priority": "high",
            "channel": "alarm_stream",
        }
        # A parent's own watch word is not urgent by default: an ordinary notification.
        child_says(mqtt, 71, "I found a KNIFE")
        ha.wait_for_state("input_text.urgent_alert", state="own False {}")
    finally:
        _choose_lists({})


# Home Assistant's own, not the bridge's (which leaves the device's config alone then): each
# of the device's entities empties the device's config as it goes, and every empty payload
# after the first finds no component left (Home Assistant 2026.11's MQTT, entity.py).
@pytest.mark.ha_log_allow(r"No device components to cleanup for folotoy_0a1b2c3d4e5f")
def test_a_toy_deleted_in_home_assistant_stays_deleted_when_it_talks_and_home_assistant_comes_back(
    homeassistant, toy_device, bridge, mqtt
):
    ha = homeassistant
    visitor = "0a1b2c3d4e5f"  # not listed: it appears by itself when it talks

    def visitor_says(recording_id: int, text: str) -> None:
        mqtt.publish(
            f"/sys/folotoy/{visitor}/thing/event/post",
            {
                "msgId": recording_id,
                "identifier": "recording_transcribed",
                "inputParams": {"recordingId": recording_id, "recordingText": text},
            },
        )

    visitor_says(30, "Hi")
    ha.wait_for_state(f"sensor.folotoy_{visitor}_heard", state="Hi")
    device = ha.device_by_identifier(f"folotoy_{visitor}")
    # What the device page's Delete does.
    ha.ws(
        "config/device_registry/remove_config_entry",
        device_id=device["id"],
        config_entry_id=device["config_entries"][0],
    )
    wait_until(lambda: ha.device_by_identifier(f"folotoy_{visitor}") is None, 10, "the device to be deleted")
    # Home Assistant's emptied configs and the next sentence reach the bridge on two
    # connections, in either order: it is refused only once the bridge took in the deletion.
    wait_until(
        lambda: f"toy {visitor} was deleted in Home Assistant: forgotten" in bridge.log_text(),
        10,
        "the bridge to forget the deleted toy",
    )

    # It talks again, and Home Assistant announces itself, after which the
    # bridge publishes everything again: the toy must stay deleted.
    # Its device's config, and its media player's.
    configs = [f"homeassistant/device/folotoy_{visitor}/config", f"homeassistant/+/folotoy_{visitor}/+/config"]
    for topic in configs:
        mqtt.subscribe(topic)
    mqtt.subscribe("folotoy/bridge/state")
    mark = mqtt.mark()
    visitor_says(31, "Still here")
    wait_until(lambda: f"toy {visitor} ignored: it was deleted" in bridge.log_text(), 10, "the bridge to refuse it")
    mqtt.publish("homeassistant/status", "online", qos=0)
    # The republish ends with `online`, after every config it publishes (one connection,
    # in order): once it is here, a config for the visitor would have come before it. Sent
    # live, so not flagged retained, unlike the copy the subscription brought.
    mqtt.wait_for(
        "folotoy/bridge/state", since=mark, predicate=lambda m: m.text == "online" and not m.retain, timeout=15
    )
    again = [m.topic for topic in configs for m in mqtt.find(topic, since=mark) if m.payload]
    assert again == [], f"the bridge announced the deleted toy again: {again}"
    assert ha.device_by_identifier(f"folotoy_{visitor}") is None, "the deleted toy came back"
    assert ha.device_by_identifier(f"folotoy_{BUNNY}") is not None, "the listed toy is untouched"
    log = bridge.log_path.read_text()
    assert f"toy {visitor} was deleted in Home Assistant" in log, log[-2000:]
